"""The filesystem calls that write an object and make it durable, each in one place so
that tests can trace and fail them: temp names, the rename to its address, fsync of a
folder, ``syncfs(2)`` of a whole filesystem."""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from kazeflow.errors import StoreError
from kazeflow.store._fs import NOFOLLOW
from kazeflow.store._locks import try_lock_fd

TEMP_SUFFIX = ".partial"

_TEMP_COUNTER = itertools.count()
_TEMP_TAG = os.urandom(6).hex()  # with the pid: unique across hosts sharing a store


def temp_name() -> str:
    """A temp file name unique across processes and threads, without a syscall each."""
    return (f"{_TEMP_TAG}-{os.getpid()}-{threading.get_ident()}-{next(_TEMP_COUNTER)}"
            f"{TEMP_SUFFIX}")


def write_error(root: Path, exc: OSError) -> StoreError:
    return StoreError(f"cannot write an object into {root}: {exc}; free some disk space or "
                      "make the store writable", path=root)


def move_into(temp: str, name: str, shard: int) -> int:
    """Rename ``temp`` to ``name`` in the folder ``shard``; gives ``shard``."""
    os.replace(temp, name, dst_dir_fd=shard)
    return shard


def fsync_dir(shard: int) -> None:
    """Make the renames into the folder ``shard`` durable."""
    os.fsync(shard)


def lstat(name: str, shard: int) -> os.stat_result:
    return os.stat(name, dir_fd=shard, follow_symlinks=False)


def _load_syncfs() -> Callable[[Path], None] | None:
    """Linux ``syncfs(2)``: flush one filesystem in one call (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # here: only a run that writes pays for it

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


syncfs: Callable[[Path], None] | None  # set by __getattr__ on first use


def __getattr__(name: str) -> object:
    """``syncfs``, loaded on first use (None where the platform lacks it)."""
    if name == "syncfs":
        globals()["syncfs"] = found = _load_syncfs()
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def create_temp(prefix: str) -> tuple[str, BinaryIO]:
    """Create a temp file at ``prefix`` + a unique name, locked while its writer lives
    (a cleaner that finds it unlocked removes it at once: see
    :func:`remove_stale_temps`)."""
    while True:
        temp = f"{prefix}{temp_name()}"
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:  # else a cleaner removed it before our lock
                # Written through a BufferedWriter ("w+b" would seek at every flush),
                # on a descriptor that the hashing thread may also read (os.preadv);
                # buffering given: no isatty().
                return temp, open(fd, "wb", buffering=io.DEFAULT_BUFFER_SIZE)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def remove_stale_temps(folder: int) -> int:
    """Delete the temp files of dead writers in the folder ``folder``; return how many.

    A writer holds its temp file's lock from creating it to committing it (a crash
    lets go), and checks that the file is still there once it holds the lock, so a
    temp file nobody holds is a dead writer's, whatever its age.
    """
    removed = 0
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.name.endswith(TEMP_SUFFIX)
                 and e.is_file(follow_symlinks=False)]
    for name in names:
        try:
            fd = os.open(name, os.O_RDONLY | NOFOLLOW, dir_fd=folder)
        except OSError:  # gone meanwhile, or a link put there since
            continue
        try:
            if try_lock_fd(fd):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=folder)
                    removed += 1
        finally:
            os.close(fd)
    return removed
