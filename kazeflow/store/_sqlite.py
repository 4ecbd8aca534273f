"""The embedded default: the metadata in a SQLite file through the stdlib ``sqlite3``.

Every SQLite connection kazeflow makes, here or through SQLAlchemy (``_sqlalchemy``
calls :func:`configure` on each), is set up the same way: WAL, a busy timeout,
``synchronous=NORMAL`` (consistent after any crash in WAL mode), ``foreign_keys=ON`` and
no implicit transactions: writers begin with ``BEGIN IMMEDIATE`` and reads run alone.

Connections are pooled: a thread takes one for a statement or a transaction and gives
it back, so threads never share a connection at the same time (as SQLAlchemy's pool
does). A database not at the schema head is handed to Alembic (``_migrate``, through
SQLAlchemy) once; this module never changes a schema itself.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kazeflow.store._revision import HEAD, SELECT_REVISION, check_known
from kazeflow.store._sql import INSERT_NEW

BUSY_TIMEOUT_S = 60.0


def configure(connection: Any) -> None:
    """Set up a new DB-API ``sqlite3`` connection (see the module)."""
    connection.isolation_level = None  # the driver's own BEGIN handling is off: ours
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Turn on WAL (persistent in the file), waiting while another opener converts it.

    SQLite answers ``PRAGMA journal_mode = WAL`` with "database is locked" at once,
    ignoring the busy timeout, while another connection converts a new file.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteDatabase:
    """The SQLite file ``path`` (of the embedded URL ``url``) through stdlib ``sqlite3``."""

    dialect = "sqlite"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error, json.JSONDecodeError)

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self.shown = url  # a file URL has no password to hide
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._generation = 0  # close() starts a new one: older connections are closed

    def _take(self) -> tuple[sqlite3.Connection, int]:
        with self._pool_lock:
            if self._idle:
                return self._idle.pop(), self._generation
            generation = self._generation
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S,
                                     check_same_thread=False, isolation_level=None)
        try:
            configure(connection)
        except BaseException:
            connection.close()
            raise
        return connection, generation

    def _give_back(self, connection: sqlite3.Connection, generation: int) -> None:
        with self._pool_lock:
            if generation == self._generation:
                self._idle.append(connection)
                return
        connection.close()

    def ensure_schema(self, before_create: Callable[[], None] | None) -> None:
        """Return at once when the schema is at the head; else refuse an unknown
        revision, or let Alembic create or upgrade the schema (imported only then)."""
        revision = self._revision()
        if revision == HEAD:
            return
        check_known(revision, self.shown)
        from kazeflow.store._sqlalchemy import upgrade

        upgrade(self.url, before_create)

    def _revision(self) -> str | None:
        """The revision; None when there is none yet or it cannot be read now (the
        upgrade path re-reads it carefully under its locks and raises real errors)."""
        connection, generation = self._take()
        try:
            row = connection.execute(SELECT_REVISION).fetchone()
        except sqlite3.OperationalError:  # no alembic_version table yet, or busy
            return None
        finally:
            self._give_back(connection, generation)
        return row[0] if row else None

    def read(self, sql: str, params: Mapping[str, Any] | None = None
             ) -> list[tuple[Any, ...]]:
        connection, generation = self._take()
        try:
            return connection.execute(sql, params or {}).fetchall()
        finally:
            self._give_back(connection, generation)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        connection, generation = self._take()
        reusable = True
        try:
            connection.execute("BEGIN IMMEDIATE")  # writers lock the file up front
            yield _Transaction(connection)
            connection.commit()
        finally:
            if connection.in_transaction:
                try:
                    connection.rollback()
                except sqlite3.Error:  # the connection is unusable: drop it
                    reusable = False
            if reusable:
                self._give_back(connection, generation)
            else:
                connection.close()

    def close(self) -> None:
        """Close every idle connection; those in use close when given back."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for connection in idle:
            connection.close()


class _Transaction:
    """Statements on the connection of one write transaction."""

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._connection.execute(sql, params or {})

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._connection.executemany(sql, rows)

    def insert_new(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._connection.executemany(INSERT_NEW[table], rows)
