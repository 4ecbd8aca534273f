"""Content-addressed object store: ``objects/ab/cdef…`` named by the SHA-256 of the bytes."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import io
import itertools
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from kazeflow import _pickling
from kazeflow.errors import (
    IntegrityError,
    ObjectNotFoundError,
    StoreError,
    UnpicklableResultError,
)
from kazeflow.store._locks import try_lock_fd

log = logging.getLogger("kazeflow")

TEMP_SUFFIX = ".partial"


class ObjectStore:
    """Immutable pickled objects under ``root``, written atomically, verified on read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = f"{root}{os.sep}"
        self.quarantine_dir = root.parent / "quarantine"

    def path(self, data_version: str) -> Path:
        """Where the object ``data_version`` lives (whether or not it exists)."""
        return Path(self._file(data_version))

    def _file(self, data_version: str) -> str:
        """:meth:`path` as a plain string: the hot paths below run once per asset, and
        building a ``Path`` costs more than the stat that follows."""
        return f"{self._prefix}{data_version[:2]}{os.sep}{data_version[2:]}"

    def has(self, data_version: str, size: int) -> bool:
        """Whether the object exists with its recorded size: a stat, never a re-hash."""
        return _size(self._file(data_version)) == size

    def put(self, value: Any) -> tuple[str, int]:
        """Pickle ``value`` durably; return its data version and size (write + commit)."""
        pending = self.write(value)
        self.commit([pending])
        return pending.data_version, pending.size

    def write(self, value: Any) -> PendingObject:
        """Pickle ``value`` while hashing it: a small pickle in memory, written to a
        locked temp file only if no object has its bytes yet; a large one streamed into
        such a file. :meth:`start_write`, then waiting for it.

        Nothing is visible under an object name until :meth:`commit`.

        Raises:
            UnpicklableResultError: ``value`` cannot be pickled (nothing is left behind).
            StoreError: the store cannot be written (disk full, read-only).
        """
        return self.start_write(value).finish()

    def start_write(self, value: Any) -> ObjectWrite:
        """Start :meth:`write`: when this returns, every byte of ``value`` is written and
        ``value`` is not read again; the hash and fsync of a large object may still run
        (:meth:`ObjectWrite.finish` waits for them). Raises as :meth:`write`."""
        return ObjectWrite(self, value)

    @property
    def can_sync_later(self) -> bool:
        """Whether :meth:`sync` makes earlier renames durable (Linux ``syncfs``)."""
        return _syncfs is not None

    def sync(self) -> None:
        """Make every object renamed into place so far durable (one ``syncfs``)."""
        if _syncfs is not None:
            try:
                _syncfs(self.root)
            except OSError as exc:
                raise _write_error(self.root, exc) from exc

    def commit(self, pending: list[PendingObject], durable: bool = True) -> None:
        """Make written objects durable and visible under their names.

        One object: fsync, rename, fsync the folder. Several: rename all, then one
        ``syncfs`` (about one journal commit for the whole batch instead of two fsyncs
        per object). Either way the caller commits metadata rows only afterwards. An
        object that already exists with the same size is kept as it is (dedup). With
        ``durable=False`` (only where :attr:`can_sync_later`) objects are renamed only:
        whoever records them calls :meth:`sync` first.
        """
        pending = list(pending)
        group = len(pending) > 1 and _syncfs is not None
        try:
            for i, item in enumerate(pending):
                pending[i] = self._spill(item)
            if not durable:
                pass
            elif not group:
                for item in pending:
                    if item.raw is not None:
                        os.fsync(item.raw.fileno())
            folders = set()
            for item in pending:
                if item.temp is None:  # already stored (checked again just above)
                    continue
                final = self._file(item.data_version)
                if _size(final) == item.size:
                    os.unlink(item.temp)
                else:
                    folder = os.path.dirname(final)
                    try:
                        os.replace(item.temp, final)
                    except FileNotFoundError:  # first object of this objects/ab folder
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(folder, mode=0o700)
                        os.replace(item.temp, final)
                    folders.add(folder)
            if not durable:
                pass
            elif group:
                _syncfs(self.root)  # type: ignore[misc]
            else:
                for folder in folders:
                    _fsync_dir(folder)
        except OSError as exc:
            self.discard(pending)
            raise _write_error(self.root, exc) from exc
        finally:
            for item in pending:
                if item.raw is not None:
                    item.raw.close()

    def _spill(self, item: PendingObject) -> PendingObject:
        """``item`` itself, or, if it was kept in memory because an equal object was
        stored and that object has vanished since (gc), ``item`` written to a temp file."""
        if item.temp is not None or self.has(item.data_version, item.size):
            return item
        return self._to_temp(item, is_new=True)

    def _to_temp(self, item: PendingObject, is_new: bool | None = None) -> PendingObject:
        """``item``, kept in memory, written to a locked temp file (``is_new``: whether
        no object had its bytes, if that changed since it was written)."""
        assert item.data is not None
        temp = f"{self._prefix}{_temp_name()}"
        raw = _open_locked(temp)
        try:
            raw.write(item.data)
            raw.flush()
        except BaseException:
            raw.close()
            _remove(temp)
            raise
        return PendingObject(item.data_version, item.size, temp, raw,
                             item.is_new if is_new is None else is_new)

    def discard(self, pending: list[PendingObject]) -> None:
        """Drop written objects that will not be committed."""
        for item in pending:
            if item.raw is not None:
                item.raw.close()
            if item.temp is not None:
                _remove(item.temp)

    def load(self, data_version: str) -> Any:
        """Read, verify and unpickle the object ``data_version``.

        Raises:
            ObjectNotFoundError: the object is not in the store.
            IntegrityError: its bytes do not match its hash (it is quarantined first).
        """
        path = self.path(data_version)
        try:
            raw = open(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(
                f"object {data_version[:12]}… is missing from {self.root}; run the flow to "
                "materialize it again", path=path) from None
        with raw:
            read = _pickling.read_object(raw)
        if read.digest != data_version:
            moved = self.quarantine(data_version)
            raise IntegrityError(
                f"object {data_version[:12]}… is corrupt (its bytes do not hash to its "
                f"name); it was moved to {moved} and the next run will materialize it "
                "again", data_version=data_version, path=moved)
        return _pickling.load(read)

    def remove_stale_temps(self, grace_seconds: float = 60.0) -> int:
        """Delete temp files of crashed writers; return how many.

        A temp file is stale when no process holds its lock (its writer died) and it is
        older than ``grace_seconds`` (its writer cannot be between create and lock).
        """
        removed = 0
        horizon = time.time() - grace_seconds
        for temp in self.root.glob(f"*{TEMP_SUFFIX}"):
            try:
                fd = os.open(temp, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                if os.fstat(fd).st_mtime <= horizon and try_lock_fd(fd):
                    temp.unlink(missing_ok=True)
                    removed += 1
            finally:
                os.close(fd)
        return removed

    def iter_objects(self) -> Iterator[tuple[str, Path]]:
        """Every stored object as (data version, path); temp files are never objects."""
        for shard in sorted(self.root.iterdir()):
            if shard.is_dir() and len(shard.name) == 2:
                for path in sorted(shard.iterdir()):
                    if len(path.name) == 62 and not path.name.endswith(TEMP_SUFFIX):
                        yield shard.name + path.name, path

    def quarantine(self, data_version: str) -> Path:
        """Move a corrupt object aside so that it counts as missing from now on."""
        self.quarantine_dir.mkdir(mode=0o700, exist_ok=True)
        target = self.quarantine_dir / f"{data_version}.{int(time.time())}"
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path(data_version), target)
        log.warning("quarantined corrupt object %s to %s", data_version[:12], target)
        return target


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
        self._temp = f"{store._prefix}{_temp_name()}"
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
        self._raw = _open_locked(self._temp)
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
            stored = _size(self._store._file(data_version))
            self.finished_at = self._dump.finished_at
            if data is not None:
                kept = PendingObject(data_version, size, None, None, stored is None, data)
                return kept if stored == size else self._store._to_temp(kept)
            assert self._raw is not None
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
        _remove(self._temp)
        if isinstance(exc, OSError):
            raise _write_error(self._store.root, exc) from exc
        raise exc


_TEMP_COUNTER = itertools.count()
_TEMP_TAG = secrets.token_hex(6)  # with the pid: unique across hosts sharing a store


def _temp_name() -> str:
    """A temp file name unique across processes and threads, without a syscall each."""
    return (f"{_TEMP_TAG}-{os.getpid()}-{threading.get_ident()}-{next(_TEMP_COUNTER)}"
            f"{TEMP_SUFFIX}")


def _open_locked(temp: str) -> BinaryIO:
    """Create a temp file, locked while its writer lives (cleaners keep off)."""
    # Written through a BufferedWriter ("w+b" would seek at every flush), on a descriptor
    # that the hashing thread may also read (os.preadv); buffering given: no isatty().
    raw = open(os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666), "wb",
               buffering=io.DEFAULT_BUFFER_SIZE)
    try:
        fcntl.flock(raw.fileno(), fcntl.LOCK_EX)
    except BaseException:
        raw.close()
        raise
    return raw


def _write_error(root: Path, exc: OSError) -> StoreError:
    return StoreError(f"cannot write an object into {root}: {exc}; free some disk space or "
                      "make the store writable", path=root)


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _load_syncfs() -> Callable[[Path], None] | None:
    """Linux ``syncfs(2)``: flush one filesystem in one call (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None

    def syncfs(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if call(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(path))
        finally:
            os.close(fd)

    return syncfs


_syncfs = _load_syncfs()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
