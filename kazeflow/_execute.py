"""Executing a run: a scheduler in this process decides each planned asset as soon as its
upstreams are done, hands the stale ones to an executor, and records everything.

The parent alone decides (the same code as ``status``) and writes metadata; executors
only call asset functions. With the sequential executor every call completes at once, so
assets run one by one in plan order: one scheduling code path for every executor.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kazeflow._batch import WriteBatch
from kazeflow._evaluate import Evaluator
from kazeflow._prepare import PreparedAsset
from kazeflow._ready import ready_queue
from kazeflow._tasks import Outcome, call_local, call_remote, current_asset, remote_payload
from kazeflow.assets import Asset
from kazeflow.errors import (
    FlowRunError,
    IntegrityError,
    KazeflowError,
    ObjectNotFoundError,
    RecursiveRunError,
    WorkerDiedError,
)
from kazeflow.executors import Executor, SequentialExecutor
from kazeflow.freshness import FRESH, AssetInputs
from kazeflow.results import Materialization, RecordKey, RunResult
from kazeflow.store import Store
from kazeflow.store._locks import FdLock

log = logging.getLogger("kazeflow")


def check_not_inside_asset() -> None:
    """Raise when called from inside an asset that is being materialized."""
    name = current_asset.get()
    if name is not None:
        raise RecursiveRunError(
            f"asset {name!r} called Flow.run while being materialized; declare what it "
            "needs as upstream assets (deps) instead of running a flow inside it")


class _UpstreamFailed(Exception):
    """An upstream value could not be produced (internal control flow)."""


@dataclass
class _Job:
    """A stale asset handed to the executor, holding its cache key's lease."""

    item: Asset
    inputs: AssetInputs
    lease: FdLock
    submitted: float


