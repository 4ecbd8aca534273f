"""Recording a run: each attempt's row goes into the write batch with its object and
lease, what the run reads or makes is pinned against gc, and the run's state notes it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kazeflow.context import log
from kazeflow.errors import last_line
from kazeflow.fingerprint._files import InputFiles, texts
from kazeflow.results import FRESH, Materialization, RecordKey
from kazeflow.running._batch import WriteBatch
from kazeflow.running._evaluate import Evaluator
from kazeflow.running._freshness import AssetInputs
from kazeflow.running._prepare import PreparedAsset
from kazeflow.running._runstate import Job, RunState
from kazeflow.running._tasks import Outcome
from kazeflow.store.interface import Lock, Pins, RunStore, StoredObject


class Recorder:
    """Queues the records of one run and notes what it made or reused.

    Args:
        files: the hashes of the files assets read (and their texts, kept for diffs).
        on_object_finished: called with an asset's name when its object, written in the
            background, is finished (before its row commits): the early starts claim
            the leases that its data version decides.
    """

    def __init__(self, store: RunStore, run_id: str, prepared: Mapping[str, PreparedAsset],
                 evaluator: Evaluator, state: RunState,
                 on_object_finished: Callable[[str], None], files: InputFiles) -> None:
        self.store = store
        self.run_id = run_id
        self.prepared = prepared
        self.evaluator = evaluator
        self.state = state
        self.on_object_finished = on_object_finished
        self.files = files  # the texts of small input files are kept, for diffs
        self.batch = WriteBatch(store)
        self.pins: Pins = store.pins(run_id)  # what gc must keep while this run lives
        self._sent_code: set[str] = set()  # code sources queued once per run

    def record(self, job: Job, outcome: Outcome) -> None:
        """Record a finished attempt of a leased job: failed, or materialized once its
        object is finished (the batch then owns the job's lease)."""
        item, inputs, lease = job.item, job.inputs, job.lease
        assert inputs is not None and lease is not None
        if outcome.error is not None:
            error = last_line(outcome.error)
            log.error("asset %r failed: %s", item.name, error)
            self.queue(inputs, outcome, lease)
            self.state.failed[item.name] = error
            if isinstance(outcome.exc, Exception):
                self.state.errors[item.name] = outcome.exc
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
                self.record(job, outcome)
                return
        self.queue(inputs, outcome, lease, hold)
        self.note(item.name, outcome)

    def queue(self, inputs: AssetInputs, outcome: Outcome, lease: Lock,
              hold: Lock | None = None) -> None:
        """Queue the record of one attempt (committed with the batch); an object still
        being written is waited for by the batch, which then fills in its row."""
        prepared = self.prepared[inputs.asset_name]
        code = prepared.code
        last = self.evaluator.latest_keys.get(inputs.asset_name)
        if last is not None and last.code_hash == code.code_hash:  # its record holds it
            self._sent_code.add(code.code_hash)
        new_code = {} if code.code_hash in self._sent_code else {
            code.code_hash: code.components}  # stored once per hash: insert-if-new
        self._sent_code.add(code.code_hash)
        if prepared.external:  # small text inputs, stored by content hash like code
            found = texts(self.files, prepared.external, known=self._sent_code)
            new_code.update(found)
            self._sent_code.update(found)
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
               "user_metadata": dict(outcome.metadata), "libraries": prepared.libraries}
        unfinished = None
        if data_version is not None:  # visible to gc before its row commits
            self.pins.add([data_version])
        elif outcome.error is None:
            unfinished = _Unfinished(row, outcome, self.pins, self.on_object_finished)
        self.batch.add(row, outcome.pending, new_code, lease, hold, unfinished)
        if status == "materialized":
            self.evaluator.forget_latest(inputs.asset_name)

    def note(self, name: str, outcome: Outcome) -> None:
        """Note a recorded materialization in this run (its data version is known)."""
        assert outcome.data_version is not None
        if outcome.pending is not None:
            self.state.values[name] = outcome.value
        self.state.versions[name] = outcome.data_version
        if outcome.is_new:
            self.evaluator.new_versions.add(outcome.data_version)
        self.state.reused.pop(name, None)
        self.state.materialized[name] = None

    def note_reused(self, name: str, record: Materialization | RecordKey) -> None:
        """Note that this run reuses ``record`` for ``name``."""
        assert record.data_version is not None
        self.state.versions[name] = record.data_version
        self.state.reused[name] = None

    def reuse_after_wait(self, inputs: AssetInputs) -> bool:
        """Another run held this key's lease: reuse what it made, if it did."""
        self.evaluator.forget_latest(inputs.asset_name)  # it may have a newer one now
        decision = self.evaluator.decide(inputs, fresh=True)
        if decision.state != FRESH or not self.pinned_in_store(decision.reuse):
            return False
        log.info("asset %r: reusing the materialization a concurrent run just made",
                 inputs.asset_name)
        assert decision.reuse is not None
        self.note_reused(inputs.asset_name, decision.reuse)
        return True

    def pin(self, data_versions: Iterable[str]) -> None:
        """Pin objects against gc, under the shared gc lock: gc either sees the pin or
        has finished before it (and the caller's next stat sees what it removed)."""
        hold = self.store.writing()
        hold.acquire()
        try:
            self.pins.add(data_versions)
        finally:
            hold.release()

    def pinned_in_store(self, record: Materialization | RecordKey | None) -> bool:
        """Pin a record chosen for reuse; whether its object is still there."""
        assert record is not None and record.data_version is not None
        if record.data_version in self.pins.pinned:
            return True
        self.pin([record.data_version])
        self.evaluator.forget(record.data_version)
        return self.evaluator.object_exists(record)

    def drop(self, outcome: Outcome) -> None:
        """Drop the object of a finished asset that will not be recorded."""
        if outcome.writing is not None:
            outcome.writing.abandon()
        elif outcome.pending is not None:
            self.store.objects.discard([outcome.pending])


class _Unfinished:
    """The object of a queued row, still being hashed and fsynced: the batch waits for
    it before committing (in whichever thread flushes) and fills in the row."""

    __slots__ = ("row", "outcome", "pins", "on_finished")

    def __init__(self, row: dict[str, Any], outcome: Outcome, pins: Pins,
                 on_finished: Callable[[str], None]) -> None:
        self.row, self.outcome, self.pins, self.on_finished = row, outcome, pins, on_finished

    def finish(self) -> StoredObject:
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
