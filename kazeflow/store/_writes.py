"""One value being written into the local object store: pickled into a locked temp file
(or kept in memory when small) while the caller goes on, then hashed, fsynced and handed
back as a :class:`PendingObject` for the store to commit."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from kazeflow.errors import StoreError, UnpicklableResultError
from kazeflow.store import _durable, _pickling

if TYPE_CHECKING:
    from kazeflow.store._objects import ObjectStore


@dataclass(frozen=True)
class PendingObject:
    """An object written to a temp file (held open and locked) but not yet committed;
    or, with no temp file, the bytes of a small one that was already stored."""

    data_version: str
    size: int
    temp: str | None
    raw: BinaryIO | None
    is_new: bool = True  # no object had these bytes when they were written
    data: bytes | None = None


class ObjectWrite:
    """One value being written into ``store`` (see :meth:`ObjectStore.start_write`).

    Creating it pickles the value into a locked temp file (or into memory, when few
    bytes); :meth:`finish` waits for the hash and fsync that may still run in helper
    threads and gives the :class:`PendingObject`; :meth:`abandon` drops it instead. On
    an error either way nothing is left behind.
    """

    def __init__(self, store: ObjectStore, value: Any) -> None:
        self._store = store
        self._temp: str | None = None
        self._raw: BinaryIO | None = None
        self._lock = threading.Lock()
        self._result: PendingObject | BaseException | None = None
        try:
            self._dump = _pickling.dump_started(value, self._open_temp)
        except (OSError, UnpicklableResultError) as exc:
            self._fail(exc)
        except Exception as exc:
            error = _pickling.unpicklable(value, exc)
            error.__cause__ = exc
            self._fail(error)
        except BaseException as exc:
            self._fail(exc)
        #: Whether :meth:`finish` waits for helper threads (a large object).
        self.in_background = self._dump.in_background
        #: After :meth:`finish`: when the object was written, hashed and fsynced.
        self.finished_at = 0.0

    def _open_temp(self) -> BinaryIO:
        self._temp, self._raw = self._store.create_temp()
        return self._raw

    def finish(self) -> PendingObject:
        """Wait until the object is hashed (and, if large, fsynced). Thread-safe: every
        call gives the same object or raises the same error."""
        with self._lock:
            if self._result is None:
                try:
                    self._result = self._finish()
                except BaseException as exc:
                    self._result = exc
            if isinstance(self._result, BaseException):
                raise self._result
            return self._result

    def _finish(self) -> PendingObject:
        try:
            data_version, size, data = self._dump.finish()
            stored = self._store._size(data_version)
            self.finished_at = self._dump.finished_at
            if data is not None:
                kept = PendingObject(data_version, size, None, None, stored is None, data)
                return kept if stored == size else self._store._to_temp(kept)
            assert self._raw is not None and self._temp is not None
            return PendingObject(data_version, size, self._temp, self._raw,
                                 is_new=stored is None)
        except BaseException as exc:
            self._fail(exc)

    def abandon(self) -> None:
        """Drop the object (waiting for its helper threads first)."""
        try:
            pending = self.finish()
        except StoreError:
            return  # finish left nothing behind
        self._store.discard([pending])

    def _fail(self, exc: BaseException) -> NoReturn:
        """Close and remove the temp file, then raise ``exc`` (an OSError as a
        StoreError)."""
        if self._raw is not None:
            self._raw.close()
        if self._temp is not None:
            _durable.remove(self._temp)
        if isinstance(exc, OSError):
            raise _durable.write_error(self._store.root, exc) from exc
        raise exc


