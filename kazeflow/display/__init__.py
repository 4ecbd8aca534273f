"""What users look at in a notebook: the asset graph as an inline SVG, laid out left to
right and coloured by state, and HTML tables of statuses and of a run's outcome (the
``_repr_html_`` of :class:`~kazeflow.results.RunResult`, of what
:meth:`~kazeflow.flow.Flow.status` returns and of a :class:`~kazeflow.flow.Flow`).
Rendering only: it reads the values it is given and imports nothing of the engine."""

from kazeflow.display._html import run_html, statuses_html
from kazeflow.display._svg import graph_svg
from kazeflow.display._text import human_size

__all__ = ["graph_svg", "human_size", "run_html", "statuses_html"]
