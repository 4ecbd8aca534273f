"""Executing a run: decide each planned asset, run the stale ones, record everything."""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from kazeflow._batch import WriteBatch
from kazeflow._evaluate import Evaluator
from kazeflow._prepare import PreparedAsset
from kazeflow.assets import Asset
from kazeflow.context import AssetContext
from kazeflow.errors import (
    FlowRunError,
    IntegrityError,
    ObjectNotFoundError,
    RecursiveRunError,
    UnpicklableResultError,
)
from kazeflow.freshness import FRESH, AssetInputs
from kazeflow.results import RunResult
from kazeflow.store import Store
from kazeflow.store._locks import FileLock
from kazeflow.store._objects import PendingObject

log = logging.getLogger("kazeflow")

#: The asset being materialized in this thread (guards against recursive runs).
_current_asset: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kazeflow_current_asset", default=None)


def check_not_inside_asset() -> None:
    """Raise when called from inside an asset that is being materialized."""
    name = _current_asset.get()
    if name is not None:
        raise RecursiveRunError(
            f"asset {name!r} called Flow.run while being materialized; declare what it "
            "needs as upstream assets (deps) instead of running a flow inside it")


class _UpstreamFailed(Exception):
    """An upstream value could not be produced (internal control flow)."""


class SequentialRun:
    """One run executed asset by asset in plan order."""

    def __init__(self, store: Store, plan: Sequence[Asset],
                 prepared: Mapping[str, PreparedAsset], forced: Collection[str]) -> None:
        self.store = store
        self.plan = plan
        self.prepared = prepared
        self.evaluator = Evaluator(store, prepared, forced)
        self.run_id = uuid.uuid4().hex
        self.versions: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.materialized: list[str] = []
        self.reused: list[str] = []
        self.failed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, Exception] = {}
        self.batch = WriteBatch(store)
        self._sent_code: set[str] = set()  # code sources queued once per run

    def execute(self) -> RunResult:
        """Run every planned asset that is not fresh; return or raise with the result."""
        meta = self.store.metadata
        self.store.objects.remove_stale_temps()
        started = meta.start_run(self.run_id, selection=[a.name for a in self.plan],
                                 pid=os.getpid(), hostname=socket.gethostname())
        status, error = "failed", None
        try:
            try:
                for item in self.plan:
                    self._step(item)
            finally:
                self.batch.flush()  # even when interrupted: finished work stays
            status = "failed" if self.failed or self.skipped else "succeeded"
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted (KeyboardInterrupt)"
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            meta.finish_run(self.run_id, status=status, n_materialized=len(self.materialized),
                            n_reused=len(self.reused), n_failed=len(self.failed), error=error)
        result = RunResult(
            self.run_id,
            {n: functools.partial(self.store.objects.load, self.versions[n])
             for n in self.reused},
            self.values, materialized=tuple(self.materialized), reused=tuple(self.reused),
            failed=self.failed, skipped=self.skipped, duration=time.time() - started,
            order=tuple(a.name for a in self.plan))
        log.info("run %s: %s", self.run_id[:8], result.summary(),
                 extra={"kazeflow_event": "run_finished", "run_id": self.run_id})
        if self.failed or self.skipped:
            raise FlowRunError(_failure_message(self.failed, self.skipped), result=result,
                               errors=self.errors)
        return result

    def _step(self, item: Asset) -> None:
        blocked = [d for d in item.deps if d in self.failed or d in self.skipped]
        if blocked:
            why = "failed" if blocked[0] in self.failed else "was not run"
            self.skipped[item.name] = f"not run: upstream {blocked[0]!r} {why}"
            return
        inputs = self.evaluator.inputs(item.name, self.versions)
        decision = self.evaluator.decide(inputs)
        if decision.state == FRESH:
            assert decision.reuse is not None and decision.reuse.data_version is not None
            self.versions[item.name] = decision.reuse.data_version
            self.reused.append(item.name)
            log.debug("reusing %r", item.name,
                      extra={"kazeflow_event": "reused", "asset_name": item.name})
            return
        log.debug("materializing %r: %s", item.name, "; ".join(map(str, decision.reasons)),
                  extra={"kazeflow_event": "materializing", "asset_name": item.name})
        self._materialize(item)

    def _materialize(self, item: Asset) -> None:
        try:
            kwargs = {name: self._value(name) for name in item.inputs}
        except _UpstreamFailed as exc:
            self.skipped[item.name] = f"not run: upstream {exc.args[0]!r} failed"
            return
        inputs = self.evaluator.inputs(item.name, self.versions)  # after any repair
        assert inputs.cache_key is not None
        lease = self.store.lease(inputs.cache_key)
        contended = not lease.acquire(blocking=False)
        if contended:
            self.batch.flush()  # never wait while holding leases of our own
            lease.acquire()
        # A lease file we did not create means another run took this key before us:
        # it may have materialized it since we decided.
        if (contended or not lease.created) and self._reuse_after_wait(inputs):
            lease.release()
            return
        try:
            self._execute(item, inputs, kwargs, lease)
        except BaseException:
            lease.release()
            raise

    def _reuse_after_wait(self, inputs: AssetInputs) -> bool:
        """Another run held this key's lease: reuse what it made, if it did."""
        self.evaluator.latest.pop(inputs.asset_name, None)  # it may have a newer one now
        decision = self.evaluator.decide(inputs, fresh=True)
        if decision.state != FRESH or decision.reuse is None:
            return False
        log.info("asset %r: reusing the materialization a concurrent run just made",
                 inputs.asset_name)
        self.versions[inputs.asset_name] = decision.reuse.data_version  # type: ignore[assignment]
        if inputs.asset_name not in self.reused:
            self.reused.append(inputs.asset_name)
        return True

    def _execute(self, item: Asset, inputs: AssetInputs, kwargs: dict[str, Any],
                 lease: FileLock) -> None:
        """Call the asset and queue its record; the batch then owns ``lease``."""
        prepared = self.prepared[item.name]
        context = AssetContext(item.name, self.run_id)
        if item.takes_config:
            kwargs["config"] = prepared.config
        if item.takes_context:
            kwargs["context"] = context
        started = time.time()
        token = _current_asset.set(item.name)
        try:
            value = item.fn(**kwargs)
        except Exception as exc:
            self._fail(item, inputs, started, exc, traceback.format_exc(), lease)
            return
        finally:
            _current_asset.reset(token)
        try:
            pending = self.store.objects.write(value)
        except UnpicklableResultError as exc:
            self._fail(item, inputs, started, exc, f"asset {item.name!r}: {exc}", lease)
            return
        self._queue(inputs, started, lease, status="materialized", obj=pending,
                    metadata=context.metadata)
        self.values[item.name] = value
        self.versions[item.name] = pending.data_version
        if pending.is_new:
            self.evaluator.new_versions.add(pending.data_version)
        if item.name in self.reused:
            self.reused.remove(item.name)
        self.materialized.append(item.name)

    def _value(self, name: str) -> Any:
        """An upstream's value: in memory, loaded from the store, or re-materialized."""
        if name in self.values:
            return self.values[name]
        try:
            self.values[name] = self.store.objects.load(self.versions[name])
        except (IntegrityError, ObjectNotFoundError) as exc:
            log.warning("asset %r: %s; materializing it again", name, exc)
            self.evaluator.forget(self.versions[name])
            self._materialize(self.prepared[name].asset)
            if name not in self.values:  # another run re-made it meanwhile: load theirs
                if name in self.failed or name in self.skipped:
                    raise _UpstreamFailed(name) from None
                try:
                    self.values[name] = self.store.objects.load(self.versions[name])
                except (IntegrityError, ObjectNotFoundError):
                    raise _UpstreamFailed(name) from None
        return self.values[name]

    def _fail(self, item: Asset, inputs: AssetInputs, started: float, exc: Exception,
              error: str, lease: FileLock) -> None:
        log.error("asset %r failed: %s", item.name, error.strip().splitlines()[-1])
        self._queue(inputs, started, lease, status="failed", error=error)
        self.failed[item.name] = error.strip().splitlines()[-1]
        self.errors[item.name] = exc

    def _queue(self, inputs: AssetInputs, started: float, lease: FileLock, *, status: str,
               obj: PendingObject | None = None, error: str | None = None,
               metadata: Mapping[str, Any] | None = None) -> None:
        """Queue the record of one attempt (committed with the batch)."""
        code = self.prepared[inputs.asset_name].code
        new_code = {} if code.code_hash in self._sent_code else {
            code.code_hash: code.components}  # stored once per hash: insert-if-new
        self._sent_code.add(code.code_hash)
        ended = time.time()
        assert inputs.cache_key is not None and inputs.upstream_versions is not None
        row = {"run_id": self.run_id, "asset_name": inputs.asset_name,
               "cache_key": inputs.cache_key, "code_hash": code.code_hash,
               "config_hash": inputs.config_hash, "config": dict(inputs.config),
               "upstream_versions": dict(inputs.upstream_versions),
               "data_version": obj.data_version if obj else None,
               "size": obj.size if obj else None, "started_at": started, "ended_at": ended,
               "duration": ended - started, "status": status, "forced": int(inputs.forced),
               "error": error, "user_metadata": dict(metadata or {})}
        self.batch.add(row, obj, new_code, lease)
        if status == "materialized":
            self.evaluator.latest.pop(inputs.asset_name, None)


def _failure_message(failed: Mapping[str, str], skipped: Mapping[str, str]) -> str:
    parts = [f"asset {name!r} failed: {error}" for name, error in failed.items()]
    text = "; ".join(parts) or "an upstream value could not be produced"
    if skipped:
        text += f" ({len(skipped)} downstream not run: {', '.join(map(repr, skipped))})"
    return text + "; fix it and run again: what succeeded is kept (see .result)"
