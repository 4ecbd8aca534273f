"""Advisory file locks (``flock``) that coordinate processes and threads on one store.

- the *gc lock*: runs hold it shared from writing an object to committing its row; gc
  holds it exclusive while deleting, so it never removes an object a run just wrote;
- *key leases*: one per cache key, held while an asset executes, so a second process
  that wants the same materialization waits and then reuses it.

``flock`` locks belong to an open file, so two threads that open the same lock file
exclude each other as two processes do; a dead process's locks vanish with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def flocked(path: Path, *, exclusive: bool = True) -> Iterator[bool]:
    """Hold a lock on ``path`` (created if needed); yields whether we had to wait."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        waited = False
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            fcntl.flock(fd, mode)
        yield waited
    finally:
        os.close(fd)  # closing releases the lock


def try_lock_fd(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
