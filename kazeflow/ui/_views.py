"""The JSON the page reads: the graph with states, one asset, the runs, one run.

Everything is read through the library (``Flow.status``, ``Store.history``,
``Store.runs``, ``Store.load``) exactly as the CLI reads it; the why tree is the CLI's
own (:func:`kazeflow.cli._format.explain`), so the page and ``kazeflow why`` agree.
Nothing here writes to the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from kazeflow.cli import _format as fmt
from kazeflow.errors import KazeflowError, ObjectNotFoundError
from kazeflow.results import AssetStatus, Materialization
from kazeflow.ui import _layout, _progress
from kazeflow.ui._html import shown_state
from kazeflow.ui._source import FlowSource

if TYPE_CHECKING:
    from kazeflow.flow import Flow

#: Reason kind of an asset whose last attempt failed (``Flow.status`` adds it).
HISTORY_LIMIT, RUNS_LIMIT = 50, 100


class NotFound(KazeflowError):
    """A page asked for an asset or run that the flow or the store does not have."""


class Views:
    """The page's data for one flow, computed on request under one lock (a store and a
    flow are read by one thread at a time).

    Args:
        source: the flow, planned again when its code changes.
        config: the config to compare against, as ``kazeflow status --config``.
        target: the TARGET, as the page shows it.
    """

    def __init__(self, source: FlowSource, config: Mapping[str, Any] | None,
                 target: str) -> None:
        self.source = source
        self.config = config
        self.target = target
        self._lock = threading.Lock()

    def _read(self) -> tuple[Flow, dict[str, AssetStatus], dict[str, list[str]]]:
        flow = self.source.flow()
        deps = {a.name: list(a.deps) for a in flow.assets}
        return flow, flow.status(self.config), deps

    def graph(self) -> dict[str, Any]:
        """Every planned asset with its state, last duration and size, and its place."""
        with self._lock:
            flow, statuses, deps = self._read()
            now = time.time()
            live = next((r for r in flow.runs(RUNS_LIMIT) if r.status == "running"), None)
            doing: dict[str, str] = {}
            run = None
            if live is not None:
                records = _records_of(flow, live.run_id)
                steps = _progress.outcomes(live, records, deps, statuses, now)
                doing = {s["asset_name"]: s["outcome"] for s in steps}
                run = {**_progress.summary(live, now), "done": sum(
                    s["outcome"] in ("materialized", "reused", "failed") for s in steps),
                    "total": len(steps)}
        drawing = _layout.layout(deps)
        nodes = []
        for name, status in statuses.items():
            last = status.last
            x, y = drawing.positions[name]
            nodes.append({
                "name": name, "deps": deps[name], "state": status.state,
                "shown": _shown_state(status, doing.get(name)),
                "step": doing.get(name), "reasons": [r.message for r in status.reasons],
                "duration": None if last is None else last.duration,
                "size": None if last is None else last.size,
                "data_version": None if last is None else last.data_version,
                "x": x, "y": y})
        return {"target": self.target, "store": str(flow.store.root), "nodes": nodes,
                "width": drawing.width, "height": drawing.height,
                "node_width": _layout.NODE_WIDTH, "node_height": _layout.NODE_HEIGHT,
                "run": run, "generation": self.source.generation}

    def asset(self, name: str) -> dict[str, Any]:
        """Why ``name`` is in its state (with diffs), its history and a preview."""
        with self._lock:
            flow, statuses, deps = self._read()
            if name not in statuses:
                raise NotFound(f"no asset {name!r} in {self.target}; its assets: "
                               f"{', '.join(statuses)}")
            status = statuses[name]
            tree = fmt.explain(statuses, name)
            history = flow.store.history(name, HISTORY_LIMIT)
            preview = _preview(flow, name, status.last)
        asset = next(a for a in flow.assets if a.name == name)
        return {"asset_name": name, "state": status.state,
                "shown": _shown_state(status, None), "description": asset.description,
                "deps": deps[name], "downstream": [n for n, ups in deps.items() if name in ups],
                "why": _with_diffs(tree),
                "why_text": click.unstyle("\n".join(fmt.why_lines(tree))),
                "history": [_record(m) for m in history], "preview": preview}

    def runs(self) -> dict[str, Any]:
        """The newest runs of the store."""
        with self._lock:
            flow = self.source.flow()
            now = time.time()
            return {"runs": [_progress.summary(r, now) for r in flow.runs(RUNS_LIMIT)]}

    def run(self, run_id: str) -> dict[str, Any]:
        """One run (``run_id`` or a unique prefix) and what each of its assets did."""
        with self._lock:
            flow, statuses, deps = self._read()
            matches = [r for r in flow.runs() if r.run_id.startswith(run_id)]
            if len(matches) != 1:
                why = "no run" if not matches else f"{len(matches)} runs"
                raise NotFound(f"{why} with id {run_id!r} in {flow.store.root}; "
                               "`kazeflow runs` lists them")
            run = matches[0]
            now = time.time()
            steps = _progress.outcomes(run, _records_of(flow, run.run_id), deps, statuses,
                                       now)
        return {**_progress.summary(run, now), "assets": steps, "now": now}


def _shown_state(status: AssetStatus, step: str | None) -> str:
    """The colour of a node: ``running`` while a run executes it, ``failed`` when its
    last attempt failed, else its state."""
    return "running" if step == _progress.RUNNING else shown_state(status)


def _records_of(flow: Flow, run_id: str) -> list[Materialization]:
    """The materializations of one run (read from every record: the store has no
    query by run)."""
    return [m for m in flow.store.history() if m.run_id == run_id]


def _record(m: Materialization) -> dict[str, Any]:
    return {"id": m.id, "run_id": m.run_id, "status": m.status, "started_at": m.started_at,
            "ended_at": m.ended_at, "duration": m.duration, "size": m.size,
            "data_version": m.data_version, "code_hash": m.code_hash,
            "config_hash": m.config_hash, "config": dict(m.config), "forced": m.forced,
            "error": m.error, "metadata": fmt.jsonable(m.user_metadata)}


def _with_diffs(node: dict[str, Any]) -> dict[str, Any]:
    """The why tree with a plain unified ``diff`` on each reason that has one (code,
    config or a small input file), the same diffs ``kazeflow why`` prints."""
    for reason in node["reasons"]:
        details = reason["details"]
        if reason["kind"] == "config_changed":
            reason["diff"] = click.unstyle("\n".join(fmt.config_diff(
                details.get("old_config") or {}, details.get("new_config") or {})))
        elif reason["kind"] in ("code_changed", "input_changed") and details.get("diff"):
            reason["diff"] = details["diff"]
        if "upstream" in reason:
            _with_diffs(reason["upstream"])
    return node


def _preview(flow: Flow, name: str, last: Materialization | None) -> dict[str, Any]:
    """A short repr of the newest stored value of ``name`` (the one its state refers to
    when it has one), or why there is none."""
    try:
        record = last if last is not None and last.data_version else \
            flow.store.materialization(name)
        value = flow.store.load(name, record.id)
    except ObjectNotFoundError:
        return {"id": None, "repr": None, "error": "no stored value"}
    except Exception as exc:  # unpickling: a class this process lacks, a corrupt object
        return {"id": None, "repr": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"id": record.id, "repr": fmt.short_repr(value), "error": None}
