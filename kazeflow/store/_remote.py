"""Objects on remote storage through fsspec (``s3://bucket/prefix``, or any fsspec URL).

The layout under the prefix is the local one: ``objects/ab/cdef…``, ``quarantine/``,
``folder_id``, and ``tmp/`` for uploads in flight where the service lacks conditional
writes. The filesystem's options come from the environment as fsspec and the filesystem
read them (for S3: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``FSSPEC_S3_*``, ...).

Writing: a value is pickled and hashed into a local spool file (the local store's own
temp files, in a per-user folder), so its name is known before a byte is uploaded; then
it is uploaded to its content address with a conditional create (S3 ``If-None-Match:
*``), in parts of ``_PART`` bytes read from the file, so a large value is never copied
in memory. A service without conditional writes gets a temp key, then a server-side
copy to the name and the temp key's removal. Either way no partial object ever sits at
a content address, and an object already there is kept (dedup).

Reading: an object is downloaded into a spool file, then read and hashed once; it is
unpickled only when its bytes match its name, else moved to ``quarantine/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import fsspec

from kazeflow.errors import ObjectNotFoundError, StoreError
from kazeflow.store import _pickling
from kazeflow.store._fs import check_data_version, is_data_version
from kazeflow.store._objects import ObjectStore, corrupt_error
from kazeflow.store._writes import ObjectWrite, PendingObject
from kazeflow.store.interface import StoredObject

_PART = 8 << 20  # bytes per uploaded part (S3's least is 5 MiB) and per read block
_TEMP_MAX_AGE = 3600.0  # seconds; a temp key older than this is a dead uploader's
_UPLOADS = 2  # parts in flight at once: memory is _UPLOADS x _PART
_CONCURRENT_HEADS = 32  # presence checks in flight at once (see present)
_LIST_AT = 2  # objects asked about in one shard folder from which one listing beats HEADs
# (a page lists a thousand: while shards hold no more, i.e. up to ~256,000 objects)


def _listed_sizes(shard: str, entries: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Data version → size of the objects in the listing of shard folder ``shard``."""
    sizes = {}
    for entry in entries:
        data_version = shard + entry["name"].rstrip("/").rpartition("/")[2]
        if entry.get("type") == "file" and is_data_version(data_version):
            sizes[data_version] = int(entry["size"])
    return sizes


