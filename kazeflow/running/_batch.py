"""Group commit: materializations written in a run become durable and recorded together.

Objects are written to locked temp files as assets finish. At most ``MAX_AGE`` seconds
after the first one (or at ``MAX_ITEMS`` items, or at the end of the run) the batch is
flushed: the objects are made durable and renamed into place, then their rows are
committed in one transaction. The order of durability is kept (object durable, then row
committed) while a run of many small assets pays about one journal commit per batch
instead of two fsyncs per asset. A kill loses at most the last ``MAX_AGE`` seconds of
finished work, which the next run redoes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from kazeflow.context import log
from kazeflow.store.interface import Lock, RunStore, StoredObject


class Unfinished(Protocol):
    """An object still being written: ``finish()`` waits for it (and completes its row),
    ``abandon()`` drops it."""

    def finish(self) -> StoredObject: ...

    def abandon(self) -> None: ...


class WriteBatch:
    """Pending objects, rows and the leases that guard them, flushed together.

    The run's thread flushes a batch itself when it queues an item and the batch is
    ``DUE_AGE`` old (or full); if no item comes (a long asset runs), a timer thread
    flushes it ``MAX_AGE`` after its first item, while the run goes on: a kill never
    loses more than that much finished work, and leases and the gc lock are never held
    across a long asset. Flushing in the run's thread when it can is cheaper: SQLite
    gives up the GIL at every row it inserts, and a flushing thread racing the run's
    thread for it made cold runs of many small assets ≈ 10% slower. Thread-safe.
    """

    MAX_ITEMS = 256
    MAX_AGE = 0.05  # seconds
    DUE_AGE = 0.04  # seconds; below MAX_AGE, so that the run's thread comes first

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._objects: list[StoredObject] = []
        self._unfinished: list[Unfinished] = []
        self._rows: list[dict[str, Any]] = []
        self._code: dict[str, Mapping[str, str]] = {}
        self._leases: list[Lock] = []
        self._lock = threading.Lock()  # guards the lists: held only briefly
        self._io_lock = threading.Lock()  # one flush at a time, in queue order
        self._timer: threading.Timer | None = None
        self._first = 0.0  # when the oldest queued item was queued (monotonic)
        self._error: BaseException | None = None
        #: Objects that worker processes renamed into place, not yet made durable.
        self._unsynced = False

    def add(self, row: dict[str, Any], obj: StoredObject | None,
            code: Mapping[str, Mapping[str, str]], lease: Lock, hold: Lock | None = None,
            unfinished: Unfinished | None = None) -> None:
        """Queue one materialization record with its object, written (``obj``) or still
        being written (``unfinished``: the flush waits for it). The batch owns ``lease``
        and ``hold`` (a gc lock guarding an object a worker process already committed)
        from the start, even when this raises the error of a failed timer flush: the
        next flush commits or drops them."""
        now = time.monotonic()
        with self._lock:
            self._rows.append(row)
            if len(self._rows) == 1:
                self._first = now
            if obj is not None:
                self._objects.append(obj)
            if unfinished is not None:
                self._unfinished.append(unfinished)
            self._code.update(code)
            self._leases.append(lease)
            if hold is not None:
                self._leases.append(hold)
                self._unsynced = True
            due = len(self._rows) >= self.MAX_ITEMS or now - self._first >= self.DUE_AGE
            if not due and self._timer is None:
                self._timer = threading.Timer(self.MAX_AGE, self._flush_on_timer)
                self._timer.daemon = True
                self._timer.start()
        self._raise_timer_error()
        if due:
            self.flush()

    def flush(self) -> None:
        """Make the queued objects durable and visible, then commit their rows.

        Returns once everything queued before the call is committed (also what a timer
        flush was committing). gc is held off (shared gc lock) from publishing the
        objects to committing the rows, so it never removes an object whose row is about
        to point at it. The run's thread may queue more meanwhile.
        """
        with self._io_lock:
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                objects, unfinished, rows, code, leases = (
                    self._objects, self._unfinished, self._rows, self._code, self._leases)
                self._objects, self._unfinished, self._rows, self._code, self._leases = \
                    [], [], [], {}, []
                unsynced, self._unsynced = self._unsynced, False
            if rows or leases:
                self._commit(objects, unfinished, rows, code, leases, unsynced)
        self._raise_timer_error()

    def _commit(self, objects: list[StoredObject], unfinished: list[Unfinished],
                rows: list[dict[str, Any]], code: Mapping[str, Mapping[str, str]],
                leases: list[Lock], unsynced: bool = False) -> None:
        hold = self.store.writing()
        try:
            # outside the gc lock: this may wait for hashes and fsyncs
            for done, obj in enumerate(unfinished):
                try:
                    objects.append(obj.finish())
                except BaseException:
                    for rest in unfinished[done + 1:]:
                        rest.abandon()
                    raise
            hold.acquire()
            if objects:
                self.store.objects.commit(objects)
                objects = []
            if unsynced:
                self.store.objects.sync()
            if rows:
                self.store.metadata.record(
                    rows, code=code, new_objects=[(r["data_version"], r["size"])
                                                  for r in rows if r["data_version"]])
        finally:
            if hold.held:
                hold.release()
            self.store.objects.discard(objects)  # left only if commit failed
            for lease in leases:
                lease.release()

    def _flush_on_timer(self) -> None:
        try:
            self.flush()
        except BaseException as exc:  # surfaces in the run's thread at its next call
            log.error("flushing finished materializations failed: %s", exc)
            self._error = exc

    def _raise_timer_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
