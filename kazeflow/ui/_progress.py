"""What each asset of one run did, or is doing, told from the store alone.

The store records a run's row when it starts and ends, and an asset's row when it has
finished (within a fraction of a second, by group commit); nothing while an asset runs.
So for a run in progress, an asset without a row is ``running`` when every upstream it
has in the run is done, ``waiting`` otherwise, and ``reused`` when it is fresh. Its
start is estimated from the end of its last upstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kazeflow.results import AssetStatus, Materialization, Run

#: Outcomes of an asset in a run.
MATERIALIZED, FAILED, REUSED, RUNNING, WAITING, NOT_RUN = (
    "materialized", "failed", "reused", "running", "waiting", "not run")
_DONE = {MATERIALIZED, REUSED}


def closure(selection: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """The assets a run of ``selection`` planned (with their upstreams), in the order of
    ``deps``; those ``deps`` does not know are left out."""
    wanted: set[str] = set()
    todo = [name for name in selection if name in deps]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(d for d in deps[name] if d in deps)
    return [name for name in deps if name in wanted]


def outcomes(run: Run, records: Sequence[Materialization],
             deps: Mapping[str, Sequence[str]], statuses: Mapping[str, AssetStatus],
             now: float) -> list[dict[str, Any]]:
    """One entry per asset of ``run``: its outcome, start, end and duration (seconds),
    size and error; ``records`` are the run's own materializations."""
    by_name = {m.asset_name: m for m in sorted(records, key=lambda m: m.id)}
    planned = closure(run.selection, deps) or list(by_name)
    live = run.status == "running"
    found: dict[str, dict[str, Any]] = {}
    for name in [*planned, *(n for n in by_name if n not in planned)]:
        ups = [found[d] for d in deps.get(name, ()) if d in found]
        entry: dict[str, Any] = {"asset_name": name, "started_at": None, "ended_at": None,
                                 "duration": None, "size": None, "error": None,
                                 "estimated": False}
        if (record := by_name.get(name)) is not None:
            entry.update(outcome=record.status, started_at=record.started_at,
                         ended_at=record.ended_at, duration=record.duration,
                         size=record.size, error=record.error)
        elif any(u["outcome"] in (FAILED, NOT_RUN) for u in ups):
            entry["outcome"] = NOT_RUN
        elif not live:  # a finished run recorded every asset it executed
            entry["outcome"] = REUSED if run.status in ("succeeded", "failed") else NOT_RUN
        elif name in statuses and statuses[name].fresh:
            entry["outcome"] = REUSED
        elif all(u["outcome"] in _DONE for u in ups):
            ends = [u["ended_at"] for u in ups if u["ended_at"] is not None]
            start = max([run.started_at, *ends])
            entry.update(outcome=RUNNING, started_at=start, ended_at=now,
                         duration=max(now - start, 0.0), estimated=True)
        else:
            entry["outcome"] = WAITING
        found[name] = entry
    return list(found.values())


def summary(run: Run, now: float) -> dict[str, Any]:
    """A run's record as the page lists it, with its duration so far."""
    end = run.ended_at if run.ended_at is not None else now
    return {"run_id": run.run_id, "status": run.status, "started_at": run.started_at,
            "ended_at": run.ended_at, "duration": max(end - run.started_at, 0.0),
            "selection": list(run.selection), "n_materialized": run.n_materialized,
            "n_reused": run.n_reused, "n_failed": run.n_failed, "error": run.error,
            "pid": run.pid, "hostname": run.hostname}
