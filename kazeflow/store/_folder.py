"""The identity of a store folder: a random id in a small file, made once, atomically.

Store folders that share one metadata database (PostgreSQL) tell their runs apart by it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kazeflow.store._fs import NOFOLLOW

FILE_NAME = "folder_id"


def folder_id(root: Path) -> str:
    """The id of the store folder ``root`` (32 hex digits), created on first use.

    Two processes creating it at once agree: each writes a complete candidate file and
    hard-links it into place, which fails for all but the first.

    Raises:
        OSError: the folder cannot be read or written (the caller wraps it).
    """
    path = root / FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    new_id = os.urandom(16).hex()
    candidate = root / f".{FILE_NAME}.{new_id}"
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another opener was first: its id wins
            os.link(candidate, path)
    finally:
        os.unlink(candidate)
    folder = os.open(root, os.O_RDONLY)
    try:
        os.fsync(folder)  # the id outlives a power loss: runs are recorded under it
    finally:
        os.close(folder)
    return _read(path)


def _read(path: Path) -> str:
    """The id in ``path``, never read through a link."""
    with open(os.open(path, os.O_RDONLY | NOFOLLOW)) as f:
        return f.read().strip()
