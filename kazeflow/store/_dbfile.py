"""The store's own SQLite file: created owner-only, and never silently begun anew."""

from __future__ import annotations

import os
from pathlib import Path

from kazeflow.errors import StoreError
from kazeflow.store.interface import ObjectBackend


def create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only (0600, whatever the umask) unless it exists.

    SQLite then opens it as a new database and gives its ``-wal`` and ``-shm`` files the
    same mode.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def refuse_lost_metadata(path: Path, objects: ObjectBackend) -> None:
    """Raise if ``objects`` holds any object: a schema about to be created in ``path``
    would begin a new, empty history beside them (called only on that slow path).

    Raises:
        StoreError: the database was emptied or deleted; the objects' records are lost.
    """
    if objects.is_empty():
        return
    raise StoreError(
        f"the metadata database {path} is empty or was missing, but {objects.location} holds "
        "objects: the store's records were lost. Restore the database from a backup (with "
        f"its -wal file), or move {objects.location} aside to start a new history", path=path)
