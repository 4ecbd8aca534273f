"""Advisory file locks (``flock``) that coordinate processes and threads on one store.

- the *gc lock*: runs hold it shared from writing objects to committing their rows; gc
  holds it exclusive while deleting, so it never removes an object a run just wrote;
- *key leases* (see ``_leases``): one per cache key, held from executing an asset to
  committing its row, so a second run that wants the same materialization waits and
  then reuses it.

``flock`` locks belong to an open file, so two threads that open the same lock file
exclude each other as two processes do; a dead process's locks vanish with it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from kazeflow.store._fs import NOFOLLOW, link_error


class FdLock:
    """A lock held through one open file descriptor: closing it lets go (also when the
    process dies). Subclasses open the file and take the lock on it."""

    def __init__(self, path: str | Path, dir_fd: int | None = None) -> None:
        self.path = path
        self.dir_fd = dir_fd  # ``path`` is relative to this folder, if given
        self._fd: int | None = None
        #: Whether nobody had taken this lock before the last acquire.
        self.created = False

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, return False instead of waiting.

        Raises:
            StoreError: the lock file is a symbolic link (never followed).
        """
        try:
            fd = self._open()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise link_error(self.path, "a lock file") from None
            raise
        try:
            if not self._lock(fd, blocking):
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o600, dir_fd=self.dir_fd)

    def _lock(self, fd: int, blocking: bool) -> bool:
        raise NotImplementedError

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def still_named(self) -> bool:
        """Whether the held lock's file is still the one its path names (nobody
        removed it, as a dead run's, between its opening and the locking)."""
        if self._fd is None:
            return False
        locked = os.fstat(self._fd)
        try:
            named = os.stat(self.path, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return locked.st_nlink > 0 and (named.st_dev, named.st_ino) == (
            locked.st_dev, locked.st_ino)

    def release(self) -> None:
        """Let go of the lock (closing the file releases it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class FileLock(FdLock):
    """One ``flock`` on ``path`` (created if needed), shared or exclusive; ``created``
    tells whether the last acquire created the file."""

    def __init__(self, path: str | Path, *, exclusive: bool = True,
                 dir_fd: int | None = None) -> None:
        super().__init__(path, dir_fd)
        self._mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600,
                         dir_fd=self.dir_fd)  # O_EXCL: never through a link
            self.created = True
        except FileExistsError:
            fd = super()._open()
            self.created = False
        return fd

    def _lock(self, fd: int, blocking: bool) -> bool:
        try:
            fcntl.flock(fd, self._mode if blocking else self._mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def try_lock_fd(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
