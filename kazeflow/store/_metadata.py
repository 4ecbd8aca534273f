"""The metadata database: runs, materializations, objects and code sources."""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    TextClause,
    create_engine,
    event,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.sql.compiler import SQLCompiler

from kazeflow.errors import ObjectNotFoundError, StoreError
from kazeflow.results import Materialization, RecordKey, Run
from kazeflow.store import _migrate
from kazeflow.store._liveness import observed_status, process_start
from kazeflow.store._models import code_sources, materializations, objects, runs

BUSY_TIMEOUT_S = 60.0
_CHUNK = 500  # names per IN (...) clause


def create_metadata_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and explicit BEGINs."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S,
                                              "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite's own BEGIN handling is off: ours below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")  # WAL: consistent after any crash
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front: a deferred transaction that later writes can
        # fail with "database is locked" without ever waiting on the busy timeout.
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('kazeflow_begin', '')}")

    return engine


def _enable_wal(cur: Any) -> None:
    """Turn on WAL (persistent in the file), waiting while another opener converts it.

    SQLite answers ``PRAGMA journal_mode = WAL`` with "database is locked" at once,
    ignoring the busy timeout, while another connection converts a new file.
    """
    if cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _printable(text: str | None) -> str | None:
    """``text`` with NUL bytes spelt out: PostgreSQL text cannot hold them."""
    return text.replace("\x00", "\\x00") if text and "\x00" in text else text


def _decode(text: str | None) -> Any:
    return {} if not text or text == "{}" else json.loads(text)


def _materialization(row: Any) -> Materialization:
    """A record from a full row of ``materializations`` (its columns are the record's
    fields, in order; a test keeps them so).

    Filled in directly rather than through the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field): a status check reads a record per planned asset.
    """
    (id_, run_id, asset_name, cache_key, code_hash, config_hash, config, upstream_versions,
     data_version, size, started_at, ended_at, duration, status, forced, error,
     user_metadata, libraries) = row
    record = object.__new__(Materialization)
    object.__setattr__(record, "__dict__", {
        "id": id_, "run_id": run_id, "asset_name": asset_name, "cache_key": cache_key,
        "code_hash": code_hash, "config_hash": config_hash, "config": _decode(config),
        "upstream_versions": _decode(upstream_versions), "data_version": data_version,
        "size": size, "started_at": started_at, "ended_at": ended_at,
        "duration": duration, "status": status, "forced": bool(forced), "error": error,
        "user_metadata": _decode(user_metadata),
        "libraries": _decode(libraries) if libraries else {}})
    return record


#: The columns of a full record (``materializations AS m``), in the order of the
#: record's fields (a test keeps them so), and those of a :class:`RecordKey`.
_RECORD_COLUMNS = ", ".join(f"m.{column.name}" for column in materializations.c)
_KEY_COLUMNS = ", ".join(f"m.{field}" for field in RecordKey._fields)

#: A table of the strings in the JSON-array parameter ``names`` (column ``value``),
#: where the database has one.
_JSON_NAMES = {"sqlite": "json_each(:names)",
               "postgresql": "json_array_elements_text(CAST(:names AS JSON))"}

def _insert_text(table: Table, skip_existing: bool = False) -> TextClause:
    """``INSERT`` of every column of ``table`` but an autoincrement key, as SQL text
    (see ``MetadataStore._read``); ``skip_existing`` skips rows whose primary key is
    there already (``ON CONFLICT DO NOTHING``, which SQLite and PostgreSQL share)."""
    names = [c.name for c in table.columns if c.autoincrement is not True]
    return text(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
                f"({', '.join(f':{name}' for name in names)})"
                + (" ON CONFLICT DO NOTHING" if skip_existing else ""))


_INSERT_RECORD = _insert_text(materializations)
_INSERT_NEW = {table.name: _insert_text(table, skip_existing=True)
               for table in (objects, code_sources)}

#: A run's row, written at its start and its end (text: see ``MetadataStore._read``).
_START_RUN = text(
    "INSERT INTO runs (run_id, status, started_at, pid, hostname, selection,"
    " process_start, folder_id) VALUES (:run_id, 'running', :started_at, :pid, :hostname,"
    " :selection, :process_start, :folder_id)")
_FINISH_RUN = text(
    "UPDATE runs SET status = :status, ended_at = :ended_at,"
    " n_materialized = :n_materialized, n_reused = :n_reused, n_failed = :n_failed,"
    " error = :error WHERE run_id = :run_id")


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
            except self._driver_errors as exc:
                raise self.store_error(exc, doing) from exc

        return guarded  # type: ignore[return-value]

    return decorate


