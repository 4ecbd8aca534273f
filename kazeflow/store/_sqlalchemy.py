"""Every database but the embedded default, through SQLAlchemy (PostgreSQL, SQLite by an
explicit driver URL such as ``sqlite+pysqlite:///<path>``, ...); and the engine that
Alembic upgrades any database on, the embedded one included."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.sql.compiler import SQLCompiler

from kazeflow.errors import StoreError
from kazeflow.store import _migrate, _sql
from kazeflow.store._sqlite import BUSY_TIMEOUT_S, configure

#: What SQLAlchemy raises for a URL it cannot use (unparsable, unknown dialect or driver).
BAD_URL_ERRORS = (ArgumentError, ImportError)


def create_metadata_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and explicit BEGINs (the
    set-up of ``_sqlite.configure``)."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S,
                                              "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        configure(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front: a deferred transaction that later writes can
        # fail with "database is locked" without ever waiting on the busy timeout.
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('kazeflow_begin', '')}")

    return engine


def bad_url(url: Any, exc: BaseException) -> StoreError:
    """The error for a database URL that SQLAlchemy cannot use."""
    return StoreError(
        f"cannot use the metadata database URL {shown(url)}: {exc}; give a SQLAlchemy URL "
        "such as sqlite:////path/kazeflow.db or postgresql+psycopg://user@host/db "
        "(pip install 'kazeflow[postgres]')", path=url)


def shown(url: Any) -> str:
    """A database URL with its password hidden (as given when it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return repr(url)


def upgrade(url: str, before_create: Callable[[], None] | None) -> None:
    """Bring the database at ``url`` to the head with Alembic, on an engine of its own
    (the embedded adapter's way to a new or older schema).

    Raises:
        SchemaVersionError: an unknown revision.
        Exception: what the driver raised (unwrapped: the caller knows its driver).
    """
    engine = create_metadata_engine(url)
    try:
        _migrate.ensure_schema(engine, before_create)
    except DBAPIError as exc:
        raise (exc.orig or exc) from exc
    finally:
        engine.dispose()


class SqlAlchemyDatabase:
    """A metadata database behind one SQLAlchemy engine.

    Raises:
        StoreError: SQLAlchemy cannot use ``url``.
    """

    def __init__(self, url: str) -> None:
        try:
            self.engine = create_metadata_engine(url)
        except BAD_URL_ERRORS as exc:
            raise bad_url(url, exc) from None
        self.dialect = self.engine.dialect.name
        self.shown = shown(self.engine.url)
        dbapi = self.engine.dialect.loaded_dbapi
        #: What the driver raises from the raw cursor (see read), besides SQLAlchemy's.
        self.errors: tuple[type[BaseException], ...] = (
            DBAPIError, json.JSONDecodeError, getattr(dbapi, "Error", DBAPIError))
        self._compiled: dict[str, SQLCompiler] = {}
        self._texts: dict[str, TextClause] = {}

    def ensure_schema(self, before_create: Callable[[], None] | None) -> None:
        _migrate.ensure_schema(self.engine, before_create)

    def read(self, sql: str, params: Mapping[str, Any] | None = None
             ) -> list[tuple[Any, ...]]:
        """Rows of a read-only query run on the driver's cursor: SQLAlchemy compiles its
        text once per store for the dialect's parameter style, and each call skips its
        per-execution overhead (≈ 0.1 ms, which a run deciding thousands of assets would
        pay per lookup; this takes ≈ 15 µs)."""
        compiled = self._compiled.get(sql)
        if compiled is None:
            compiled = self._compiled[sql] = text(sql).compile(  # type: ignore[assignment]
                dialect=self.engine.dialect)
        values = compiled.construct_params(dict(params or {}))
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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        with self.engine.connect().execution_options(kazeflow_begin="IMMEDIATE") as conn, \
                conn.begin():
            yield _Transaction(conn, self._texts)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


class _Transaction:
    """Statements on the Connection of one write transaction."""

    def __init__(self, conn: Connection, texts: dict[str, TextClause]) -> None:
        self._conn = conn
        self._texts = texts  # the store's: each text is parsed once

    def _text(self, sql: str) -> TextClause:
        clause = self._texts.get(sql)
        if clause is None:
            clause = self._texts[sql] = text(sql)
        return clause

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._conn.execute(self._text(sql), dict(params or {}))

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.execute(self._text(sql), [dict(row) for row in rows])

    def insert_new(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if self._conn.dialect.name in _sql.ON_CONFLICT_DIALECTS:
            self.executemany(_sql.INSERT_NEW[table], rows)
            return
        key = _sql.KEY_OF[table]
        for row in rows:  # other databases: look first, and let a racing insert win
            if self._conn.execute(self._text(_sql.SELECT_KEY[table]),
                                  {key: row[key]}).first() is None:
                try:
                    with self._conn.begin_nested():
                        self.execute(_sql.INSERT_PLAIN[table], row)
                except SAIntegrityError:
                    pass
