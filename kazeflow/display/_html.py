"""HTML for notebooks: a flow's statuses (graph and table) and a run's outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from kazeflow.display._svg import MAX_DRAWN, graph_svg
from kazeflow.display._text import human_size

if TYPE_CHECKING:
    from kazeflow.results import AssetStatus, RunResult

_STYLE = ("<style>.kazeflow table{border-collapse:collapse}.kazeflow td,.kazeflow th"
          "{padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid "
          "#ddd}</style>")


def state_of(status: AssetStatus) -> str:
    """The colour an asset's box takes: its state, or ``failed`` if its last attempt
    failed."""
    failed = any(r.kind == "last_failed" for r in status.reasons)
    return "failed" if failed and not status.fresh else status.state


def statuses_html(statuses: Mapping[str, AssetStatus],
                  deps: Mapping[str, Sequence[str]]) -> str:
    """The graph coloured by state (each box: last duration and size) and a table of
    every asset's state and reasons."""
    states = {name: state_of(s) for name, s in statuses.items()}
    notes = {name: " · ".join(t for t in (f"{s.last.duration:.2f} s",
                                          human_size(s.last.size, "")) if t)
             for name, s in statuses.items() if s.last is not None}
    counts = {state: sum(1 for s in states.values() if s == state)
              for state in dict.fromkeys(states.values())}
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(states[name])}</td>"
        f"<td>{'<br>'.join(escape(r.message) for r in s.reasons)}</td></tr>"
        for name, s in statuses.items())
    picture = graph_svg(deps, states, notes) or (
        f"<p>(no graph drawn above {MAX_DRAWN} assets: <code>kazeflow graph</code> draws "
        "it as text)</p>" if deps else "")
    return (f'<div class="kazeflow">{_STYLE}<p><b>{len(statuses)} assets</b>: '
            f"{escape(summary)}</p>{picture}<table><tr><th>asset</th><th>state</th>"
            f"<th>why</th></tr>{rows}</table></div>")


def run_html(result: RunResult) -> str:
    """A run's summary and a table of each asset's outcome (and error)."""
    outcomes = {**{n: ("materialized", "") for n in result.materialized},
                **{n: ("reused", "") for n in result.reused},
                **{n: ("failed", e) for n, e in result.failed.items()},
                **{n: ("not run", why) for n, why in result.skipped.items()}}
    rows = "".join(f"<tr><td>{escape(name)}</td><td>{escape(outcome)}</td>"
                   f"<td>{escape(detail)}</td></tr>"
                   for name, (outcome, detail) in outcomes.items())
    return (f'<div class="kazeflow">{_STYLE}<p><b>run {escape(result.run_id[:12])}</b>: '
            f"{escape(result.summary())}</p><table><tr><th>asset</th><th>outcome</th>"
            f"<th>detail</th></tr>{rows}</table></div>")
