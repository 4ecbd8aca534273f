"""The store: content-addressed objects on disk plus a metadata database.

Layout of a store folder (default ``./.kazeflow``)::

    kazeflow.db        SQLite metadata (unless a database URL is given)
    objects/ab/cdef…   pickled results named by their SHA-256
    quarantine/        objects whose bytes no longer match their name
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from kazeflow.errors import StoreError
from kazeflow.store._metadata import MetadataStore
from kazeflow.store._objects import ObjectStore

#: Environment variables read by kazeflow (here, and only here).
ENV_HOME = "KAZEFLOW_HOME"
ENV_DATABASE_URL = "KAZEFLOW_DATABASE_URL"
DEFAULT_DIR = ".kazeflow"


class Store:
    """A kazeflow store: objects under ``root`` and metadata in SQLite or ``database_url``.

    Args:
        root: the store folder; default ``$KAZEFLOW_HOME`` or ``./.kazeflow``.
        database_url: any SQLAlchemy URL for the metadata (e.g. PostgreSQL for a shared
            store); default ``$KAZEFLOW_DATABASE_URL`` or ``sqlite:///<root>/kazeflow.db``.
        mode: permissions of folders the store creates (owner-only by default).

    Raises:
        StoreError: the folder cannot be created or is a file.

    Example::

        Flow(["report"], store=Store("/data/kazeflow")).run()
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *,
                 database_url: str | None = None, mode: int = 0o700) -> None:
        root = root if root is not None else os.environ.get(ENV_HOME) or DEFAULT_DIR
        self.root = Path(root).expanduser().absolute()
        self.database_url = (database_url or os.environ.get(ENV_DATABASE_URL)
                             or f"sqlite:///{self.root / 'kazeflow.db'}")
        self.mode = mode
        self._metadata: MetadataStore | None = None
        self._objects: ObjectStore | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @classmethod
    def coerce(cls, store: Store | str | os.PathLike[str] | None) -> Store:
        """``store`` itself, or a Store at that path (None: the default location)."""
        return store if isinstance(store, Store) else cls(store)

    def _open(self) -> None:
        with self._lock:
            if self._metadata is not None:
                return
            objects_dir = self.root / "objects"
            if self.root.exists() and not self.root.is_dir():
                raise StoreError(f"the store path {self.root} is a file, not a folder; "
                                 "choose another store location", path=self.root)
            try:
                self.root.mkdir(mode=self.mode, parents=True, exist_ok=True)
                objects_dir.mkdir(mode=self.mode, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store folder {self.root}: "
                                 f"{exc.strerror}; choose a writable location", path=self.root
                                 ) from exc
            self._objects = ObjectStore(objects_dir)
            self._metadata = MetadataStore(self.database_url)

    @property
    def metadata(self) -> MetadataStore:
        """The metadata database (opened, and migrated, on first use)."""
        if self._metadata is None:
            self._open()
        return self._metadata  # type: ignore[return-value]

    @property
    def objects(self) -> ObjectStore:
        """The object store (opened on first use)."""
        if self._objects is None:
            self._open()
        return self._objects  # type: ignore[return-value]

    def close(self) -> None:
        """Release database connections; the store reopens on next use."""
        with self._lock:
            if self._metadata is not None:
                self._metadata.close()
            self._metadata = self._objects = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
