"""The store: content-addressed objects on disk plus a metadata database.

Layout of a store folder (default ``./.kazeflow``)::

    kazeflow.db        SQLite metadata (unless a metadata URL is given)
    folder_id          this folder's identity among those sharing one database
    objects/ab/cdef…   pickled results named by their SHA-256 (unless an objects URL is
                       given)
    quarantine/        objects whose bytes no longer match their name
    cache/             analyses of source files, hashes of input files (safe to delete)
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kazeflow.errors import KazeflowError, StoreError
from kazeflow.store import _dbfile, _folder, _locations
from kazeflow.store._dbcoord import Coordinator, DbLock, DbPins
from kazeflow.store._leases import key_lease
from kazeflow.store._locks import FileLock
from kazeflow.store._pins import RunPins, live_pins

if TYPE_CHECKING:  # the metadata loads only when a store is opened: fast import
    from kazeflow.results import Materialization, Run
    from kazeflow.store._maintenance import GcReport, VerifyReport
    from kazeflow.store._metadata import MetadataStore
    from kazeflow.store.interface import Lock, ObjectBackend, Objects, Pins

#: Environment variables read by kazeflow (here, and only here).
ENV_HOME = "KAZEFLOW_HOME"
ENV_METADATA_URL = "KAZEFLOW_METADATA_URL"
ENV_OBJECTS_URL = "KAZEFLOW_OBJECTS_URL"
DEFAULT_DIR = ".kazeflow"


class Store:
    """A kazeflow store: a metadata database and a content-addressed object store.

    Args:
        root: the store's local folder (its SQLite file and objects by default, caches,
            locks); default ``$KAZEFLOW_HOME`` or ``./.kazeflow``.
        metadata: any SQLAlchemy URL for the metadata (e.g. PostgreSQL for a shared
            store); default ``$KAZEFLOW_METADATA_URL`` or ``sqlite:///<root>/kazeflow.db``.
            The default and any plain ``sqlite:///<path>`` are the embedded database,
            which the stdlib ``sqlite3`` opens without loading SQLAlchemy; every other
            URL goes through SQLAlchemy, SQLite too when the URL names its driver
            (``sqlite+pysqlite:///<path>``). Either way Alembic creates and upgrades
            the schema, the first time a store is opened after a kazeflow upgrade.
        objects: where objects live: a local folder, or an fsspec URL such as
            ``s3://bucket/prefix``; default ``$KAZEFLOW_OBJECTS_URL`` or ``<root>/objects``.
        mode: permissions of folders the store creates (owner-only by default).
        create: ``False`` refuses to create a store that does not exist yet (for tools
            that only read one: a mistyped path is an error, not a new empty store).

    Raises:
        StoreError: the folder cannot be created or is a file; with ``create=False``,
            there is no store at ``root``.

    Example::

        Flow(["report"], store=Store("/data/kazeflow")).run()
        Store(metadata="postgresql+psycopg://db/kazeflow", objects="s3://bucket/kazeflow")
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *,
                 metadata: str | None = None, objects: str | os.PathLike[str] | None = None,
                 mode: int = 0o700, create: bool = True) -> None:
        root = root if root is not None else os.environ.get(ENV_HOME) or DEFAULT_DIR
        self.root = Path(root).expanduser().absolute()
        own_db = self.root / "kazeflow.db"
        self.metadata_url = (metadata or os.environ.get(ENV_METADATA_URL)
                             or f"sqlite:///{own_db}")
        #: the store's own SQLite file, when the metadata lives there
        self._own_db = own_db if self.metadata_url == f"sqlite:///{own_db}" else None
        #: a local folder (absolute) or an fsspec URL
        self.objects_url = _locations.normalized(
            objects if objects is not None else os.environ.get(ENV_OBJECTS_URL)
            or self.root / "objects")
        self.mode = mode
        self.create = create
        self._metadata: MetadataStore | None = None
        self._objects: ObjectBackend | None = None
        self._coordinator: Coordinator | None = None
        self._shared_database: bool | None = None  # PostgreSQL: known once opened
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @classmethod
    def coerce(cls, store: Store | str | os.PathLike[str] | None) -> Store:
        """``store`` itself, or a Store at that path (None: the default location)."""
        return store if isinstance(store, Store) else cls(store)

    def exists(self) -> bool:
        """Whether a store has been created here (nothing is created): its objects
        folder, or with remote objects its SQLite file; a metadata URL counts as one."""
        if not _locations.is_url(self.objects_url):
            return os.path.isdir(self.objects_url)
        return self._own_db is None or self._own_db.exists()

    def check_exists(self) -> None:
        """Raise :class:`StoreError` saying where it looked if no store exists here (what
        a store opened with ``create=False`` says; read-only tools say it too)."""
        if not self.exists():
            raise StoreError(f"there is no kazeflow store at {self.root}; check the path "
                             f"(--store, ${ENV_HOME}) or run a flow to create one",
                             path=self.root)

    def _open(self) -> None:
        with self._lock:
            if self._metadata is not None:
                return
            if self.root.exists() and not self.root.is_dir():
                raise StoreError(f"the store path {self.root} is a file, not a folder; "
                                 "choose another store location", path=self.root)
            if not self.create:
                self.check_exists()
            local = not _locations.is_url(self.objects_url)
            try:
                self.root.mkdir(mode=self.mode, parents=True, exist_ok=True)
                if local:
                    os.makedirs(self.objects_url, mode=self.mode, exist_ok=True)
            except OSError as exc:
                where = self.root if not local or self.objects_url.startswith(
                    f"{self.root}{os.sep}") else self.objects_url
                raise StoreError(f"cannot create the store folder {where}: "
                                 f"{exc.strerror}; choose a writable location", path=where
                                 ) from exc
            if local and not os.access(self.objects_url, os.W_OK):
                raise StoreError(f"the store folder {self.objects_url} is not writable (a "
                                 "read-only filesystem or missing permissions); choose a "
                                 "writable location or fix its permissions",
                                 path=self.objects_url)
            objects = _locations.open_objects(self.objects_url)
            self._metadata = self._open_metadata(objects)
            self._objects = objects

    def _open_metadata(self, objects: ObjectBackend) -> MetadataStore:
        """The metadata database; the store's own SQLite file is made owner-only first,
        and is never given a new schema beside existing objects."""
        from kazeflow.store._metadata import MetadataStore

        before_create = None
        try:
            own_objects = self.objects_url == str(self.root / "objects")
            if self._own_db is not None:
                _dbfile.create_private(self._own_db)
                if own_objects:  # objects elsewhere may be shared: a new history is fine
                    before_create = functools.partial(_dbfile.refuse_lost_metadata,
                                                      self._own_db, objects)
            # the default layout keeps its id in the store folder, as it always did;
            # objects elsewhere carry their own, shared by every store that uses them
            folder_id = _folder.folder_id(self.root) if own_objects else objects.identity()
        except OSError as exc:
            raise StoreError(f"cannot write to the store folder {self.root}: "
                             f"{exc.strerror}; fix its permissions or choose another "
                             "location", path=self.root) from exc
        return MetadataStore(self.metadata_url, folder_id=folder_id,
                             before_create=before_create)

    @property
    def metadata(self) -> MetadataStore:
        """The metadata database (opened, and migrated, on first use)."""
        if self._metadata is None:
            self._open()
        return self._metadata  # type: ignore[return-value]

    @property
    def objects(self) -> ObjectBackend:
        """The object store (opened on first use)."""
        if self._objects is None:
            self._open()
        return self._objects  # type: ignore[return-value]

    @property
    def folder_id(self) -> str:
        """This folder's identity, recorded with its runs (folders sharing one database
        tell their records apart by it)."""
        return self.metadata.folder_id

    @property
    def sources_cache_path(self) -> Path:
        """Where analyses of user source files are cached across processes."""
        return self.cache_folder / "sources.marshal"

    @property
    def cache_folder(self) -> Path:
        """Where analyses of source files, hashes of input files and the distributions
        of libraries are cached across processes (safe to delete)."""
        return self.root / "cache"

    @property
    def gc_lock_path(self) -> Path:
        """Runs hold this lock shared while writing; gc holds it exclusive."""
        self.objects  # noqa: B018 - creates the folder
        return self.root / "gc.lock"

    @property
    def coordinator(self) -> Coordinator | None:
        """Runs sharing a PostgreSQL database coordinate through it (leases, the gc
        lock, pins, liveness); None: through files in :attr:`root` (one machine)."""
        if self._coordinator is None and self._shared_database is not False:
            self._shared_database = self.metadata.dialect == "postgresql"
            if self._shared_database:
                with self._lock:
                    if self._coordinator is None:
                        self._coordinator = Coordinator(self.metadata.engine,
                                                        self.metadata.store_error)
        return self._coordinator

    def writing(self) -> Lock:
        """A shared lock that holds off gc from objects' write until their rows commit."""
        if (coordinator := self.coordinator) is not None:
            return DbLock(coordinator, coordinator.key("gc", ""), shared=True)
        return FileLock(self.gc_lock_path, exclusive=False)

    def gc_lock(self) -> Lock:
        """The lock gc holds (exclusive) while it deletes; not yet acquired."""
        if (coordinator := self.coordinator) is not None:
            return DbLock(coordinator, coordinator.key("gc", ""))
        return FileLock(self.gc_lock_path)

    def pins(self, run_id: str) -> Pins:
        """The pins of run ``run_id`` (data versions gc must keep while it lives)."""
        if (coordinator := self.coordinator) is not None:
            return DbPins(coordinator, run_id)
        return RunPins(self.root / "pins", run_id)

    def live_pins(self, remove_dead: bool = True) -> set[str]:
        """Data versions that live runs pin; the pins of dead runs go (unless not
        ``remove_dead``)."""
        if (coordinator := self.coordinator) is not None:
            return coordinator.live_pins(remove_dead)
        return live_pins(self.root / "pins", remove_dead=remove_dead)

    def lease(self, cache_key: str) -> Lock:
        """An exclusive lease on one cache key (not yet acquired)."""
        self.objects  # noqa: B018 - opens (creates) the store folder
        if (coordinator := self.coordinator) is not None:
            return DbLock(coordinator, coordinator.key("lease", cache_key))
        return key_lease(self.root, cache_key)

    def history(self, asset_name: str | None = None, limit: int | None = None
                ) -> list[Materialization]:
        """Materialization records (successful and failed), newest first.

        Args:
            asset_name: one asset; ``None`` for every asset in the store.
            limit: at most this many records.
        """
        return self.metadata.history(None if asset_name is None else [asset_name], limit)

    def runs(self, limit: int | None = None) -> list[Run]:
        """Run records, newest first (a dead process's ``running`` run is ``abandoned``;
        with PostgreSQL, told on any machine by the run's lock)."""
        runs = self.metadata.runs(limit)
        running = [run.run_id for run in runs if run.status == "running"]
        if running and (coordinator := self.coordinator) is not None:
            live = coordinator.live_runs(running)
            runs = [dataclasses.replace(run, status="abandoned")
                    if run.status == "running" and run.run_id not in live else run
                    for run in runs]
        return runs

    def materialization(self, asset_name: str, version: str | int | None = None
                        ) -> Materialization:
        """One successful record of ``asset_name``: the newest, a data version (or a
        unique prefix of one), or a record id.

        Raises:
            ObjectNotFoundError: none matches, or a prefix matches several.
            KazeflowError: ``version`` is none of these.
        """
        if not (version is None or (isinstance(version, int) and not isinstance(version, bool))
                or (isinstance(version, str) and version)):
            raise KazeflowError(
                f"version={version!r}: give None (the newest), a data version or a unique "
                "prefix of one (a non-empty string), or a record id (an int); see "
                f"history({asset_name!r})")
        return self.metadata.find_version(asset_name, version)

    def load(self, asset_name: str, version: str | int | None = None) -> Any:
        """The value of :meth:`materialization`, verified against its hash first.

        Raises:
            ObjectNotFoundError: no such materialization, or its object is gone.
            IntegrityError: the object's bytes are corrupt (it is quarantined).
        """
        record = self.materialization(asset_name, version)
        assert record.data_version is not None
        return self.objects.load(record.data_version)

    def verify(self) -> VerifyReport:
        """Re-hash every object; report missing, corrupt and orphaned objects.

        Corrupt objects are quarantined, so the next run re-materializes their assets.
        """
        from kazeflow.store import _maintenance

        return _maintenance.verify(self)

    def gc(self, *, keep_last: int | None = None, older_than: float | None = None,
           dry_run: bool = False) -> GcReport:
        """Delete old materialization records and the objects nothing else refers to.

        Args:
            keep_last: keep the newest N records of each asset.
            older_than: delete records that ended more than this many seconds ago.
            dry_run: report what would go without deleting anything.

        The newest successful record of every asset is always kept. Records go first,
        then files, under a lock that runs take while writing: a crash leaves unreferenced
        files (removed by the next gc), and an object a run just wrote is never removed.
        """
        if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
            raise KazeflowError(f"gc(keep_last={keep_last!r}): give a whole number >= 1")
        if older_than is not None and (not isinstance(older_than, (int, float))
                                       or older_than < 0):
            raise KazeflowError(f"gc(older_than={older_than!r}): give seconds >= 0")
        from kazeflow.store import _maintenance

        return _maintenance.gc(self, keep_last=keep_last, older_than=older_than,
                               dry_run=dry_run)

    def close(self) -> None:
        """Release database connections; the store reopens on next use."""
        with self._lock:
            if self._metadata is not None:
                self._metadata.close()
            if self._objects is not None:
                self._objects.close()
            if self._coordinator is not None:
                self._coordinator.close()
            self._metadata = self._objects = self._coordinator = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_objects_by_location: dict[str, ObjectBackend] = {}


def objects_at(location: str) -> Objects:
    """The object store at ``location`` (a store's ``objects.location``), opened once
    per process: a worker process is given only that."""
    objects = _objects_by_location.get(location)
    if objects is None:
        objects = _objects_by_location[location] = _locations.open_objects(location)
    return objects
