"""HTML of flows, statuses and run results for Jupyter (their ``_repr_html_``).

Self-contained markup (inline styles, inline SVG): a notebook shows it as it is, with
no script and nothing fetched. The graph has the page's layout (:mod:`._layout`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from kazeflow.results import AssetStatus, RunResult
from kazeflow.ui import _layout

if TYPE_CHECKING:
    from kazeflow.flow import Flow

#: (stroke, fill) of each state and run outcome, as on the page.
COLOURS = {"fresh": ("#2b8a3e", "#d3f9d8"), "stale": ("#e67700", "#fff3bf"),
           "missing": ("#868e96", "#f1f3f5"), "failed": ("#c92a2a", "#ffe3e3"),
           "running": ("#1971c2", "#d0ebff"), "materialized": ("#1971c2", "#d0ebff"),
           "reused": ("#2b8a3e", "#d3f9d8"), "not run": ("#e67700", "#fff3bf")}
_CELL = "text-align:left;padding:2px 8px;border-bottom:1px solid #dee2e6;vertical-align:top"


def _badge(state: str) -> str:
    stroke, fill = COLOURS.get(state, ("#868e96", "#f1f3f5"))
    return (f'<span style="color:{stroke};background:{fill};border:1px solid {stroke};'
            f'border-radius:1em;padding:0 .5em">{escape(state)}</span>')


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of already escaped cells."""
    head = "".join(f'<th style="{_CELL}">{escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{cell}</td>' for cell in row)
                   + "</tr>" for row in rows)
    return (f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def shown_state(status: AssetStatus) -> str:
    """``failed`` for an asset whose last attempt failed, else its state."""
    return "failed" if status.last_attempt_failed else status.state


def status_html(statuses: Mapping[str, AssetStatus]) -> str:
    """One row per asset: its state and the reasons why."""
    rows = [[f"<code>{escape(name)}</code>", _badge(shown_state(st)),
             "<br>".join(escape(r.message) for r in st.reasons)]
            for name, st in statuses.items()]
    return _table(["asset", "state", "reasons"], rows)


def graph_svg(deps: Mapping[str, Sequence[str]], states: Mapping[str, str]) -> str:
    """The asset graph left to right, each node filled by its state in ``states``."""
    drawing = _layout.layout(deps)
    w, h = _layout.NODE_WIDTH, _layout.NODE_HEIGHT
    parts = []
    for name, ups in deps.items():
        x2, y2 = drawing.positions[name]
        for up in ups:
            if up in drawing.positions:
                x1, y1 = drawing.positions[up]
                x1, y1, y2c = x1 + w, y1 + h // 2, y2 + h // 2
                dx = (x2 - x1) // 2
                parts.append(f'<path d="M{x1},{y1} C{x1 + dx},{y1} {x2 - dx},{y2c} {x2},'
                             f'{y2c}" fill="none" stroke="#adb5bd" stroke-width="1.5"/>')
    for name, (x, y) in drawing.positions.items():
        state = states.get(name, "missing")
        stroke, fill = COLOURS.get(state, COLOURS["missing"])
        label = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<g><title>{escape(name)}: {escape(state)}</title>'
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{x + 10}" y="{y + 22}" font-size="13" font-weight="600" '
            f'font-family="sans-serif">{escape(label)}</text>'
            f'<text x="{x + 10}" y="{y + 41}" font-size="11" fill="#6c757d" '
            f'font-family="sans-serif">{escape(state)}</text></g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{drawing.width}" '
            f'height="{drawing.height}" viewBox="0 0 {drawing.width} {drawing.height}">'
            + "".join(parts) + "</svg>")


def flow_html(flow: Flow) -> str:
    """The flow's graph coloured by state, and its status table (executes nothing)."""
    statuses = flow.status()
    deps = {a.name: list(a.deps) for a in flow.assets}
    graph = graph_svg(deps, {name: shown_state(st) for name, st in statuses.items()})
    return (f"<div><p>Flow of {len(deps)} assets, store <code>{escape(str(flow.store.root))}"
            f"</code></p>{graph}{status_html(statuses)}</div>")


def run_result_html(result: RunResult) -> str:
    """The outcome of each asset of a run, and its summary."""
    rows = [[f"<code>{escape(name)}</code>", _badge(what), escape(note)]
            for name, what, note in (
                *((n, "materialized", "") for n in result.materialized),
                *((n, "reused", "") for n in result.reused),
                *((n, "failed", e) for n, e in result.failed.items()),
                *((n, "not run", e) for n, e in result.skipped.items()))]
    return (f"<div><p>run <code>{escape(result.run_id[:8])}</code>: "
            f"{escape(result.summary())}</p>{_table(['asset', 'outcome', ''], rows)}</div>")
