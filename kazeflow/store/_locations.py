"""Where a store's objects live: a local folder (the default, ``<root>/objects``) or an
fsspec URL (``s3://bucket/prefix``, ...), opened by the backend for it."""

from __future__ import annotations

import os
from pathlib import Path

from kazeflow.errors import StoreError
from kazeflow.store.interface import ObjectBackend


def is_url(location: str) -> bool:
    """Whether ``location`` names remote storage (a ``scheme://`` other than ``file``)."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme != "file" and scheme.replace("+", "").isalnum()


def normalized(location: str | os.PathLike[str]) -> str:
    """``location`` as a store keeps it: a URL as given (without a trailing ``/``), a
    local folder (or ``file://`` URL) as an absolute path."""
    text = os.fspath(location)
    if is_url(text):
        return text.rstrip("/")
    if text.startswith("file://"):
        text = text[len("file://"):]
    return str(Path(text).expanduser().absolute())


def open_objects(location: str) -> ObjectBackend:
    """The object store at ``location`` (see :func:`normalized`); a local folder must
    exist.

    Raises:
        StoreError: a URL whose filesystem is not installed (the fix names the extra).
    """
    if not is_url(location):
        from kazeflow.store._objects import ObjectStore

        return ObjectStore(Path(location))
    try:
        from kazeflow.store._remote import RemoteObjects  # fsspec loads only for a URL
    except ImportError as exc:
        raise missing_backend(location, exc) from exc
    return RemoteObjects(location)


def missing_backend(location: str, exc: ImportError) -> StoreError:
    """The error for a URL whose fsspec filesystem (or fsspec) is not installed."""
    scheme = location.partition("://")[0]
    extra = "s3" if scheme in ("s3", "s3a") else None
    fix = (f'pip install "kazeflow[{extra}]"' if extra else
           f"install fsspec and the filesystem package for {scheme}://")
    return StoreError(f"cannot open the objects location {location}: {exc}; {fix}",
                      path=location)
