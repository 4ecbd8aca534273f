"""The metadata database: runs, materializations, objects and code sources.

:class:`MetadataStore` says what is read and written; the statements are ``_sql``'s, the
row mapping ``_records``' and the database one of the adapters of ``_database`` (the
stdlib ``sqlite3`` for the embedded default, SQLAlchemy for every other URL).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from kazeflow.errors import ObjectNotFoundError, StoreError
from kazeflow.results import Materialization, RecordKey, Run
from kazeflow.store import _records, _sql
from kazeflow.store._database import Database, open_database
from kazeflow.store._liveness import process_start, this_host

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _guarded(doing: str) -> Callable[[_Method], _Method]:
    """Decorate a method of MetadataStore that reads or writes (``doing``): what the
    database, its driver or a damaged row raises becomes a StoreError (one place for
    every public method)."""
    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def guarded(self: MetadataStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except self.database.errors as exc:
                raise self.store_error(exc, doing) from exc

        return guarded  # type: ignore[return-value]

    return decorate


class MetadataStore:
    """Reads and writes the metadata database.

    The embedded default (no URL given to the store, or a plain ``sqlite:///<path>``)
    goes through the stdlib ``sqlite3``; any other URL through SQLAlchemy, SQLite too
    when the URL names its driver (``sqlite+pysqlite:///<path>``). Both keep the same
    guarantees and raise the same errors; only Alembic creates or upgrades the schema
    (see ``_database``).

    Args:
        url: the database's URL.
        folder_id: the id of the store folder whose runs this records (several folders
            may share one database; each owns its runs' records and their objects).
        before_create: called before the schema is created in an empty database (it may
            raise to refuse).

    Raises:
        StoreError: the URL cannot be used, or the database cannot be opened.
        SchemaVersionError: a newer kazeflow wrote the database.
    """

    def __init__(self, url: str, *, folder_id: str,
                 before_create: Callable[[], None] | None = None) -> None:
        self.url = url
        self.folder_id = folder_id
        self.database: Database = open_database(url)
        try:
            self.database.ensure_schema(before_create)
        except self.database.errors as exc:
            self.database.close()
            raise self.store_error(exc, "open") from None
        except BaseException:
            self.database.close()
            raise

    @property
    def dialect(self) -> str:
        """The database's SQL dialect (``sqlite``, ``postgresql``, ...)."""
        return self.database.dialect

    @property
    def engine(self) -> Any:
        """The SQLAlchemy engine, on a database that goes through SQLAlchemy.

        Raises:
            AttributeError: the embedded default has none.
        """
        engine = getattr(self.database, "engine", None)
        if engine is None:
            raise AttributeError(f"the metadata database {self.database.shown} goes "
                                 "through the stdlib sqlite3 and has no SQLAlchemy engine")
        return engine

    def store_error(self, exc: BaseException, doing: str) -> StoreError:
        """``exc`` of the database or driver as a StoreError naming the database and the
        fix."""
        cause = getattr(exc, "orig", None) or exc
        text = str(cause)
        if "full" in text:
            hint = "free some disk space and run again"
        elif "disk I/O error" in text:
            hint = ("the disk is full, a file size limit was reached or the disk failed: "
                    "free some space (or raise the limit) and run again")
        elif isinstance(cause, ValueError) or any(
                w in text for w in ("not a database", "malformed", "corrupt")):
            hint = ("the database is damaged: restore it from a backup, or move it aside "
                    "and run again to start a new history (objects are kept)")
        elif any(w in text for w in ("terminat", "server closed the connection",
                                     "connection is lost", "connection is closed",
                                     "Connection refused", "could not receive data")):
            hint = ("the connection to the database server was lost: check the server "
                    "and run again (what was recorded is kept; the next run resumes)")
        else:
            hint = "check the URL, the server and permissions"
        return StoreError(f"cannot {doing} the metadata database "
                          f"{self.database.shown}: {text}; {hint}", path=self.url)

    def close(self) -> None:
        """Release every pooled connection."""
        self.database.close()

    # ---------------------------------------------------------------- runs
    @_guarded("write")
    def start_run(self, run_id: str, *, selection: Sequence[str], pid: int,
                  hostname: str | None = None) -> float:
        started = time.time()
        hostname = this_host() if hostname is None else hostname
        with self.database.transaction() as tx:
            tx.execute(_sql.START_RUN, {
                "run_id": run_id, "started_at": started, "pid": pid, "hostname": hostname,
                "selection": _records.encode(list(selection)),
                "process_start": process_start(pid), "folder_id": self.folder_id})
        return started

    @_guarded("write")
    def finish_run(self, run_id: str, *, status: str, n_materialized: int, n_reused: int,
                   n_failed: int, error: str | None = None) -> None:
        with self.database.transaction() as tx:
            tx.execute(_sql.FINISH_RUN, {
                "run_id": run_id, "status": status, "ended_at": time.time(),
                "n_materialized": n_materialized, "n_reused": n_reused,
                "n_failed": n_failed, "error": _records.printable(error)})

    @_guarded("read")
    def runs(self, limit: int | None = None) -> list[Run]:
        rows = self.database.read(_sql.select_runs(limit), _limited({}, limit))
        return [_records.run(row) for row in rows]

    # ---------------------------------------------------------------- materializations
    @_guarded("write")
    def record(self, rows: Sequence[Mapping[str, Any]],
               new_objects: Iterable[tuple[str, int]] = (),
               code: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Commit materialization rows with the objects and code sources they refer to.

        The objects must already be durable on disk: this is the commit point.
        """
        now = time.time()
        object_rows = _records.object_rows(new_objects, now)
        code_rows = _records.code_rows(code, now)
        record_rows = _records.record_rows(rows)
        with self.database.transaction() as tx:
            tx.insert_new("objects", object_rows)
            tx.insert_new("code_sources", code_rows)
            if record_rows:
                tx.executemany(_sql.INSERT_RECORD, record_rows)

    @_guarded("read")
    def code_components(self, code_hash: str) -> dict[str, str] | None:
        rows = self.database.read(_sql.SELECT_CODE, {"code_hash": code_hash})
        return json.loads(rows[0][0]) if rows else None

    @_guarded("read")
    def latest(self, asset_names: Collection[str]) -> dict[str, Materialization]:
        """The newest successful materialization of each asset that has one."""
        rows = self._newest(asset_names, _sql.RECORD)
        return {row[0]: _records.materialization(row[1:]) for row in rows}

    @_guarded("read")
    def latest_keys(self, asset_names: Collection[str]) -> dict[str, RecordKey]:
        """Like :meth:`latest`, only the columns that reusing a record needs."""
        rows = self._newest(asset_names, _sql.KEY)
        return {row[0]: RecordKey(*row[1:]) for row in rows}

    @_guarded("read")
    def latest_failures(self, asset_names: Collection[str]) -> dict[str, Materialization]:
        """The newest attempt of each asset whose newest attempt failed (its status
        read for each asset, the whole record only for those)."""
        failed = {}
        for name, record_id, status in self._newest(asset_names, _sql.ATTEMPT, ""):
            if status == "failed" and (record := self.by_id(record_id)) is not None:
                failed[name] = record
        return failed

    def _newest(self, asset_names: Collection[str], columns: str,
                where: str = _sql.SUCCESSFUL) -> list[Any]:
        """The asset name and ``columns`` of the newest record matching ``where`` of
        each of ``asset_names``, in one query (``_sql.newest``). On SQLite and
        PostgreSQL the names go in as one JSON parameter and each is an index probe, so
        the cost follows the plan, not the length of the history (2 ms for 1,000 assets
        with 300,000 records, where grouping the whole history took 20 ms)."""
        dialect = self.database.dialect
        sql = _sql.newest(dialect, columns, where)
        if dialect in _sql.JSON_NAMES:  # a duplicate name only repeats a row
            return self.database.read(sql, {"names": json.dumps(list(asset_names))})
        wanted = set(asset_names)  # other databases: the whole history was grouped
        return [row for row in self.database.read(sql) if row[0] in wanted]

    @_guarded("read")
    def by_id(self, record_id: int) -> Materialization | None:
        """One record by id."""
        rows = self.database.read(_sql.SELECT_BY_ID, {"id": record_id})
        return _records.materialization(rows[0]) if rows else None

    @_guarded("read")
    def by_cache_key(self, cache_key: str) -> list[Materialization]:
        """Successful materializations with ``cache_key``, newest first."""
        rows = self.database.read(_sql.SELECT_BY_CACHE_KEY, {"key": cache_key})
        return [_records.materialization(row) for row in rows]

    @_guarded("read")
    def history(self, asset_names: Sequence[str] | None, limit: int | None) -> list[
            Materialization]:
        sql, params = _sql.history(self.database.dialect, asset_names, limit)
        rows = self.database.read(sql, _limited(params, limit))
        return [_records.materialization(row) for row in rows]

    @_guarded("read")
    def find_version(self, asset_name: str, version: str | int | None) -> Materialization:
        """One successful materialization: the newest, an id, or a data version (prefix).

        Raises:
            ObjectNotFoundError: none matches, or a prefix matches several.
        """
        by_id, by_prefix = isinstance(version, int), isinstance(version, str)
        params: dict[str, Any] = {"asset_name": asset_name}
        if by_id:
            params["id"] = version
        elif by_prefix:
            params["prefix"] = _sql.like_prefix(version)  # type: ignore[arg-type]
        rows = self.database.read(_sql.find_version(by_id, by_prefix), params)
        if not rows:
            what = "no materialization" if version is None else f"no version {version!r}"
            raise ObjectNotFoundError(
                f"asset {asset_name!r} has {what} in this store; see Flow.history("
                f"{asset_name!r}) for what there is, or run the flow first")
        data_version = _sql.RECORD_COLUMNS.index("data_version")
        versions = {row[data_version] for row in rows}
        if by_prefix and len(versions) > 1:
            raise ObjectNotFoundError(
                f"version {version!r} of asset {asset_name!r} is ambiguous: it starts "
                f"{len(versions)} data versions; give more characters")
        return _records.materialization(rows[0])

    # ---------------------------------------------------------------- maintenance
    @_guarded("read")
    def referenced_versions(self, excluding: Collection[int] = (), *,
                            every_folder: bool = False) -> dict[str, set[str]]:
        """Data version → assets whose successful records (but ``excluding``) point at it:
        the records of this folder's runs, or with ``every_folder`` of every run."""
        refs: dict[str, set[str]] = {}
        skip = set(excluding)
        rows = self.database.read(_sql.referenced(every_folder),
                                  {} if every_folder else {"folder_id": self.folder_id})
        for record_id, data_version, asset_name in rows:
            if record_id not in skip:
                refs.setdefault(data_version, set()).add(asset_name)
        return refs

    @_guarded("read")
    def expired(self, keep_last: int | None, older_than: float | None) -> list[int]:
        """Ids of this folder's records that gc may delete: beyond the ``keep_last`` newest
        of their asset, or ended before ``older_than`` (a timestamp). The newest successful
        record of every asset is always kept."""
        rows = self.database.read(_sql.SELECT_GC_CANDIDATES, {"folder_id": self.folder_id})
        expired: list[int] = []
        rank: dict[str, int] = {}
        kept_success: set[str] = set()
        for record_id, asset_name, status, ended_at in rows:
            position = rank[asset_name] = rank.get(asset_name, 0) + 1
            if status == "materialized" and asset_name not in kept_success:
                kept_success.add(asset_name)  # the newest success
                continue
            too_many = keep_last is not None and position > keep_last
            too_old = older_than is not None and ended_at < older_than
            if too_many or too_old:
                expired.append(record_id)
        return expired

    @_guarded("write")
    def delete_materializations(self, ids: Sequence[int]) -> None:
        """Delete records, and object rows that no remaining record refers to."""
        with self.database.transaction() as tx:
            for sql, params in _sql.delete_records(list(ids)):
                tx.execute(sql, params)
            tx.execute(_sql.DELETE_UNREFERENCED_OBJECTS)


def _limited(params: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """``params`` with the ``:limit`` of a query that has one."""
    return params if limit is None else {**params, "limit": limit}
