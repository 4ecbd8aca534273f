"""Executing a run: a scheduler in this process decides each planned asset as soon as its
upstreams are done, hands the stale ones to an executor, and records everything.

The parent alone decides (the same code as ``status``) and writes metadata; executors
only call asset functions. With the sequential executor every call completes at once, so
assets run one by one in plan order: one scheduling code path for every executor.

An asset's value is handed on as soon as its bytes are written, while their hash and fsync
finish in helper threads: a downstream that runs whatever that data version turns out to
be (forced, not cached, or never materialized) starts at once; any other waits for it.
The upstream's row is committed as usual meanwhile, but only once the leases of the keys
that follow from its data version are taken (each materialization is computed once).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kazeflow import graph
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
from kazeflow.store._objects import PendingObject
from kazeflow.store._pins import RunPins

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
    """A stale asset handed to the executor, holding its cache key's lease; or, started
    before an upstream's data version was known, with neither inputs nor lease yet."""

    item: Asset
    inputs: AssetInputs | None
    lease: FdLock | None
    submitted: float

    def release(self) -> None:
        """Let go of the lease; an early job's (claimed later) is the run's to let go."""
        if self.inputs is not None and self.lease is not None:
            self.lease.release()


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
        #: Finished, not yet recorded: their object is still being hashed and fsynced,
        #: or they started early (see :meth:`_land`). In the order they finished.
        self._landing: dict[str, tuple[_Job, Outcome]] = {}
        #: Started early, not landed: their leases are claimed by whichever thread learns
        #: the last upstream data version (see :meth:`_claim_downstream`).
        self._early: dict[str, _Job] = {}
        self._claiming = threading.Lock()
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
            self.run_id, self.versions, _ResultLoader(self.store, self.plan, self.prepared),
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
        while self._landing:
            self._land(next(iter(self._landing)))

    def _drain(self) -> None:
        """Wait for every running asset and record it (before waiting on a lease)."""
        while self._running:
            for future in list(concurrent.futures.wait(list(self._running)).done):
                if future in self._running:
                    self._complete(future)

    def _stop_running(self) -> None:
        """Interrupted: stop the workers and let go of the leases of unfinished assets;
        drop what started early (what else is landing is queued already)."""
        if self.owns_executor:
            self.owns_executor = False  # shut down here, not again
            self.executor.shutdown(cancel=True)
        for future, job in self._running.items():
            job.release()
            future.add_done_callback(self._discard)  # a thread may still finish it
        self._running.clear()
        for job, outcome in self._landing.values():
            if job.inputs is None:
                self._drop(outcome)
        self._landing.clear()
        for name in list(self._early):
            self._forget_early(name)

    def _discard(self, future: concurrent.futures.Future[Outcome]) -> None:
        """Drop the written object of an asset that finished after the run stopped."""
        if not future.cancelled() and future.exception() is None:
            self._drop(future.result())

    def _drop(self, outcome: Outcome) -> None:
        """Drop the object of a finished asset that will not be recorded."""
        if outcome.writing is not None:
            outcome.writing.abandon()
        elif outcome.pending is not None:
            self.store.objects.discard([outcome.pending])

    # ------------------------------------------------------------------ one asset

    def _step(self, item: Asset) -> None:
        if self._landing and self._after_landing(item):
            return
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
                if decision.reasons and decision.reasons[0].kind == "object_missing":
                    log.warning("asset %r: its stored object %s… is missing, truncated or "
                                "quarantined; materializing it again", item.name,
                                str(decision.reasons[0].details.get("data_version"))[:12])
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

    def _after_landing(self, item: Asset) -> bool:
        """Before deciding ``item``, whose upstreams may still be landing: start it at
        once if it runs whatever their data versions are (True), else land them."""
        early = [d for d in item.deps if d in self._landing]
        if not early:
            return False
        if (all(self._landing[d][0].inputs is not None for d in early)
                and not any(d in self.failed or d in self.skipped for d in item.deps)
                and self.evaluator.runs_anyway(item.name) and self._start_early(item, early)):
            if self.verbose:
                log.debug("materializing %r while %s is stored", item.name,
                          ", ".join(map(repr, early)),
                          extra={"kazeflow_event": "materializing", "asset_name": item.name})
            self._materialize(item, early=True)
            return True
        for name in early:
            if name in self._landing:  # not landed with another meanwhile
                self._land(name)
        return False

    def _start_early(self, item: Asset, early: Sequence[str]) -> bool:
        """Register ``item`` to start early, unless the data versions of its landing
        upstreams became known meanwhile (then all their rows may be committed and
        ``item``'s key known to other runs: it is decided as usual). While one is
        unknown, its row waits for the claim of ``item``'s lease."""
        with self._claiming:
            if all(self._landing[d][1].data_version is not None for d in early):
                return False
            self._early[item.name] = _Job(item, None, None, time.time())
            return True

    def _claim_downstream(self, upstream: str) -> None:
        """Take, without waiting, the lease of each early-started asset whose upstream
        data versions are all known now that ``upstream``'s is. The batch calls this
        when ``upstream``'s object is finished, before committing its row, so no other
        run can learn such a key before it is leased; a lease another run holds already
        is waited for when the asset lands."""
        with self._claiming:
            for job in self._early.values():
                if job.lease is not None or upstream not in job.item.deps:
                    continue
                versions = self._known_versions(job.item.deps)
                if versions is not None:
                    key = self.evaluator.inputs(job.item.name, versions).cache_key
                    assert key is not None
                    lease = self.store.lease(key)
                    if lease.acquire(blocking=False):
                        job.lease = lease

    def _known_versions(self, names: Sequence[str]) -> dict[str, str] | None:
        """The data version of each of ``names``, noted or landing; None if one is not
        known yet."""
        versions = {}
        for name in names:
            version = self.versions.get(name)
            if version is None and (landing := self._landing.get(name)) is not None:
                version = landing[1].data_version
            if version is None:
                return None
            versions[name] = version
        return versions

    def _materialize(self, item: Asset, repair: bool = False, early: bool = False) -> None:
        """Take the key's lease and hand the asset to the executor; a ``repair`` (an
        upstream whose object was lost) runs inline and releases nothing downstream; an
        ``early`` one starts before an upstream's data version is known, so it takes
        its lease when it lands."""
        local = repair or self.executor.in_process
        try:
            kwargs = {name: self._value(name) for name in item.inputs} if local else {}
        except _UpstreamFailed as exc:
            self.skipped[item.name] = f"not run: upstream {exc.args[0]!r} failed"
            if early:
                self._forget_early(item.name)
            if not repair:
                self._ready.done(item.name)
            return
        inputs = lease = None
        if early:
            job = self._early[item.name]
        else:
            inputs = self.evaluator.inputs(item.name, self.versions)  # after any repair
            lease = self._lease(inputs)
            if lease is None:
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
            if early:
                self._forget_early(item.name)
            elif lease is not None:
                lease.release()
            raise
        self._running[future] = job
        self._ready.started(item)

    def _forget_early(self, name: str) -> None:
        """``name`` will not land: let go of its claimed lease."""
        with self._claiming:
            job = self._early.pop(name)
        if job.lease is not None:
            job.lease.release()

    def _lease(self, inputs: AssetInputs, held: FdLock | None = None) -> FdLock | None:
        """Take the lease of ``inputs``' cache key (unless ``held``, claimed already),
        waiting if another run holds it; None if that run materialized it meanwhile
        (then reused, nothing held)."""
        assert inputs.cache_key is not None
        lease = held or self.store.lease(inputs.cache_key)
        contended = held is None and not lease.acquire(blocking=False)
        if contended:
            self._drain()  # never wait while holding leases of our own
            self.batch.flush()
            lease.acquire()
        # A lease file we did not create means another run took this key before us:
        # it may have materialized it since we decided.
        if (contended or not lease.created) and self._reuse_after_wait(inputs):
            lease.release()
            return None
        return lease

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
                job.release()
                raise
            outcome = Outcome(job.submitted, time.time(), exc=exc, error=(
                f"asset {name!r} could not run in a worker process: "
                f"{type(exc).__name__}: {exc}"))
        except BaseException:  # Ctrl-C raised in the asset
            job.release()
            raise
        if outcome.missing_upstream is not None:  # lost since decided: make it again
            job.release()
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
        writing = outcome.writing is not None and outcome.writing.in_background
        if job.inputs is not None and not writing:
            self._record(job, outcome)
        else:  # landing: its data version is not known yet
            if job.inputs is not None:  # started as usual: the batch waits for the object
                assert job.lease is not None
                self._queue(job.inputs, outcome, job.lease)
            self._landing[name] = (job, outcome)
            if outcome.error is None:
                self.values[name] = outcome.value  # for downstream that start early
        self._ready.done(name)

    def _land(self, name: str) -> None:
        """Note the landing asset ``name`` in this run once its object is written. If it
        started early, land its upstreams, take its key's lease and record it (or reuse
        what another run materialized with that key meanwhile)."""
        job, outcome = self._landing[name]
        if job.inputs is not None:  # queued already
            outcome.finish_write()
            self._note(name, outcome)
            del self._landing[name]  # only now: its version is always in one of the two
            return
        del self._landing[name]
        for dep in job.item.deps:
            if dep in self._landing:
                self._land(dep)
        with self._claiming:
            claimed = self._early.pop(name).lease
        inputs = self.evaluator.inputs(name, self.versions)
        lease = self._lease(inputs, held=claimed)
        if lease is None:
            self.values.pop(name, None)
            self._drop(outcome)
            return
        self._record(_Job(job.item, inputs, lease, job.submitted), outcome)

    def _record(self, job: _Job, outcome: Outcome) -> None:
        item, inputs, lease = job.item, job.inputs, job.lease
        assert inputs is not None and lease is not None
        if outcome.error is not None:
            log.error("asset %r failed: %s", item.name, outcome.error.strip().splitlines()[-1])
            self._queue(inputs, outcome, lease)
            self.failed[item.name] = outcome.error.strip().splitlines()[-1]
            if isinstance(outcome.exc, Exception):
                self.errors[item.name] = outcome.exc
            return
        try:
            outcome.finish_write()
        except BaseException:
            lease.release()
            raise
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
        self._queue(inputs, outcome, lease, hold)
        self._note(item.name, outcome)

    def _note(self, name: str, outcome: Outcome) -> None:
        """Note a recorded materialization in this run (its data version is known)."""
        assert outcome.data_version is not None
        if outcome.pending is not None:
            self.values[name] = outcome.value
        self.versions[name] = outcome.data_version
        if outcome.is_new:
            self.evaluator.new_versions.add(outcome.data_version)
        self.reused.pop(name, None)
        self.materialized[name] = None

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

    def _queue(self, inputs: AssetInputs, outcome: Outcome, lease: FdLock,
               hold: FdLock | None = None) -> None:
        """Queue the record of one attempt (committed with the batch); an object still
        being written is waited for by the batch, which then fills in its row."""
        code = self.prepared[inputs.asset_name].code
        last = self.evaluator.latest_keys.get(inputs.asset_name)
        if last is not None and last.code_hash == code.code_hash:  # its record holds it
            self._sent_code.add(code.code_hash)
        new_code = {} if code.code_hash in self._sent_code else {
            code.code_hash: code.components}  # stored once per hash: insert-if-new
        self._sent_code.add(code.code_hash)
        ended = outcome.ended
        status = "materialized" if outcome.error is None else "failed"
        data_version, size = (outcome.data_version, outcome.size) if outcome.error is None \
            else (None, None)
        assert inputs.cache_key is not None and inputs.upstream_versions is not None
        row = {"run_id": self.run_id, "asset_name": inputs.asset_name,
               "cache_key": inputs.cache_key, "code_hash": code.code_hash,
               "config_hash": inputs.config_hash, "config": dict(inputs.config),
               "upstream_versions": dict(inputs.upstream_versions),
               "data_version": data_version, "size": size, "started_at": outcome.started,
               "ended_at": ended, "duration": ended - outcome.started, "status": status,
               "forced": int(inputs.forced), "error": outcome.error,
               "user_metadata": dict(outcome.metadata)}
        obj: PendingObject | _Unfinished | None = outcome.pending
        if data_version is not None:  # visible to gc before its row commits
            self.pins.add([data_version])
        elif outcome.error is None:
            obj = _Unfinished(row, outcome, self.pins, self._claim_downstream)
        self.batch.add(row, obj, new_code, lease, hold)
        if status == "materialized":
            self.evaluator.forget_latest(inputs.asset_name)


