"""Group commit: materializations written in a run become durable and recorded together.

Objects are written to locked temp files as assets finish. ``MAX_AGE`` seconds after the
first one (or at ``MAX_ITEMS`` items, or at the end of the run) the batch is flushed:
the objects are made durable and renamed into place, then their rows are committed in
one transaction. The order of durability is kept (object durable, then row committed)
while a run of many small assets pays about one journal commit per batch instead of two
fsyncs per asset. A kill loses at most the last ``MAX_AGE`` seconds of finished work,
which the next run redoes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from kazeflow.store import Store
from kazeflow.store._locks import FileLock
from kazeflow.store._objects import PendingObject

log = logging.getLogger("kazeflow")


class WriteBatch:
    """Pending objects, rows and the leases that guard them, flushed together.

    A timer flushes a batch ``MAX_AGE`` after its first item even while the next asset
    is still running, so a kill never loses more than that much finished work, and the
    leases and gc lock are never held across a long asset. Thread-safe.
    """

    MAX_ITEMS = 256
    MAX_AGE = 0.02  # seconds

    def __init__(self, store: Store) -> None:
        self.store = store
        self._objects: list[PendingObject] = []
        self._rows: list[dict[str, Any]] = []
        self._code: dict[str, Mapping[str, str]] = {}
        self._leases: list[FileLock] = []
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._error: BaseException | None = None

    def add(self, row: dict[str, Any], obj: PendingObject | None,
            code: Mapping[str, Mapping[str, str]], lease: FileLock) -> None:
        """Queue one materialization record (and its object); the batch owns ``lease``."""
        with self._lock:
            self._raise_timer_error()
            self._rows.append(row)
            if obj is not None:
                self._objects.append(obj)
            self._code.update(code)
            self._leases.append(lease)
            if len(self._rows) >= self.MAX_ITEMS:
                self.flush()
            elif self._timer is None:
                self._timer = threading.Timer(self.MAX_AGE, self._flush_on_timer)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Make the objects durable and visible, then commit their rows.

        gc is held off (shared gc lock) from publishing the objects to committing the
        rows, so it never removes an object whose row is about to point at it.
        """
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._raise_timer_error()
            if not self._rows and not self._leases:
                return
            hold = self.store.writing()
            hold.acquire()
            try:
                if self._objects:
                    self.store.objects.commit(self._objects)
                    self._objects = []
                if self._rows:
                    self.store.metadata.record(
                        self._rows, code=self._code,
                        new_objects=[(r["data_version"], r["size"]) for r in self._rows
                                     if r["data_version"] is not None])
            finally:
                hold.release()
                self.store.objects.discard(self._objects)  # left only if commit failed
                self._objects, self._rows, self._code = [], [], {}
                for lease in self._leases:
                    lease.release()
                self._leases = []

    def _flush_on_timer(self) -> None:
        with self._lock:
            self._timer = None
            try:
                self.flush()
            except BaseException as exc:  # surfaces in the run's thread at its next call
                log.error("flushing finished materializations failed: %s", exc)
                self._error = exc

    def _raise_timer_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
