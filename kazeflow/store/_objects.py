"""Content-addressed object store: ``objects/ab/cdef…`` named by the SHA-256 of the bytes."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from kazeflow.context import log
from kazeflow.errors import (
    IntegrityError,
    ObjectNotFoundError,
)
from kazeflow.store import _durable, _folder
from kazeflow.store._fs import NOFOLLOW, check_data_version, is_data_version, open_dir

if TYPE_CHECKING:  # writing and reading load pickle and co. only when a run does either
    from kazeflow.store._writes import ObjectWrite, PendingObject
    from kazeflow.store.interface import StoredObject




class ObjectStore:
    """Immutable pickled objects under ``root``, written atomically, verified on read.

    Shard folders (``ab/``) are opened once per process, never through a link (see
    ``_fs``), and every object is reached relative to its shard's descriptor.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = f"{root}{os.sep}"
        self.quarantine_dir = root.parent / "quarantine"
        self._root_fd: int | None = None
        self._shards: dict[str, int] = {}
        self._opening = threading.Lock()

    @property
    def location(self) -> str:
        return str(self.root)

    def identity(self) -> str:
        """The id of this objects folder (``folder_id`` in it), made on first use."""
        return _folder.folder_id(self.root)

    def is_empty(self) -> bool:
        return next(self.iter_objects(), None) is None

    def path(self, data_version: str) -> Path:
        """Where the object ``data_version`` lives (whether or not it exists)."""
        check_data_version(data_version)
        return Path(f"{self._prefix}{data_version[:2]}{os.sep}{data_version[2:]}")

    def _root(self) -> int:
        if self._root_fd is None:
            with self._opening:
                if self._root_fd is None:
                    self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        return self._root_fd

    def _shard(self, shard: str, create: bool = False) -> int | None:
        """The descriptor of the shard folder ``shard`` (None if it does not exist)."""
        fd = self._shards.get(shard)
        if fd is None:
            root = self._root()
            with self._opening:
                fd = self._shards.get(shard)
                if fd is None:
                    fd = open_dir(shard, create=create, dir_fd=root,
                                  shown=self._prefix + shard)
                    if fd is not None:
                        self._shards[shard] = fd
        return fd

    def _forget_removed(self, shard: str, fd: int) -> bool:
        """Whether the shard folder behind ``fd`` was removed (by a gc); then it is
        opened anew next time."""
        if os.fstat(fd).st_nlink:
            return False
        with self._opening:
            if self._shards.get(shard) == fd:
                del self._shards[shard]
                os.close(fd)
        return True

    def _at(self, data_version: str, call: Callable[[str, int], Any],
            create: bool = False) -> Any:
        """``call(name, shard_fd)`` for the object ``data_version``, once more if its
        shard folder was removed meanwhile; FileNotFoundError when it has none."""
        check_data_version(data_version)
        shard, name = data_version[:2], data_version[2:]
        while True:
            fd = self._shard(shard, create)
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "no such shard", shard)
            try:
                return call(name, fd)
            except FileNotFoundError:
                if not self._forget_removed(shard, fd):
                    raise

    def _size(self, data_version: str) -> int | None:
        """The size of the object ``data_version``; None if there is no such file."""
        try:
            info = self._at(data_version, _durable.lstat)
        except FileNotFoundError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def has(self, data_version: str, size: int) -> bool:
        """Whether the object exists with its recorded size: a stat, never a re-hash.

        Raises:
            StoreError: ``data_version`` is not one (a damaged or edited record).
        """
        return self._size(data_version) == size

    batches_presence = False  # a stat each is as cheap as it gets

    def present(self, objects: Iterable[tuple[str, int]]) -> set[str]:
        """The data versions of ``objects`` that exist with their size."""
        return {data_version for data_version, size in objects
                if self.has(data_version, size)}

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
        from kazeflow.store._writes import ObjectWrite

        return ObjectWrite(self, value)

    @property
    def can_sync_later(self) -> bool:
        """Whether :meth:`sync` makes earlier renames durable (Linux ``syncfs``)."""
        return _durable.syncfs is not None

    def sync(self) -> None:
        """Make every object renamed into place so far durable (one ``syncfs``)."""
        if _durable.syncfs is not None:
            try:
                _durable.syncfs(self.root)
            except OSError as exc:
                raise _durable.write_error(self.root, exc) from exc

    def commit(self, pending: Sequence[StoredObject], durable: bool = True) -> None:
        """Make written objects durable and visible under their names.

        One object: fsync, rename, fsync the folder. Several: rename all, then one
        ``syncfs`` (about one journal commit for the whole batch instead of two fsyncs
        per object). Either way the caller commits metadata rows only afterwards. An
        object that already exists with the same size is kept as it is (dedup). With
        ``durable=False`` (only where :attr:`can_sync_later`) objects are renamed only:
        whoever records them calls :meth:`sync` first.
        """
        own = list(_made_here(pending))
        group = len(own) > 1 and _durable.syncfs is not None
        try:
            for i, item in enumerate(own):
                own[i] = self._spill(item)
            if not durable:
                pass
            elif not group:
                for item in own:
                    if item.raw is not None:
                        os.fsync(item.raw.fileno())
            folders = set()
            for item in own:
                if item.temp is None:  # already stored (checked again just above)
                    continue
                if self._size(item.data_version) == item.size:
                    os.unlink(item.temp)
                else:  # into the shard folder (created if needed), never through a link
                    folders.add(self._at(item.data_version,
                                         functools.partial(_durable.move_into, item.temp),
                                         create=True))
            if not durable:
                pass
            elif group:
                _durable.syncfs(self.root)  # type: ignore[misc]
            else:
                for folder in folders:
                    _durable.fsync_dir(folder)
        except OSError as exc:
            self.discard(own)
            raise _durable.write_error(self.root, exc) from exc
        finally:
            for item in own:
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
        temp, raw = self.create_temp()
        try:
            raw.write(item.data)
            raw.flush()
        except BaseException:
            raw.close()
            _durable.remove(temp)
            raise
        from kazeflow.store._writes import PendingObject

        return PendingObject(item.data_version, item.size, temp, raw,
                             item.is_new if is_new is None else is_new)

    def discard(self, pending: Sequence[StoredObject]) -> None:
        """Drop written objects that will not be committed."""
        for item in _made_here(pending):
            if item.raw is not None:
                item.raw.close()
            if item.temp is not None:
                _durable.remove(item.temp)

    def load(self, data_version: str) -> Any:
        """Read, verify and unpickle the object ``data_version``.

        Raises:
            ObjectNotFoundError: the object is not in the store.
            IntegrityError: its bytes do not match its hash (it is quarantined first).
        """
        try:
            raw = self._open(data_version)
        except FileNotFoundError:
            raise ObjectNotFoundError(
                f"object {data_version[:12]}… is missing from {self.root}; run the flow to "
                "materialize it again", path=self.path(data_version)) from None
        from kazeflow.store import _pickling

        if raw is None:
            read = None
        else:
            with raw:
                read = _pickling.read_object(raw)
        if read is None or read.digest != data_version:
            raise corrupt_error(data_version, self.quarantine(data_version))
        return _pickling.load(read)

    def digest(self, data_version: str) -> str | None:
        """The SHA-256 of the object's bytes (a link in its place: ``""``); None if it
        is not there."""
        try:
            raw = self._open(data_version)
        except FileNotFoundError:
            return None
        if raw is None:
            return ""
        from kazeflow.store import _pickling

        with raw:
            return _pickling.file_digest(raw)

    def _open(self, data_version: str) -> BinaryIO | None:
        """The object file, open for reading; None for a link in its place (never
        followed: not an object).

        Raises:
            FileNotFoundError: there is no such object.
        """
        try:
            fd = self._at(data_version, lambda name, shard: os.open(
                name, os.O_RDONLY | NOFOLLOW, dir_fd=shard))
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            return None
        return open(fd, "rb")

    def create_temp(self) -> tuple[str, BinaryIO]:
        """Create a temp file in the store, locked while its writer lives: a cleaner
        that finds it unlocked removes it at once (see :meth:`remove_stale_temps`)."""
        return _durable.create_temp(self._prefix)

    def remove_stale_temps(self) -> int:
        """Delete the temp files of dead writers; return how many."""
        return _durable.remove_stale_temps(self._root())

    def iter_objects(self) -> Iterator[tuple[str, int]]:
        """Every stored object as (data version, size), in order; temp files and links
        are never objects."""
        for shard in sorted(self._shard_names()):
            fd = self._shard(shard)
            if fd is None:  # removed meanwhile
                continue
            with os.scandir(fd) as entries:
                found = sorted((e.name, e.stat(follow_symlinks=False).st_size)
                               for e in entries if e.is_file(follow_symlinks=False)
                               and is_data_version(shard + e.name))
            for name, size in found:
                yield shard + name, size

    def _shard_names(self) -> list[str]:
        """The shard folders there are (links are never shards)."""
        with os.scandir(self._root()) as entries:
            return [e.name for e in entries
                    if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]

    def delete(self, data_version: str) -> None:
        """Remove an object (gc); a missing one is no error."""
        with contextlib.suppress(FileNotFoundError):
            self._at(data_version, lambda name, fd: os.unlink(name, dir_fd=fd))

    def remove_empty_shards(self) -> None:
        """Remove shard folders that hold nothing (gc)."""
        root = self._root()
        for shard in self._shard_names():
            try:
                os.rmdir(shard, dir_fd=root)
            except OSError:  # not empty
                continue
            with self._opening:
                fd = self._shards.pop(shard, None)
            if fd is not None:
                os.close(fd)

    def quarantine(self, data_version: str) -> Path:
        """Move a corrupt object aside so that it counts as missing from now on."""
        target = f"{data_version}.{int(time.time())}"
        folder = open_dir(self.quarantine_dir, create=True)
        assert folder is not None
        try:
            with contextlib.suppress(FileNotFoundError):
                self._at(data_version, lambda name, fd: os.replace(
                    name, target, src_dir_fd=fd, dst_dir_fd=folder))
        finally:
            os.close(folder)
        moved = self.quarantine_dir / target
        log.warning("quarantined corrupt object %s to %s", data_version[:12], moved)
        return moved

    def close(self) -> None:
        """Close the folders' descriptors (they are opened again on next use)."""
        with self._opening:
            fds = [*self._shards.values(), *([] if self._root_fd is None else [self._root_fd])]
            self._shards, self._root_fd = {}, None
        for fd in fds:
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def corrupt_error(data_version: str, moved: str | os.PathLike[str]) -> IntegrityError:
    """The error for an object whose bytes do not hash to its name (now ``moved``)."""
    return IntegrityError(
        f"object {data_version[:12]}… is corrupt (its bytes do not hash to its name); it "
        f"was moved to {moved} and the next run will materialize it again",
        data_version=data_version, path=moved)


def _made_here(pending: Sequence[StoredObject]) -> Sequence[PendingObject]:
    """Objects handed back to the store that wrote them: its own class."""
    return cast("Sequence[PendingObject]", pending)