class _Unfinished:
    """The object of a queued row, still being hashed and fsynced: the batch waits for
    it before committing (in whichever thread flushes) and fills in the row."""

    __slots__ = ("row", "outcome", "pins", "on_finished")

    def __init__(self, row: dict[str, Any], outcome: Outcome, pins: RunPins,
                 on_finished: Callable[[str], None]) -> None:
        self.row, self.outcome, self.pins, self.on_finished = row, outcome, pins, on_finished

    def finish(self) -> PendingObject:
        outcome = self.outcome
        outcome.finish_write()
        assert outcome.data_version is not None and outcome.pending is not None
        self.row.update(data_version=outcome.data_version, size=outcome.size,
                        ended_at=outcome.ended, duration=outcome.ended - outcome.started)
        self.pins.add([outcome.data_version])
        self.on_finished(self.row["asset_name"])
        return outcome.pending

    def abandon(self) -> None:
        assert self.outcome.writing is not None
        self.outcome.writing.abandon()


class _ResultLoader:
    """Loads the value of a reused asset when a :class:`RunResult` is first read. An
    object found missing or corrupt then (the run decided on a stat) is materialized
    again, with a warning, by a run of the asset and its upstreams with the code and
    config of the run that made the result."""

    def __init__(self, store: Store, plan: Sequence[Asset],
                 prepared: Mapping[str, PreparedAsset]) -> None:
        self.store, self.plan, self.prepared = store, plan, prepared

    def __call__(self, name: str, data_version: str) -> Any:
        try:
            return self.store.objects.load(data_version)
        except (IntegrityError, ObjectNotFoundError) as exc:
            log.warning("asset %r: %s; materializing it again", name, exc)
        plan = graph.plan({item.name: item for item in self.plan}, [name])
        return ScheduledRun(self.store, plan, {a.name: self.prepared[a.name] for a in plan},
                            ()).execute()[name]


def _failure_message(failed: Mapping[str, str], skipped: Mapping[str, str]) -> str:
    parts = [f"asset {name!r} failed: {error}" for name, error in failed.items()]
    text = "; ".join(parts) or "an upstream value could not be produced"
    if skipped:
        text += f" ({len(skipped)} downstream not run: {', '.join(map(repr, skipped))})"
    return text + "; fix it and run again: what succeeded is kept (see .result)"
