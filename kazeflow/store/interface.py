"""The store as the engine sees it: the typing Protocols that the scheduler, the write
batch, the asset calls and the freshness evaluator are written against.

The engine never imports the store's private modules: :class:`~kazeflow.store.Store`
hands out objects of these shapes, and the concrete classes (``_objects``, ``_locks``,
``_pins``, ``_metadata``) are the store's own business, as is the object file format.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kazeflow.results import Materialization, RecordKey


class Lock(Protocol):
    """An inter-process lock (a key lease, the shared gc lock, a run's pin file)."""

    @property
    def held(self) -> bool: ...

    #: After :meth:`acquire`: False if some run had taken this lock's key before (the
    #: taker then checks the records for what that run made).
    created: bool

    def acquire(self, blocking: bool = True) -> bool: ...

    def release(self) -> None: ...


class StoredObject(Protocol):
    """An object written to a temp file, not yet visible under its name."""

    @property
    def data_version(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def is_new(self) -> bool: ...  # no object had these bytes when they were written


class ObjectWriting(Protocol):
    """An object being written: its hash and fsync may still run in helper threads."""

    @property
    def in_background(self) -> bool: ...

    @property
    def finished_at(self) -> float: ...

    def finish(self) -> StoredObject: ...  # thread-safe, memoised; raises StoreError

    def abandon(self) -> None: ...


class ObjectPresence(Protocol):
    """What a freshness decision asks of the object store."""

    def has(self, data_version: str, size: int) -> bool: ...

    #: Whether :meth:`present` is much cheaper than :meth:`has` for each (remote storage:
    #: concurrent requests); a local stat is cheap enough one at a time.
    batches_presence: bool

    def present(self, objects: Iterable[tuple[str, int]]) -> set[str]: ...  # which exist


class Objects(ObjectPresence, Protocol):
    """The content-addressed object store."""

    #: Where the objects are: a local folder's absolute path or a URL; a worker given
    #: this opens the same objects (``kazeflow.store.objects_at``).
    @property
    def location(self) -> str: ...

    @property
    def can_sync_later(self) -> bool: ...

    def start_write(self, value: Any) -> ObjectWriting: ...

    def write(self, value: Any) -> StoredObject: ...

    def commit(self, pending: Sequence[StoredObject], durable: bool = True) -> None: ...

    def discard(self, pending: Sequence[StoredObject]) -> None: ...

    def sync(self) -> None: ...

    def load(self, data_version: str) -> Any: ...

    def remove_stale_temps(self) -> int: ...


class ObjectBackend(Objects, Protocol):
    """An object store as the store and its maintenance (verify, gc) use it: a local
    folder (``_objects.ObjectStore``) or remote storage through fsspec."""

    def put(self, value: Any) -> tuple[str, int]: ...  # write and commit: (version, size)

    def identity(self) -> str: ...  # this object store's id, made once (folder_id)

    def is_empty(self) -> bool: ...

    def iter_objects(self) -> Iterator[tuple[str, int]]: ...  # (data version, size)

    def digest(self, data_version: str) -> str | None: ...  # None: gone

    def delete(self, data_version: str) -> None: ...

    def quarantine(self, data_version: str) -> str | os.PathLike[str]: ...  # where to

    def remove_empty_shards(self) -> None: ...

    def close(self) -> None: ...


class Records(Protocol):
    """What a freshness decision reads from the metadata database."""

    def latest(self, asset_names: Collection[str]) -> dict[str, Materialization]: ...

    def latest_keys(self, asset_names: Collection[str]) -> dict[str, RecordKey]: ...

    def by_id(self, record_id: int) -> Materialization | None: ...

    def by_cache_key(self, cache_key: str) -> list[Materialization]: ...

    def code_components(self, code_hash: str) -> dict[str, str] | None: ...

    def latest_failures(self, asset_names: Collection[str]) -> dict[str, Materialization]: ...


class RunRecords(Records, Protocol):
    """The metadata database as a run writes it."""

    def start_run(self, run_id: str, *, selection: Sequence[str], pid: int,
                  hostname: str | None = None) -> float:
        """Record the run as ``running`` (``hostname``: this host unless given);
        gives when it started."""

    def finish_run(self, run_id: str, *, status: str, n_materialized: int, n_reused: int,
                   n_failed: int, error: str | None = None) -> None: ...

    def record(self, rows: Sequence[Mapping[str, Any]],
               new_objects: Iterable[tuple[str, int]] = (),
               code: Mapping[str, Mapping[str, str]] | None = None) -> None: ...


class Pins(Protocol):
    """A run's pins: data versions gc must keep while the run (or its result) lives."""

    @property
    def pinned(self) -> Collection[str]: ...

    def open(self) -> None: ...

    def add(self, data_versions: Iterable[str]) -> None: ...

    def seal(self) -> None: ...

    def close(self) -> None: ...


class RunStore(Protocol):
    """A store as one run uses it (:class:`~kazeflow.store.Store` is one)."""

    @property
    def objects(self) -> Objects: ...

    @property
    def metadata(self) -> RunRecords: ...

    def writing(self) -> Lock: ...

    def lease(self, cache_key: str) -> Lock: ...

    def pins(self, run_id: str) -> Pins: ...
