"""A run's own record and what it returns: its row in ``runs`` (started, then finished
with its status and counts whatever happens) and its :class:`RunResult`, or a
:class:`FlowRunError` chained to the first failing asset's own exception."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kazeflow.assets import Asset
from kazeflow.context import log
from kazeflow.errors import FlowRunError, IntegrityError, ObjectNotFoundError, StoreError
from kazeflow.results import RunResult
from kazeflow.running._runstate import RunState
from kazeflow.store.interface import Objects, Pins, RunRecords


@contextlib.contextmanager
def recorded_run(metadata: RunRecords, run_id: str, plan: Sequence[Asset],
                 state: RunState, pins: Pins) -> Iterator[float]:
    """The run's row while its body runs (yields when it started): ``succeeded``,
    ``failed`` or ``interrupted`` afterwards, with the error that ended it. A run that
    ends by an exception lets go of its pins (nothing will load its result)."""
    started = metadata.start_run(run_id, selection=[a.name for a in plan],
                                 pid=os.getpid())
    status, error = "failed", None
    try:
        yield started
        status = "failed" if state.failed or state.skipped else "succeeded"
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted (KeyboardInterrupt)"
        pins.close()
        raise
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        pins.close()
        raise
    finally:
        try:
            metadata.finish_run(run_id, status=status, n_materialized=len(state.materialized),
                                n_reused=len(state.reused), n_failed=len(state.failed),
                                error=error)
        except StoreError as exc:
            if error is None:  # the run went well: this is its error
                raise
            log.error("run %s: cannot record that it %s: %s", run_id[:8], status,
                      exc)  # the run's own error goes on up


def run_result(run_id: str, state: RunState, plan: Sequence[Asset],
               position: Mapping[str, int], load: Callable[[str, str], Any],
               started: float, pins: Pins) -> RunResult:
    """The result of a finished run (names in plan ``position`` order); raises
    :class:`FlowRunError` carrying it when an asset failed or was not run."""
    by_plan = position.__getitem__
    failed = {n: state.failed[n] for n in sorted(state.failed, key=by_plan)}
    skipped = {n: state.skipped[n] for n in sorted(state.skipped, key=by_plan)}
    result = RunResult(
        run_id, state.versions, load, state.values,
        materialized=tuple(sorted(state.materialized, key=by_plan)),
        reused=tuple(sorted(state.reused, key=by_plan)), failed=failed,
        skipped=skipped, duration=time.time() - started,
        order=tuple(a.name for a in plan),
        on_release=pins.close)  # gc keeps what the result may still load
    pins.seal()
    log.info("run %s: %s", run_id[:8], result.summary(),
             extra={"kazeflow_event": "run_finished", "run_id": run_id})
    if failed or skipped:  # chained to the first asset's own error: its frames show
        first = next((state.errors[n] for n in failed if n in state.errors), None)
        raise FlowRunError(_failure_message(failed, skipped), result=result,
                           errors=state.errors) from first
    return result


class ResultLoader:
    """Loads the value of a reused asset when a :class:`RunResult` is first read. An
    object found missing or corrupt then (the run decided on a stat) is materialized
    again, with a warning, by ``rerun`` (the asset and its upstreams with the code and
    config of the run that made the result)."""

    def __init__(self, objects: Objects, rerun: Callable[[str], Any]) -> None:
        self.objects, self.rerun = objects, rerun

    def __call__(self, name: str, data_version: str) -> Any:
        try:
            return self.objects.load(data_version)
        except (IntegrityError, ObjectNotFoundError) as exc:
            log.warning("asset %r: %s; materializing it again", name, exc)
        return self.rerun(name)


def _failure_message(failed: Mapping[str, str], skipped: Mapping[str, str]) -> str:
    parts = [f"asset {name!r} failed: {error}" for name, error in failed.items()]
    text = "; ".join(parts) or "an upstream value could not be produced"
    if skipped:
        text += f" ({len(skipped)} downstream not run: {', '.join(map(repr, skipped))})"
    return text + "; fix it and run again: what succeeded is kept (see .result)"
