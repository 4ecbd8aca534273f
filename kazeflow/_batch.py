"""Group commit: materializations written in a run become durable and recorded together.

Objects are written to locked temp files as assets finish; every ``MAX_AGE`` seconds (or
``MAX_ITEMS`` items, or at the end of the run) the batch is flushed: fsync every object,
rename them into place, then commit their rows in one transaction. The order of
durability is kept (object durable, then row committed) while a run of many small assets
pays about one journal commit per batch instead of two fsyncs per asset. What a kill
loses is at most the last ``MAX_AGE`` seconds of finished work, which the next run redoes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from kazeflow.store import Store
from kazeflow.store._locks import FileLock
from kazeflow.store._objects import PendingObject

log = logging.getLogger("kazeflow")


class WriteBatch:
    """Pending objects, rows and the leases that guard them, flushed together."""

    MAX_ITEMS = 256
    MAX_AGE = 0.02  # seconds

    def __init__(self, store: Store) -> None:
        self.store = store
        self._objects: list[PendingObject] = []
        self._rows: list[dict[str, Any]] = []
        self._code: dict[str, Mapping[str, str]] = {}
        self._leases: list[FileLock] = []
        self._gc_hold: FileLock | None = None
        self._since = 0.0

    def hold_off_gc(self) -> None:
        """Take the shared gc lock before writing an object; kept until the flush."""
        if self._gc_hold is None:
            hold = self.store.writing()
            hold.acquire()
            self._gc_hold = hold

    def add(self, row: dict[str, Any], obj: PendingObject | None,
            code: Mapping[str, Mapping[str, str]], lease: FileLock) -> None:
        """Queue one materialization record (and its object); the batch owns ``lease``."""
        if not self._rows:
            self._since = time.monotonic()
        self._rows.append(row)
        if obj is not None:
            self._objects.append(obj)
        self._code.update(code)
        self._leases.append(lease)

    def due(self) -> bool:
        """Whether the batch has waited long enough, or grown large enough, to flush."""
        return bool(self._rows) and (len(self._rows) >= self.MAX_ITEMS
                                     or time.monotonic() - self._since >= self.MAX_AGE)

    def flush(self) -> None:
        """Make the objects durable and visible, then commit their rows."""
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
            self.store.objects.discard(self._objects)  # left only if commit failed
            self._objects, self._rows, self._code = [], [], {}
            self._release()

    def _release(self) -> None:
        for lease in self._leases:
            lease.release()
        self._leases = []
        if self._gc_hold is not None:
            self._gc_hold.release()
            self._gc_hold = None
