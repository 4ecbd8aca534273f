"""Key leases: an exclusive lock per cache key, held from executing an asset to
committing its row, so that a second run wanting the same materialization waits and
then reuses it.

On Linux a lease is a one-byte lock (an open file description lock, ``F_OFD_SETLK``,
which like ``flock`` belongs to an open file, so threads exclude each other as processes
do) in one shared file, ``leases.lock``: taking a key creates no file, and the folder
does not grow with every key ever materialized. The byte under a slot records that some
run took a key of that slot before: :attr:`KeyLease.created` is False then, and the
taker re-checks the database for what that run made. Elsewhere each key has its own
``flock``-ed file under ``leases/`` and a file that already existed means the same.
"""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

from kazeflow.context import log
from kazeflow.store._locks import FdLock, FileLock

_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", None)
_FLOCK = struct.Struct("hhqqi4x")  # struct flock: type, whence, start, len, pid + padding
_LOCK_SPACE = 1 << 62  # lock offsets: 62 bits of the key, so keys practically never share
_SLOTS = 1 << 22  # "taken before" bytes: at most 4 MiB, sparse; sharing costs a re-check
_TAKEN = b"\x01"


class KeyLease(FdLock):
    """An exclusive lease on one cache key in ``path`` (not yet acquired); ``created``
    tells whether no run had taken a key of its slot before."""

    def __init__(self, path: str | Path, cache_key: str) -> None:
        super().__init__(path)
        number = int(cache_key[:16], 16)
        self._lock_at = number % _LOCK_SPACE  # a lock needs no bytes there
        self._slot = number % _SLOTS

    def _lock(self, fd: int, blocking: bool) -> bool:
        try:
            fcntl.fcntl(fd, _OFD_SETLKW if blocking else _OFD_SETLK,  # type: ignore[arg-type]
                        _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, self._lock_at, 1, 0))
        except (BlockingIOError, PermissionError):  # EAGAIN / EACCES: someone holds it
            return False
        self.created = False  # unknown counts as taken: the caller re-checks
        try:
            self.created = os.pread(fd, 1, self._slot) != _TAKEN
            if self.created:
                os.pwrite(fd, _TAKEN, self._slot)
        except OSError as exc:  # disk full, a file size limit: the lock holds regardless
            log.debug("cannot mark lease slot %d in %s: %s", self._slot, self.path, exc)
        return True


def key_lease(root: Path, cache_key: str) -> FdLock:
    """The lease on ``cache_key`` in the store folder ``root`` (not yet acquired)."""
    if _OFD_SETLK is not None:  # a plain string path: one lease is taken per asset run
        return KeyLease(os.path.join(root, "leases.lock"), cache_key)
    (root / "leases").mkdir(mode=0o700, exist_ok=True)
    return FileLock(root / "leases" / f"{cache_key}.lock")
