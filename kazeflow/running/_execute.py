"""Executing a run: a scheduler in this process decides each planned asset as soon as its
upstreams are done, hands the stale ones to an executor, and records everything.

The parent alone decides (the same code as ``status``) and writes metadata; executors
only call asset functions. With the sequential executor every call completes at once, so
assets run one by one in plan order: one scheduling code path for every executor.

An asset's value is handed on as soon as its bytes are written, while their hash and fsync
finish in helper threads: a downstream that runs whatever that data version turns out to
be starts at once (see :mod:`kazeflow.running._early`); any other waits for it. Recording is
:mod:`kazeflow.running._record`'s, the group commit :mod:`kazeflow.running._batch`'s.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kazeflow.assets import Asset
from kazeflow.context import DEBUG, log, logs
from kazeflow.errors import (
    IntegrityError,
    KazeflowError,
    ObjectNotFoundError,
    WorkerDiedError,
)
from kazeflow.executors import Executor, SequentialExecutor, finished, holding
from kazeflow.fingerprint._files import InputFiles
from kazeflow.results import FRESH, RunResult
from kazeflow.running import _plan
from kazeflow.running._early import EarlyStarts
from kazeflow.running._evaluate import Evaluator
from kazeflow.running._freshness import AssetInputs
from kazeflow.running._prepare import PreparedAsset
from kazeflow.running._ready import ready_queue
from kazeflow.running._record import Recorder
from kazeflow.running._runrecord import ResultLoader, recorded_run, run_result
from kazeflow.running._runstate import Job, RunState
from kazeflow.running._tasks import Outcome, call_local, call_remote, remote_payload
from kazeflow.store.interface import Lock, RunStore

if TYPE_CHECKING:  # imported once a call is submitted (see kazeflow.executors)
    import concurrent.futures


class _UpstreamFailed(Exception):
    """An upstream value could not be produced (internal control flow)."""


class ScheduledRun:
    """One run: assets start as soon as their upstreams are done, on ``executor``.

    Args:
        executor: where stale assets execute (default: inline, in plan order).
        pools: pool name → how many of its assets may run at once (default 1 each).
    """

    def __init__(self, store: RunStore, plan: Sequence[Asset],
                 prepared: Mapping[str, PreparedAsset], forced: Collection[str],
                 executor: Executor | None = None, pools: Mapping[str, int] | None = None,
                 owns_executor: bool = True, files: InputFiles | None = None) -> None:
        self.store = store
        self.plan = plan
        self.prepared = prepared
        #: Whether per-asset events are logged (debug level; the CLI's progress uses
        #: them). Why an asset re-runs is told only then: else no full records are read.
        self.verbose = logs(DEBUG)
        self.evaluator = Evaluator(store.metadata, store.objects, prepared, forced,
                                   reasons=self.verbose)
        self.executor: Executor = executor or SequentialExecutor()
        self.owns_executor = owns_executor
        self.pools = dict(pools or {})
        self.run_id = os.urandom(16).hex()  # uuid would import platform, for nothing
        self.state = RunState()
        self.early = EarlyStarts(self.evaluator, store.lease, self._known_version)
        self.recorder = Recorder(store, self.run_id, prepared, self.evaluator, self.state,
                                 on_object_finished=self.early.claim,
                                 files=files or InputFiles(None))
        self._ready = ready_queue(plan, self.pools, self.executor.max_workers)
        self._running: dict[concurrent.futures.Future[Outcome], Job] = {}
        #: Finished, not yet noted: their object is still being hashed and fsynced (a
        #: leased job's row is queued already), or they started early (see :meth:`_land`).
        #: In the order they finished.
        self._landing: dict[str, tuple[Job, Outcome]] = {}
        self._payloads: dict[str, bytes] = {}

    def execute(self) -> RunResult:
        """Run every planned asset that is not fresh; return or raise with the result."""
        pins = self.recorder.pins
        self.store.objects.remove_stale_temps()
        with recorded_run(self.store.metadata, self.run_id, self.plan, self.state,
                          pins) as started:
            try:
                pins.open()
                self.recorder.pin(r.data_version for r in self.evaluator.latest_keys.values()
                                  if r.data_version is not None)
                self._schedule()
            except BaseException:
                self._stop_running()
                raise
            finally:
                if self.owns_executor:
                    self.executor.shutdown()
                self.recorder.batch.flush()  # even when interrupted: finished work stays
        load = ResultLoader(self.store.objects,
                            functools.partial(rerun, self.store, self.plan, self.prepared))
        return run_result(self.run_id, self.state, self.plan, self._ready.index, load,
                          started, pins)

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
                done = finished(list(self._running), first=True)
                position = self._ready.index
                for future in sorted(done, key=lambda f: position[self._running[f].item.name]):
                    if future in self._running:  # not completed by a _drain meanwhile
                        self._complete(future)
        while self._landing:
            self._land(next(iter(self._landing)))

    def _drain(self) -> None:
        """Wait for every running asset and record it (before waiting on a lease)."""
        while self._running:
            for future in finished(list(self._running)):
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
            if job.early:
                self.recorder.drop(outcome)
        self._landing.clear()
        self.early.forget_all()

    def _discard(self, future: concurrent.futures.Future[Outcome]) -> None:
        """Drop the written object of an asset that finished after the run stopped."""
        if not future.cancelled() and future.exception() is None:
            self.recorder.drop(future.result())

    # ------------------------------------------------------------------ one asset

    def _step(self, item: Asset) -> None:
        """Decide one ready asset: reuse it, start it early, or materialize it."""
        if self._landing and self._after_landing(item):
            return
        blocked = self.state.blocked_by(item)
        if blocked is not None:
            self.state.skipped[item.name] = blocked
            self._ready.done(item.name)
            return
        decision = self.evaluator.evaluate(item.name, self.state.versions)
        while decision.state == FRESH and not self.recorder.pinned_in_store(decision.reuse):
            decision = self.evaluator.evaluate(item.name, self.state.versions)  # gc took it
        if decision.state != FRESH:
            if decision.reasons and decision.reasons[0].kind == "object_missing":
                log.warning("asset %r: its stored object %s… is missing, truncated or "
                            "quarantined; materializing it again", item.name,
                            str(decision.reasons[0].details.get("data_version"))[:12])
            if self.verbose:
                log.debug("materializing %r: %s", item.name,
                          "; ".join(map(str, decision.reasons)),
                          extra={"kazeflow_event": "materializing", "asset_name": item.name})
            self._materialize(item)
            return
        assert decision.reuse is not None
        self.recorder.note_reused(item.name, decision.reuse)
        if self.verbose:
            log.debug("reusing %r", item.name,
                      extra={"kazeflow_event": "reused", "asset_name": item.name})
        self._ready.done(item.name)

    def _after_landing(self, item: Asset) -> bool:
        """Before deciding ``item``, whose upstreams may still be landing: start it at
        once if it runs whatever their data versions are (True), else land them."""
        landing = [d for d in item.deps if d in self._landing]
        if not landing:
            return False
        if (not any(self._landing[d][0].early for d in landing)
                and self.state.blocked_by(item) is None
                and self.evaluator.runs_anyway(item.name)
                and (job := self.early.start(item, landing)) is not None):
            if self.verbose:
                log.debug("materializing %r while %s is stored", item.name,
                          ", ".join(map(repr, landing)),
                          extra={"kazeflow_event": "materializing", "asset_name": item.name})
            self._materialize(item, early=job)
            return True
        for name in landing:
            if name in self._landing:  # not landed with another meanwhile
                self._land(name)
        return False

    def _known_version(self, name: str) -> str | None:
        """The data version of ``name`` if known: noted, or of its landing object."""
        version = self.state.versions.get(name)
        if version is None and (landing := self._landing.get(name)) is not None:
            version = landing[1].data_version
        return version

    def _materialize(self, item: Asset, repair: bool = False,
                     early: Job | None = None) -> None:
        """Take the key's lease and hand the asset to the executor; a ``repair`` (an
        upstream whose object was lost) runs inline and releases nothing downstream; an
        ``early`` job starts before an upstream's data version is known (its lease is
        claimed for it)."""
        local = repair or self.executor.in_process
        try:
            kwargs = {name: self._value(name) for name in item.inputs} if local else {}
        except _UpstreamFailed as exc:
            self.state.skipped[item.name] = f"not run: upstream {exc.args[0]!r} failed"
            if early is not None:
                self.early.forget(item.name)
            if not repair:
                self._ready.done(item.name)
            return
        job = early
        if job is None:
            inputs = self.evaluator.inputs(item.name, self.state.versions)  # after repairs
            lease = self._lease(inputs)
            if lease is None:
                if not repair:
                    self._ready.done(item.name)
                return
            job = Job(item, time.time(), inputs=inputs, lease=lease)
        try:
            if repair:
                outcome = call_local(item, kwargs, self.prepared[item.name].config,
                                     self.run_id, self.store.objects)
                self.recorder.record(job, outcome)
                return
            future = self._submit(item, kwargs)
        except BaseException:
            if job.early:
                self.early.forget(item.name)
            else:
                job.release()
            raise
        self._running[future] = job
        self._ready.started(item)

    def _lease(self, inputs: AssetInputs, held: Lock | None = None) -> Lock | None:
        """Take the lease of ``inputs``' cache key (unless ``held``, claimed already),
        waiting if another run holds it; None if that run materialized it meanwhile
        (then reused, nothing held)."""
        assert inputs.cache_key is not None
        lease = held or self.store.lease(inputs.cache_key)
        contended = held is None and not lease.acquire(blocking=False)
        if contended:
            self._drain()  # never wait while holding leases of our own
            self.recorder.batch.flush()
            lease.acquire()
        # A lease file we did not create means another run took this key before us:
        # it may have materialized it since we decided.
        if (contended or not lease.created) and self.recorder.reuse_after_wait(inputs):
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
                return holding(Outcome(time.time(), time.time(), exc=exc, error=(
                    f"asset {item.name!r} cannot be sent to a worker process: "
                    f"{type(exc).__name__}: {exc}; use executor='threads' or make the "
                    "function picklable by cloudpickle")))
        upstream = {name: self.state.versions[name] for name in item.inputs}
        return self.executor.submit(call_remote, payload, item.name, upstream, self.run_id,
                                    self.store.objects.location,
                                    getattr(self.executor, "same_host", True))

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
            self.state.values.pop(upstream, None)
            try:
                self._value(upstream)
            except _UpstreamFailed:
                self.state.skipped[name] = f"not run: upstream {upstream!r} failed"
                self._ready.done(name)
                return
            self._materialize(job.item)
            return
        writing = outcome.writing is not None and outcome.writing.in_background
        if not job.early and not writing:
            self.recorder.record(job, outcome)
        else:  # landing: its data version is not known yet
            if not job.early:  # the batch waits for the object
                assert job.inputs is not None and job.lease is not None
                self.recorder.queue(job.inputs, outcome, job.lease)
            self._landing[name] = (job, outcome)
            if outcome.error is None:
                self.state.values[name] = outcome.value  # for downstream that start early
        self._ready.done(name)

    def _land(self, name: str) -> None:
        """Note the landing asset ``name`` in this run once its object is written. If it
        started early, land its upstreams, take its key's lease and record it (or reuse
        what another run materialized with that key meanwhile)."""
        job, outcome = self._landing[name]
        if not job.early:  # queued already
            outcome.finish_write()
            self.recorder.note(name, outcome)
            del self._landing[name]  # only now: its version is always in one of the two
            return
        del self._landing[name]
        for dep in job.item.deps:
            if dep in self._landing:
                self._land(dep)
        claimed = self.early.land(name)
        inputs = self.evaluator.inputs(name, self.state.versions)
        lease = self._lease(inputs, held=claimed)
        if lease is None:
            self.state.values.pop(name, None)
            self.recorder.drop(outcome)
            return
        self.recorder.record(Job(job.item, job.submitted, inputs=inputs, lease=lease),
                             outcome)

    def _value(self, name: str) -> Any:
        """An upstream's value: in memory, loaded from the store, or re-materialized."""
        state = self.state
        if name in state.values:
            return state.values[name]
        try:
            state.values[name] = self.store.objects.load(state.versions[name])
        except (IntegrityError, ObjectNotFoundError) as exc:
            log.warning("asset %r: %s; materializing it again", name, exc)
            self.evaluator.forget(state.versions[name])
            self._materialize(self.prepared[name].asset, repair=True)
            if name not in state.values:  # another run re-made it meanwhile: load theirs
                if name in state.failed or name in state.skipped:
                    raise _UpstreamFailed(name) from None
                try:
                    state.values[name] = self.store.objects.load(state.versions[name])
                except (IntegrityError, ObjectNotFoundError):
                    raise _UpstreamFailed(name) from None
        return state.values[name]


def rerun(store: RunStore, plan: Sequence[Asset], prepared: Mapping[str, PreparedAsset],
          name: str) -> Any:
    """Materialize ``name`` again with the code and config of ``prepared`` (and its
    upstreams as needed), by a run of that asset alone."""
    plan = _plan.plan({item.name: item for item in plan}, [name])
    return ScheduledRun(store, plan, {a.name: prepared[a.name] for a in plan}, ()).execute()[name]
