"""File operations that stay inside the store: no symbolic link inside a store folder is
ever followed, and no path is built from a data version that is not one.

The store folder itself and its ``objects/`` folder may be links the user set up (a store
on another disk); below them kazeflow opens folders with ``O_NOFOLLOW`` and works
relative to their descriptors, so a link planted in the store (``objects/ab``,
``pins/``, ``quarantine/``, ``leases.lock``) gives a :class:`StoreError` rather than
writes or deletions elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path

from kazeflow.errors import StoreError

#: Flags of every file kazeflow opens in a store: never through a link.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW
_DATA_VERSION = re.compile(r"[0-9a-f]{64}")


def check_data_version(data_version: object) -> str:
    """``data_version`` itself if it is one (64 lowercase hex digits).

    Raises:
        StoreError: anything else (a damaged or edited metadata row), before any path is
            built from it.
    """
    if is_data_version(data_version):
        return data_version  # type: ignore[return-value]
    raise StoreError(
        f"{data_version!r} is not a data version (64 lowercase hex digits): the metadata "
        "database is damaged or was edited; restore it from a backup, or delete the "
        "records that name it", path=None)


def is_data_version(text: object) -> bool:
    """Whether ``text`` is a data version: 64 lowercase hex digits."""
    return isinstance(text, str) and _DATA_VERSION.fullmatch(text) is not None


def open_dir(path: str | Path, *, create: bool, dir_fd: int | None = None,
             shown: str | Path | None = None) -> int | None:
    """A descriptor of the folder ``path`` (relative to ``dir_fd`` if given; ``shown`` is
    its full path, for errors), created owner-only when ``create`` and missing; None when
    missing and not ``create``.

    Raises:
        StoreError: ``path`` is a symbolic link or not a folder.
    """
    try:
        return _open_dir(path, dir_fd, shown)
    except FileNotFoundError:
        if not create:
            return None
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700, dir_fd=dir_fd)
    return _open_dir(path, dir_fd, shown)


def _open_dir(path: str | Path, dir_fd: int | None, shown: str | Path | None) -> int:
    try:
        return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise link_error(shown or path, "a folder") from None
        raise


def link_error(path: str | Path, what: str) -> StoreError:
    """The error for a store entry that should be ``what`` but is a link (or else)."""
    return StoreError(
        f"{path} in the store should be {what} but is a symbolic link or another kind of "
        "file; kazeflow never follows links inside its store: remove it (run again and "
        "kazeflow re-creates what it needs)", path=path)