class ScheduledRun:
    """One run: assets start as soon as their upstreams are done, on ``executor``.

    Args:
        executor: where stale assets execute (default: inline, in plan order).
        pools: pool name → how many of its assets may run at once (default 1 each).
    """

    def __init__(self, store: Store, plan: Sequence[Asset],
                 prepared: Mapping[str, PreparedAsset], forced: Collection[str],
                 executor: Executor | None = None, pools: Mapping[str, int] | None = None,
                 owns_executor: bool = True) -> None:
        self.store = store
        self.plan = plan
        self.prepared = prepared
        #: Whether per-asset events are logged (debug level; the CLI's progress uses
        #: them). Why an asset re-runs is told only then: else no full records are read.
        self.verbose = log.isEnabledFor(logging.DEBUG)
        self.evaluator = Evaluator(store, prepared, forced, reasons=self.verbose)
        self.executor: Executor = executor or SequentialExecutor()
        self.owns_executor = owns_executor
        self.pools = dict(pools or {})
        self.run_id = uuid.uuid4().hex
        self.versions: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.materialized: dict[str, None] = {}  # ordered sets of names
        self.reused: dict[str, None] = {}
        self.failed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, Exception] = {}
        self.batch = WriteBatch(store)
        self.pins = store.pins(self.run_id)  # what gc must keep while this run lives
        self._sent_code: set[str] = set()  # code sources queued once per run
        self._ready = ready_queue(plan, self.pools, self.executor.max_workers)
        self._running: dict[concurrent.futures.Future[Outcome], _Job] = {}
        self._payloads: dict[str, bytes] = {}

    def execute(self) -> RunResult:
        """Run every planned asset that is not fresh; return or raise with the result."""
        meta = self.store.metadata
        self.store.objects.remove_stale_temps()
        started = meta.start_run(self.run_id, selection=[a.name for a in self.plan],
                                 pid=os.getpid(), hostname=socket.gethostname())
        status, error = "failed", None
        try:
            try:
                self.pins.open()
                self._pin(r.data_version for r in self.evaluator.latest_keys.values()
                          if r.data_version is not None)
                self._schedule()
            except BaseException:
                self._stop_running()
                raise
            finally:
                if self.owns_executor:
                    self.executor.shutdown()
                self.batch.flush()  # even when interrupted: finished work stays
            status = "failed" if self.failed or self.skipped else "succeeded"
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted (KeyboardInterrupt)"
            self.pins.close()
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.pins.close()
            raise
        finally:
            meta.finish_run(self.run_id, status=status, n_materialized=len(self.materialized),
                            n_reused=len(self.reused), n_failed=len(self.failed), error=error)
        by_plan = self._ready.index.__getitem__
        materialized = tuple(sorted(self.materialized, key=by_plan))
        reused = tuple(sorted(self.reused, key=by_plan))
        failed = {n: self.failed[n] for n in sorted(self.failed, key=by_plan)}
        skipped = {n: self.skipped[n] for n in sorted(self.skipped, key=by_plan)}
        result = RunResult(
            self.run_id, self.versions, self.store.objects.load,
            self.values, materialized=materialized, reused=reused,
            failed=failed, skipped=skipped, duration=time.time() - started,
            order=tuple(a.name for a in self.plan),
            on_release=self.pins.close)  # gc keeps what the result may still load
        self.pins.seal()
        log.info("run %s: %s", self.run_id[:8], result.summary(),
                 extra={"kazeflow_event": "run_finished", "run_id": self.run_id})
        if failed or skipped:
            raise FlowRunError(_failure_message(failed, skipped), result=result,
                               errors=self.errors)
        return result

    # ------------------------------------------------------------------ scheduling

    def _schedule(self) -> None:
        """Start ready assets (upstreams done) in plan order, within the worker and pool
        limits; wait for one to finish; repeat."""
        while self._ready or self._running:
            while len(self._running) < self.executor.max_workers:
                item = self._ready.take()
                if item is None:
                    break
                self._step(item)
            if self._running:
                done, _ = concurrent.futures.wait(
                    list(self._running), return_when=concurrent.futures.FIRST_COMPLETED)
                position = self._ready.index
                for future in sorted(done, key=lambda f: position[self._running[f].item.name]):
                    if future in self._running:  # not completed by a _drain meanwhile
                        self._complete(future)

    def _drain(self) -> None:
        """Wait for every running asset and record it (before waiting on a lease)."""
        while self._running:
            for future in list(concurrent.futures.wait(list(self._running)).done):
                if future in self._running:
                    self._complete(future)

    def _stop_running(self) -> None:
        """Interrupted: stop the workers and let go of the leases of unfinished assets."""
        if self.owns_executor:
            self.owns_executor = False  # shut down here, not again
            self.executor.shutdown(cancel=True)
        for future, job in self._running.items():
            job.lease.release()
            future.add_done_callback(self._discard)  # a thread may still finish it
        self._running.clear()

    def _discard(self, future: concurrent.futures.Future[Outcome]) -> None:
        """Drop the written object of an asset that finished after the run stopped."""
        if future.cancelled() or future.exception() is not None:
            return
        pending = future.result().pending
        if pending is not None:
            self.store.objects.discard([pending])

    # ------------------------------------------------------------------ one asset

    def _step(self, item: Asset) -> None:
        blocked = [d for d in item.deps if d in self.failed or d in self.skipped] \
            if self.failed or self.skipped else None
        if blocked:
            why = "failed" if blocked[0] in self.failed else "was not run"
            self.skipped[item.name] = f"not run: upstream {blocked[0]!r} {why}"
            self._ready.done(item.name)
            return
        reuse = self.evaluator.reusable_as_is(item.name, self.versions)
        if reuse is None or not self._pinned_in_store(reuse):  # else gc took it meanwhile
            inputs = self.evaluator.inputs(item.name, self.versions)
            decision = self.evaluator.decide(inputs)
            if decision.state == FRESH and not self._pinned_in_store(decision.reuse):
                decision = self.evaluator.decide(inputs)  # gc removed it before the pin
            if decision.state != FRESH:
                if self.verbose:
                    log.debug("materializing %r: %s", item.name,
                              "; ".join(map(str, decision.reasons)),
                              extra={"kazeflow_event": "materializing",
                                     "asset_name": item.name})
                self._materialize(item)
                return
            reuse = decision.reuse
        assert reuse is not None and reuse.data_version is not None
        self.versions[item.name] = reuse.data_version
        self.reused[item.name] = None
        if self.verbose:
            log.debug("reusing %r", item.name,
                      extra={"kazeflow_event": "reused", "asset_name": item.name})
        self._ready.done(item.name)

    def _materialize(self, item: Asset, repair: bool = False) -> None:
        """Take the key's lease and hand the asset to the executor; a ``repair`` (an
        upstream whose object was lost) runs inline and releases nothing downstream."""
        local = repair or self.executor.in_process
        try:
            kwargs = {name: self._value(name) for name in item.inputs} if local else {}
        except _UpstreamFailed as exc:
            self.skipped[item.name] = f"not run: upstream {exc.args[0]!r} failed"
            if not repair:
                self._ready.done(item.name)
            return
        inputs = self.evaluator.inputs(item.name, self.versions)  # after any repair
        assert inputs.cache_key is not None
        lease = self.store.lease(inputs.cache_key)
        contended = not lease.acquire(blocking=False)
        if contended:
            self._drain()  # never wait while holding leases of our own
            self.batch.flush()
            lease.acquire()
        # A lease file we did not create means another run took this key before us:
        # it may have materialized it since we decided.
        if (contended or not lease.created) and self._reuse_after_wait(inputs):
            lease.release()
            if not repair:
                self._ready.done(item.name)
            return
        job = _Job(item, inputs, lease, time.time())
        try:
            if repair:
                outcome = call_local(item, kwargs, self.prepared[item.name].config,
                                     self.run_id, self.store.objects)
                self._record(job, outcome)
                return
            future = self._submit(item, kwargs)
        except BaseException:
            lease.release()
            raise
        self._running[future] = job
        self._ready.started(item)

    def _submit(self, item: Asset, kwargs: dict[str, Any]
                ) -> concurrent.futures.Future[Outcome]:
        config = self.prepared[item.name].config
        if self.executor.in_process:
            return self.executor.submit(call_local, item, kwargs, config, self.run_id,
                                        self.store.objects)
        payload = self._payloads.get(item.name)
        if payload is None:
            try:
                payload = self._payloads[item.name] = remote_payload(item, config)
            except Exception as exc:
                failed: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
                failed.set_result(Outcome(time.time(), time.time(), exc=exc, error=(
                    f"asset {item.name!r} cannot be sent to a worker process: "
                    f"{type(exc).__name__}: {exc}; use executor='threads' or make the "
                    "function picklable by cloudpickle")))
                return failed
        upstream = {name: self.versions[name] for name in item.inputs}
        return self.executor.submit(call_remote, payload, item.name, upstream, self.run_id,
                                    str(self.store.objects.root))

    def _complete(self, future: concurrent.futures.Future[Outcome]) -> None:
        """Record a finished asset and release its downstream."""
        job = self._running.pop(future)
        name = job.item.name
        self._ready.stopped(job.item)
        try:
            outcome = future.result()
        except WorkerDiedError as exc:
            outcome = Outcome(job.submitted, time.time(), exc=exc,
                              error=f"asset {name!r}: {exc}")
        except Exception as exc:
            if self.executor.in_process or isinstance(exc, KazeflowError):
                job.lease.release()
                raise
            outcome = Outcome(job.submitted, time.time(), exc=exc, error=(
                f"asset {name!r} could not run in a worker process: "
                f"{type(exc).__name__}: {exc}"))
        except BaseException:  # Ctrl-C raised in the asset
            job.lease.release()
            raise
        if outcome.missing_upstream is not None:  # lost since decided: make it again
            job.lease.release()
            upstream = outcome.missing_upstream
            self.values.pop(upstream, None)
            try:
                self._value(upstream)
            except _UpstreamFailed:
                self.skipped[name] = f"not run: upstream {upstream!r} failed"
                self._ready.done(name)
                return
            self._materialize(job.item)
            return
        self._record(job, outcome)
        self._ready.done(name)

    def _record(self, job: _Job, outcome: Outcome) -> None:
        item, inputs, lease = job.item, job.inputs, job.lease
        if outcome.error is not None:
            log.error("asset %r failed: %s", item.name, outcome.error.strip().splitlines()[-1])
            self._queue(inputs, outcome.started, lease, status="failed", error=outcome.error)
            self.failed[item.name] = outcome.error.strip().splitlines()[-1]
            if isinstance(outcome.exc, Exception):
                self.errors[item.name] = outcome.exc
            return
        assert outcome.data_version is not None and outcome.size is not None
        hold = None
        if outcome.pending is None:  # a worker committed it: keep gc off until recorded
            hold = self.store.writing()
            hold.acquire()
            if not self.store.objects.has(outcome.data_version, outcome.size):
                hold.release()
                outcome.error = (f"asset {item.name!r}: its stored result "
                                 f"{outcome.data_version[:12]}… vanished before it was "
                                 "recorded (a concurrent gc?); run again")
                self._record(job, outcome)
                return
        self._queue(inputs, outcome.started, lease, status="materialized",
                    data_version=outcome.data_version, size=outcome.size,
                    obj=outcome.pending, metadata=outcome.metadata, hold=hold)
        if outcome.pending is not None:
            self.values[item.name] = outcome.value
        self.versions[item.name] = outcome.data_version
        if outcome.is_new:
            self.evaluator.new_versions.add(outcome.data_version)
        self.reused.pop(item.name, None)
        self.materialized[item.name] = None

    def _reuse_after_wait(self, inputs: AssetInputs) -> bool:
        """Another run held this key's lease: reuse what it made, if it did."""
        self.evaluator.forget_latest(inputs.asset_name)  # it may have a newer one now
        decision = self.evaluator.decide(inputs, fresh=True)
        if decision.state != FRESH or not self._pinned_in_store(decision.reuse):
            return False
        log.info("asset %r: reusing the materialization a concurrent run just made",
                 inputs.asset_name)
        assert decision.reuse is not None and decision.reuse.data_version is not None
        self.versions[inputs.asset_name] = decision.reuse.data_version
        self.reused[inputs.asset_name] = None
        return True

    def _pin(self, data_versions: Iterable[str]) -> None:
        """Pin objects against gc, under the shared gc lock: gc either sees the pin or
        has finished before it (and the caller's next stat sees what it removed)."""
        hold = self.store.writing()
        hold.acquire()
        try:
            self.pins.add(data_versions)
        finally:
            hold.release()

    def _pinned_in_store(self, record: Materialization | RecordKey | None) -> bool:
        """Pin a record chosen for reuse; whether its object is still there."""
        assert record is not None and record.data_version is not None
        if record.data_version in self.pins.pinned:
            return True
        self._pin([record.data_version])
        self.evaluator.forget(record.data_version)
        return self.evaluator.object_exists(record)

    def _value(self, name: str) -> Any:
        """An upstream's value: in memory, loaded from the store, or re-materialized."""
        if name in self.values:
            return self.values[name]
        try:
            self.values[name] = self.store.objects.load(self.versions[name])
        except (IntegrityError, ObjectNotFoundError) as exc:
            log.warning("asset %r: %s; materializing it again", name, exc)
            self.evaluator.forget(self.versions[name])
            self._materialize(self.prepared[name].asset, repair=True)
            if name not in self.values:  # another run re-made it meanwhile: load theirs
                if name in self.failed or name in self.skipped:
                    raise _UpstreamFailed(name) from None
                try:
                    self.values[name] = self.store.objects.load(self.versions[name])
                except (IntegrityError, ObjectNotFoundError):
                    raise _UpstreamFailed(name) from None
        return self.values[name]

    def _queue(self, inputs: AssetInputs, started: float, lease: FdLock, *, status: str,
               data_version: str | None = None, size: int | None = None,
               obj: Any = None, error: str | None = None,
               metadata: Mapping[str, Any] | None = None, hold: FdLock | None = None
               ) -> None:
        """Queue the record of one attempt (committed with the batch)."""
        code = self.prepared[inputs.asset_name].code
        last = self.evaluator.latest_keys.get(inputs.asset_name)
        if last is not None and last.code_hash == code.code_hash:  # its record holds it
            self._sent_code.add(code.code_hash)
        new_code = {} if code.code_hash in self._sent_code else {
            code.code_hash: code.components}  # stored once per hash: insert-if-new
        self._sent_code.add(code.code_hash)
        ended = time.time()
        assert inputs.cache_key is not None and inputs.upstream_versions is not None
        row = {"run_id": self.run_id, "asset_name": inputs.asset_name,
               "cache_key": inputs.cache_key, "code_hash": code.code_hash,
               "config_hash": inputs.config_hash, "config": dict(inputs.config),
               "upstream_versions": dict(inputs.upstream_versions),
               "data_version": data_version, "size": size, "started_at": started,
               "ended_at": ended, "duration": ended - started, "status": status,
               "forced": int(inputs.forced), "error": error,
               "user_metadata": dict(metadata or {})}
        if data_version is not None:  # visible to gc before its row commits
            self.pins.add([data_version])
        self.batch.add(row, obj, new_code, lease, hold)
        if status == "materialized":
            self.evaluator.forget_latest(inputs.asset_name)


def _failure_message(failed: Mapping[str, str], skipped: Mapping[str, str]) -> str:
    parts = [f"asset {name!r} failed: {error}" for name, error in failed.items()]
    text = "; ".join(parts) or "an upstream value could not be produced"
    if skipped:
        text += f" ({len(skipped)} downstream not run: {', '.join(map(repr, skipped))})"
    return text + "; fix it and run again: what succeeded is kept (see .result)"
