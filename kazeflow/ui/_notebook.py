"""A run's progress in a Jupyter notebook: one output that a thread refreshes while the
run goes on (assets done of planned, by outcome, the ones under way, the time), and
once more when it ends. It reads the run's own tallies and writes nothing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from html import escape
from types import TracebackType
from typing import Any

from kazeflow.assets import Asset

#: Shows HTML once and gives the function that replaces it.
Show = Callable[[str], Callable[[str], None]]


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    return getattr(shell, "kernel", None) is not None


def ipython_show(html: str) -> Callable[[str], None]:
    """Display ``html`` in the current cell; the returned function replaces it."""
    from IPython.display import HTML, display

    handle = display(HTML(html), display_id=True)
    return lambda text: handle.update(HTML(text))


class NotebookProgress:
    """Shows the progress of the run whose tallies are ``state`` (a ``RunState``: its
    ``materialized``, ``reused``, ``failed`` and ``skipped``) over ``plan``, refreshed
    every ``interval`` seconds between entering and leaving the context (``show``:
    where it goes; default the notebook cell that runs)."""

    def __init__(self, plan: Sequence[Asset], state: Any, interval: float = 0.25,
                 show: Show | None = None) -> None:
        self.plan, self.state, self.interval = plan, state, interval
        self.started = time.monotonic()
        self._update = (show or ipython_show)(self.html())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="kazeflow-progress",
                                        daemon=True)

    def __enter__(self) -> NotebookProgress:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._update(self.html(finished=True))

    def _refresh(self) -> None:
        while not self._stop.wait(self.interval):
            self._update(self.html())

    def html(self, finished: bool = False) -> str:
        """The progress line: a bar, ``k of N`` by outcome, what is under way, the time."""
        tallies = {"materialized": len(self.state.materialized),
                   "reused": len(self.state.reused), "failed": len(self.state.failed),
                   "not run": len(self.state.skipped)}
        done, total = sum(tallies.values()), len(self.plan)
        counts = ", ".join(f"{n} {what}" for what, n in tallies.items() if n)
        under_way = [] if finished else self.under_way()
        now = f" · under way: {escape(', '.join(under_way[:5]))}" if under_way else ""
        more = f" and {len(under_way) - 5} more" if len(under_way) > 5 else ""
        width = 100 * done // total if total else 100
        colour = "#c92a2a" if tallies["failed"] else "#2b8a3e"
        return (f'<div class="kazeflow-progress" data-done="{done}" data-total="{total}">'
                f'<div style="width:20em;height:.6em;background:#e9ecef;border-radius:.3em">'
                f'<div style="width:{width}%;height:100%;background:{colour};'
                f'border-radius:.3em"></div></div>'
                f"<span>{'finished' if finished else 'running'}: {done} of {total} assets"
                f"{' (' + counts + ')' if counts else ''}{now}{more} · "
                f"{time.monotonic() - self.started:.1f} s</span></div>")

    def under_way(self) -> list[str]:
        """Planned assets not finished whose upstreams are all done (running, or next)."""
        state = self.state
        ended = {*state.materialized, *state.reused, *state.failed, *state.skipped}
        done = {*state.materialized, *state.reused}
        return [a.name for a in self.plan
                if a.name not in ended and all(d in done for d in a.deps)]