#: What SQLAlchemy raises for a URL it cannot use (unparsable, unknown dialect or driver).
BAD_URL_ERRORS = (ArgumentError, ImportError)


def bad_url(url: Any, exc: BaseException) -> StoreError:
    """The error for a database URL that SQLAlchemy cannot use."""
    return StoreError(
        f"cannot use the metadata database URL {_shown(url)}: {exc}; give a SQLAlchemy URL "
        "such as sqlite:////path/kazeflow.db or postgresql+psycopg://user@host/db "
        "(pip install 'kazeflow[postgres]')", path=url)


def _shown(url: Any) -> str:
    """A database URL with its password hidden (as given when it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return repr(url)


class MetadataStore:
    """Reads and writes the metadata database behind one SQLAlchemy engine.

    Args:
        url: the database's SQLAlchemy URL.
        folder_id: the id of the store folder whose runs this records (several folders
            may share one database; each owns its runs' records and their objects).
        before_create: called before the schema is created in an empty database (it may
            raise to refuse).
    """

    def __init__(self, url: str, *, folder_id: str,
                 before_create: Callable[[], None] | None = None) -> None:
        self.url = url
        self.folder_id = folder_id
        try:
            self.engine = create_metadata_engine(url)
        except BAD_URL_ERRORS as exc:
            raise bad_url(url, exc) from None
        dbapi = self.engine.dialect.loaded_dbapi
        #: What the driver raises from the raw cursor (see _read), besides SQLAlchemy's.
        self._driver_errors: tuple[type[BaseException], ...] = (
            DBAPIError, json.JSONDecodeError, getattr(dbapi, "Error", DBAPIError))
        self._compiled: dict[str, SQLCompiler] = {}  # hot read queries, see _read
        try:
            _migrate.ensure_schema(self.engine, before_create)
        except self._driver_errors as exc:
            self.engine.dispose()
            raise self.store_error(exc, "open") from None
        except BaseException:
            self.engine.dispose()
            raise

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
                          f"{_shown(self.engine.url)}: {text}; {hint}", path=self.url)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def _write(self) -> Any:
        return self.engine.connect().execution_options(kazeflow_begin="IMMEDIATE")

    # ---------------------------------------------------------------- runs
    @_guarded("write")
    def start_run(self, run_id: str, *, selection: Sequence[str], pid: int,
                  hostname: str) -> float:
        started = time.time()
        with self._write() as conn, conn.begin():
            conn.execute(_START_RUN, {
                "run_id": run_id, "started_at": started, "pid": pid, "hostname": hostname,
                "selection": _json(list(selection)), "process_start": process_start(pid),
                "folder_id": self.folder_id})
        return started

    @_guarded("write")
    def finish_run(self, run_id: str, *, status: str, n_materialized: int, n_reused: int,
                   n_failed: int, error: str | None = None) -> None:
        with self._write() as conn, conn.begin():
            conn.execute(_FINISH_RUN, {
                "run_id": run_id, "status": status, "ended_at": time.time(),
                "n_materialized": n_materialized, "n_reused": n_reused,
                "n_failed": n_failed, "error": _printable(error)})

    @_guarded("read")
    def runs(self, limit: int | None = None) -> list[Run]:
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
        with self.engine.connect() as conn:
            return [Run(run_id=r.run_id, status=observed_status(
                            r.status, r.pid, r.hostname, r.started_at, r.process_start),
                        started_at=r.started_at,
                        ended_at=r.ended_at, pid=r.pid, hostname=r.hostname,
                        selection=tuple(json.loads(r.selection or "[]")),
                        n_materialized=r.n_materialized, n_reused=r.n_reused,
                        n_failed=r.n_failed, error=r.error)
                    for r in conn.execute(query)]

    # ---------------------------------------------------------------- materializations
    @_guarded("write")
    def record(self, rows: Sequence[Mapping[str, Any]],
               new_objects: Iterable[tuple[str, int]] = (),
               code: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Commit materialization rows with the objects and code sources they refer to.

        The objects must already be durable on disk: this is the commit point.
        """
        now = time.time()
        object_rows = [{"data_version": dv, "size": size, "created_at": now}
                       for dv, size in dict(new_objects).items()]
        code_rows = [{"code_hash": h, "components": _json(dict(c)), "created_at": now}
                     for h, c in (code or {}).items()]
        rows = [{**row, "config": _json(row["config"]), "error": _printable(row["error"]),
                 "upstream_versions": _json(row["upstream_versions"]),
                 "user_metadata": _json(row["user_metadata"]) if row.get("user_metadata")
                 else None,
                 "libraries": _json(row["libraries"]) if row.get("libraries") else None}
                for row in rows]
        with self._write() as conn, conn.begin():
            _insert_new(conn, objects, object_rows)
            _insert_new(conn, code_sources, code_rows)
            if rows:
                conn.execute(_INSERT_RECORD, rows)

    @_guarded("read")
    def code_components(self, code_hash: str) -> dict[str, str] | None:
        with self.engine.connect() as conn:
            text = conn.execute(select(code_sources.c.components).where(
                code_sources.c.code_hash == code_hash)).scalar()
        return json.loads(text) if text is not None else None

    @_guarded("read")
    def latest(self, asset_names: Collection[str]) -> dict[str, Materialization]:
        """The newest successful materialization of each asset that has one."""
        rows = self._newest(asset_names, "latest", _RECORD_COLUMNS)
        return {row[0]: _materialization(row[1:]) for row in rows}

    @_guarded("read")
    def latest_keys(self, asset_names: Collection[str]) -> dict[str, RecordKey]:
        """Like :meth:`latest`, only the columns that reusing a record needs."""
        rows = self._newest(asset_names, "latest_keys", _KEY_COLUMNS)
        return {row[0]: RecordKey(*row[1:]) for row in rows}

    @_guarded("read")
    def latest_failures(self, asset_names: Collection[str]) -> dict[str, Materialization]:
        """The newest attempt of each asset whose newest attempt failed (its status
        read for each asset, the whole record only for those)."""
        rows = self._newest(asset_names, "latest_attempts", "m.id, m.status", "")
        failed = {}
        for name, record_id, status in rows:
            if status == "failed" and (record := self.by_id(record_id)) is not None:
                failed[name] = record
        return failed

    def _newest(self, asset_names: Collection[str], tag: str, columns: str,
                where: str = " AND n.status = 'materialized'") -> list[Any]:
        """The asset name and ``columns`` (of ``materializations AS m``) of the newest
        successful record (any record, with ``where=""``) of each of ``asset_names``, in
        one query. On SQLite and
        PostgreSQL the names go in as one JSON parameter and each is an index probe, so
        the cost follows the plan, not the length of the history (2 ms for 1,000 assets
        with 300,000 records, where grouping the whole history took 20 ms)."""
        names = _JSON_NAMES.get(self.engine.dialect.name)
        if names is not None:
            return self._read(tag, (
                f"SELECT m.asset_name, {columns} FROM {names} AS j"
                " JOIN materializations AS m ON m.id = (SELECT max(n.id)"
                " FROM materializations AS n"
                f" WHERE n.asset_name = j.value{where})"),
                names=json.dumps(list(asset_names)))  # a duplicate only repeats a row
        wanted = set(asset_names)  # other databases: group the whole history
        rows = self._read(tag, (
            f"SELECT m.asset_name, {columns} FROM materializations AS m WHERE m.id IN"
            " (SELECT max(n.id) FROM materializations AS n WHERE 1 = 1"
            f"{where} GROUP BY n.asset_name)"))
        return [row for row in rows if row[0] in wanted]

    @_guarded("read")
    def by_id(self, record_id: int) -> Materialization | None:
        """One record by id."""
        rows = self._read("by_id", f"SELECT {_RECORD_COLUMNS} FROM materializations AS m"
                                   " WHERE m.id = :id", id=record_id)
        return _materialization(rows[0]) if rows else None

    @_guarded("read")
    def by_cache_key(self, cache_key: str) -> list[Materialization]:
        """Successful materializations with ``cache_key``, newest first."""
        rows = self._read("by_cache_key", (
            f"SELECT {_RECORD_COLUMNS} FROM materializations AS m WHERE m.cache_key = :key"
            " AND m.status = 'materialized' ORDER BY m.id DESC"), key=cache_key)
        return [_materialization(row) for row in rows]

    def _read(self, name: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query run on the driver's cursor: SQLAlchemy compiles its
        text once per store for the dialect's parameter style, and each call skips its
        per-execution overhead (≈ 0.1 ms, which a run deciding thousands of assets would
        pay per lookup; this takes ≈ 15 µs). The hot queries are written as SQL text:
        compiling the same Core ``select`` costs ≈ 1-2 ms in each new process."""
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compiled[name] = text(sql).compile(  # type: ignore[assignment]
                dialect=self.engine.dialect)
        values = compiled.construct_params(params)
        args = [values[k] for k in compiled.positiontup or ()] if compiled.positional \
            else values
        connection = self.engine.raw_connection()  # from the pool, without a Connection
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(compiled.string, args)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool

    @_guarded("read")
    def history(self, asset_names: Sequence[str] | None, limit: int | None) -> list[
            Materialization]:
        m = materializations
        query = select(m).order_by(m.c.id.desc()).limit(limit)
        if asset_names is not None:
            query = query.where(m.c.asset_name.in_(list(asset_names)))
        with self.engine.connect() as conn:
            return [_materialization(row) for row in conn.execute(query)]

    @_guarded("read")
    def find_version(self, asset_name: str, version: str | int | None) -> Materialization:
        """One successful materialization: the newest, an id, or a data version (prefix).

        Raises:
            ObjectNotFoundError: none matches, or a prefix matches several.
        """
        m = materializations
        query = select(m).where(m.c.asset_name == asset_name, m.c.status == "materialized") \
            .order_by(m.c.id.desc())
        if isinstance(version, int):
            query = query.where(m.c.id == version)
        elif version is not None:
            query = query.where(m.c.data_version.startswith(version, autoescape=True))
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(50)).all()
        if not rows:
            what = "no materialization" if version is None else f"no version {version!r}"
            raise ObjectNotFoundError(
                f"asset {asset_name!r} has {what} in this store; see Flow.history("
                f"{asset_name!r}) for what there is, or run the flow first")
        versions = {r.data_version for r in rows}
        if isinstance(version, str) and len(versions) > 1:
            raise ObjectNotFoundError(
                f"version {version!r} of asset {asset_name!r} is ambiguous: it starts "
                f"{len(versions)} data versions; give more characters")
        return _materialization(rows[0])


    # ---------------------------------------------------------------- maintenance
    @_guarded("read")
    def referenced_versions(self, excluding: Collection[int] = (), *,
                            every_folder: bool = False) -> dict[str, set[str]]:
        """Data version → assets whose successful records (but ``excluding``) point at it:
        the records of this folder's runs, or with ``every_folder`` of every run."""
        m = materializations
        refs: dict[str, set[str]] = {}
        skip = set(excluding)
        query = select(m.c.id, m.c.data_version, m.c.asset_name).where(
            m.c.status == "materialized")
        with self.engine.connect() as conn:
            rows = conn.execute(query if every_folder else self._of_this_folder(query))
            for record_id, data_version, asset_name in rows:
                if record_id not in skip:
                    refs.setdefault(data_version, set()).add(asset_name)
        return refs

    @_guarded("read")
    def expired(self, keep_last: int | None, older_than: float | None) -> list[int]:
        """Ids of this folder's records that gc may delete: beyond the ``keep_last`` newest
        of their asset, or ended before ``older_than`` (a timestamp). The newest successful
        record of every asset is always kept."""
        m = materializations
        query = select(m.c.id, m.c.asset_name, m.c.status, m.c.ended_at).order_by(
            m.c.asset_name, m.c.id.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(self._of_this_folder(query)).all()
        expired: list[int] = []
        rank: dict[str, int] = {}
        kept_success: set[str] = set()
        for row in rows:
            position = rank[row.asset_name] = rank.get(row.asset_name, 0) + 1
            newest_success = row.status == "materialized" and row.asset_name not in kept_success
            if newest_success:
                kept_success.add(row.asset_name)
                continue
            too_many = keep_last is not None and position > keep_last
            too_old = older_than is not None and row.ended_at < older_than
            if too_many or too_old:
                expired.append(row.id)
        return expired

    def _of_this_folder(self, query: Select[Any]) -> Select[Any]:
        """``query`` (of materializations) narrowed to the records of this folder's runs;
        runs recorded before folders had ids count as every folder's."""
        mine = select(runs.c.run_id).where(or_(runs.c.folder_id == self.folder_id,
                                               runs.c.folder_id.is_(None)))
        return query.where(materializations.c.run_id.in_(mine))

    @_guarded("write")
    def delete_materializations(self, ids: Sequence[int]) -> None:
        """Delete records, and object rows that no remaining record refers to."""
        m = materializations
        with self._write() as conn, conn.begin():
            for chunk in _chunks(list(ids)):  # type: ignore[arg-type]
                conn.execute(m.delete().where(m.c.id.in_(chunk)))
            still = select(m.c.data_version).where(m.c.data_version.is_not(None))
            conn.execute(objects.delete().where(objects.c.data_version.not_in(still)))


def _insert_new(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose primary key is already there."""
    if not rows:
        return
    if conn.dialect.name in ("sqlite", "postgresql"):
        conn.execute(_INSERT_NEW[table.name], rows)
        return
    key = next(iter(table.primary_key.columns))
    for row in rows:  # other databases: look first, and let a racing insert win
        if conn.execute(select(key).where(key == row[key.name])).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(table).values(**row))
            except SAIntegrityError:
                pass


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]