def _spool_folder() -> Path:
    """The local folder of this user's spool files (made owner-only)."""
    folder = Path(tempfile.gettempdir()) / f"kazeflow-spool-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class RemoteObjects:
    """Immutable pickled objects under an fsspec URL, written atomically, verified on
    read (see the module docstring)."""

    can_sync_later = False

    def __init__(self, url: str, *, conditional_writes: bool = True) -> None:
        self.url = url
        try:
            # listings are never cached: other processes write and gc the same objects
            self.fs, root = fsspec.core.url_to_fs(url, use_listings_cache=False)
        except ImportError as exc:
            from kazeflow.store._locations import missing_backend

            raise missing_backend(url, exc) from exc
        self._root = root.rstrip("/")
        self._conditional = conditional_writes
        self._spool = ObjectStore(_spool_folder())

    @property
    def location(self) -> str:
        return self.url

    def _key(self, data_version: str) -> str:
        check_data_version(data_version)
        return f"{self._shard_folder(data_version[:2])}/{data_version[2:]}"

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        return StoreError(f"cannot {doing} the objects at {self.url}: "
                          f"{type(exc).__name__}: {exc}; check the URL, the credentials "
                          "and the network", path=self.url)

    # ---------------------------------------------------------------- presence

    def _size(self, data_version: str) -> int | None:
        try:
            return int(self.fs.info(self._key(data_version))["size"])
        except FileNotFoundError:
            return None
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "read") from exc

    def has(self, data_version: str, size: int) -> bool:
        """Whether the object exists with ``size``: one HEAD, never remembered (a run
        checks again after pinning, to see what a gc elsewhere removed)."""
        return self._size(data_version) == size

    batches_presence = True

    def present(self, objects: Iterable[tuple[str, int]]) -> set[str]:
        """The data versions of ``objects`` that exist with their size. A shard folder
        holding at least ``_LIST_AT`` of them is listed (one request a page of a
        thousand), any other object gets a HEAD; on an asynchronous filesystem
        ``_CONCURRENT_HEADS`` requests are in flight at once."""
        by_shard: dict[str, list[tuple[str, int]]] = {}
        for data_version, size in objects:
            check_data_version(data_version)
            by_shard.setdefault(data_version[:2], []).append((data_version, size))
        listed = [shard for shard, wanted in by_shard.items() if len(wanted) >= _LIST_AT]
        alone = [item for shard, wanted in by_shard.items() if len(wanted) < _LIST_AT
                 for item in wanted]
        try:
            if getattr(self.fs, "async_impl", False):
                shard_sizes, sizes = self._ask_concurrently(listed, alone)
            else:
                shard_sizes = [self._listing(shard) for shard in listed]
                sizes = [self._size(dv) for dv, _ in alone]
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "read") from exc
        there = {dv for (dv, size), found in zip(alone, sizes, strict=True) if found == size}
        for shard, found_sizes in zip(listed, shard_sizes, strict=True):
            there.update(dv for dv, size in by_shard[shard] if found_sizes.get(dv) == size)
        return there

    def _shard_folder(self, shard: str) -> str:
        return f"{self._root}/objects/{shard}"

    def _listing(self, shard: str) -> dict[str, int]:
        try:
            return _listed_sizes(shard, self.fs.ls(self._shard_folder(shard), detail=True))
        except FileNotFoundError:
            return {}

    def _ask_concurrently(self, shards: Sequence[str], alone: Sequence[tuple[str, int]]
                          ) -> tuple[list[dict[str, int]], list[int | None]]:
        """The listings of ``shards`` and the sizes of ``alone``, asked at once."""
        from fsspec.asyn import sync

        limit = asyncio.Semaphore(_CONCURRENT_HEADS)

        async def listing(shard: str) -> dict[str, int]:
            async with limit:
                try:
                    return _listed_sizes(shard, await self.fs._ls(
                        self._shard_folder(shard), detail=True))
                except FileNotFoundError:
                    return {}

        async def size_of(data_version: str) -> int | None:
            async with limit:
                try:
                    return int((await self.fs._info(self._key(data_version)))["size"])
                except FileNotFoundError:
                    return None

        async def everything() -> tuple[list[dict[str, int]], list[int | None]]:
            listings = asyncio.gather(*(listing(shard) for shard in shards))
            sizes = asyncio.gather(*(size_of(dv) for dv, _ in alone))
            return list(await listings), list(await sizes)

        return sync(self.fs.loop, everything)

    # ---------------------------------------------------------------- writing

    def start_write(self, value: Any) -> ObjectWrite:
        """Pickle ``value`` into a spool file (see :meth:`ObjectStore.start_write`)."""
        return self._spool.start_write(value)

    def write(self, value: Any) -> PendingObject:
        return self.start_write(value).finish()

    def put(self, value: Any) -> tuple[str, int]:
        pending = self.write(value)
        self.commit([pending])
        return pending.data_version, pending.size

    def commit(self, pending: Sequence[StoredObject], durable: bool = True) -> None:
        """Upload the written objects that are not there yet (a large one is looked for
        first; a small one is sent, its conditional create tells); then drop their spool
        files. An upload that succeeded is durable."""
        items = [item for item in pending if isinstance(item, PendingObject)]
        try:
            for item in items:
                if item.size < _PART or not self.has(item.data_version, item.size):
                    self._upload(item)
        except Exception as exc:
            raise self._error(exc, "write") from exc
        finally:
            self._spool.discard(items)

    def _upload(self, item: PendingObject) -> None:
        key = self._key(item.data_version)
        if self._conditional:
            try:
                self._create(item, key)
            except FileExistsError:  # another writer was first: the same bytes
                pass
            except Exception as exc:  # a service without conditional writes?
                if "NotImplemented" not in str(exc) and "not implemented" not in str(exc):
                    raise
                self._conditional = False
        if not self._conditional:
            temp = f"{self._root}/tmp/{uuid.uuid4().hex}"
            try:
                self._create(item, temp, conditional=False)
                self.fs.copy(temp, key)  # server-side: the name appears whole
            finally:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(temp)

    def _create(self, item: PendingObject, key: str, conditional: bool = True) -> None:
        mode = "create" if conditional else "overwrite"
        if item.temp is None:  # held in memory: small
            assert item.data is not None
            self.fs.pipe_file(key, item.data, mode=mode)
        else:
            if item.raw is not None:
                item.raw.flush()
            self.fs.put_file(item.temp, key, mode=mode, chunksize=_PART,
                             max_concurrency=_UPLOADS)

    def discard(self, pending: Sequence[StoredObject]) -> None:
        self._spool.discard(pending)

    def sync(self) -> None:
        """Nothing to do: an upload is durable once it returns."""

    def identity(self) -> str:
        """The id in ``folder_id`` under the prefix, made by the first opener (a
        conditional create: two openers agree)."""
        key = f"{self._root}/folder_id"
        try:
            try:
                return self.fs.cat_file(key).decode().strip()
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    self.fs.pipe_file(key, f"{os.urandom(16).hex()}\n".encode(),
                                      mode="create" if self._conditional else "overwrite")
                return self.fs.cat_file(key).decode().strip()
        except Exception as exc:
            raise self._error(exc, "open") from exc

    # ---------------------------------------------------------------- reading

    def load(self, data_version: str) -> Any:
        """The value of an object, its bytes checked against its name first.

        Raises:
            ObjectNotFoundError: no such object.
            IntegrityError: its bytes do not match (it is quarantined).
            StoreError: the storage cannot be read.
        """
        temp, raw = self._spool.create_temp()
        try:
            try:
                with self.fs.open(self._key(data_version), "rb", block_size=_PART) as src:
                    shutil.copyfileobj(src, raw, _PART)
                raw.flush()
            except FileNotFoundError:
                raise ObjectNotFoundError(
                    f"object {data_version[:12]}… is missing from {self.url}; run the flow "
                    "to materialize it again", path=self._key(data_version)) from None
            except Exception as exc:
                raise self._error(exc, "read") from exc
            with open(temp, "rb") as local:
                read = _pickling.read_object(local)
        finally:
            raw.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        if read.digest != data_version:
            raise corrupt_error(data_version, self.quarantine(data_version))
        return _pickling.load(read)

    def digest(self, data_version: str) -> str | None:
        """The SHA-256 of the object's bytes, streamed; None if it is not there."""
        try:
            with self.fs.open(self._key(data_version), "rb", block_size=_PART) as src:
                return _pickling.file_digest(src)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error(exc, "read") from exc

    # ---------------------------------------------------------------- maintenance

    def iter_objects(self) -> Iterator[tuple[str, int]]:
        """Every stored object as (data version, size), in order."""
        prefix = f"{self._root}/objects/"
        try:
            found = self.fs.find(prefix, detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._error(exc, "list") from exc
        objects = []
        for key, info in found.items():
            name = key[len(prefix):].replace("/", "") if key.startswith(prefix) else ""
            if is_data_version(name) and key.count("/") - prefix.count("/") == 1:
                objects.append((name, int(info["size"])))
        yield from sorted(objects)

    def is_empty(self) -> bool:
        return next(self.iter_objects(), None) is None

    def delete(self, data_version: str) -> None:
        try:
            self.fs.rm_file(self._key(data_version))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error(exc, "delete from") from exc

    def quarantine(self, data_version: str) -> str:
        """Move a corrupt object to ``quarantine/``; where it went."""
        target = f"{self._root}/quarantine/{data_version}.{int(time.time())}"
        try:
            self.fs.copy(self._key(data_version), target)
            self.fs.rm_file(self._key(data_version))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error(exc, "quarantine in") from exc
        return f"{self.url.split('://', 1)[0]}://{target}"

    def remove_stale_temps(self) -> int:
        """Remove dead writers' spool files and temp keys older than an hour."""
        removed = self._spool.remove_stale_temps()
        try:
            temps = self.fs.find(f"{self._root}/tmp/", detail=True)
        except FileNotFoundError:
            return removed
        except Exception as exc:
            raise self._error(exc, "list") from exc
        horizon = time.time() - _TEMP_MAX_AGE
        for key, info in temps.items():
            modified = info.get("LastModified") or info.get("mtime")
            stamp = modified.timestamp() if hasattr(modified, "timestamp") else modified
            if stamp is not None and float(stamp) < horizon:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(key)
                    removed += 1
        return removed

    def remove_empty_shards(self) -> None:
        """Nothing to do: object storage has no folders."""

    def close(self) -> None:
        self._spool.close()
