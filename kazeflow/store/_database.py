"""The metadata database behind one small interface, and which adapter carries it.

Two adapters run the statements of ``_sql``:

- ``_sqlite.SqliteDatabase``, the stdlib ``sqlite3`` driver, for the **embedded
  default**: no metadata URL (the store's own ``kazeflow.db``), or a plain
  ``sqlite:///<path>`` URL (a file path, no ``+driver``, no query string, not
  ``:memory:``). Opening such a store whose schema is at the head imports neither
  SQLAlchemy nor Alembic;
- ``_sqlalchemy.SqlAlchemyDatabase`` for **every other URL**: PostgreSQL and any
  SQLAlchemy database, and SQLite when the URL names its driver
  (``sqlite+pysqlite:///<path>``), has a query string or is in memory.

Both give the same guarantees on SQLite (WAL, the busy timeout, ``synchronous=NORMAL``,
``foreign_keys=ON``, ``BEGIN IMMEDIATE`` for writers, a connection per thread at a time)
and the same errors. Only Alembic creates or changes a schema: a database that is not at
the head goes through ``_migrate`` (SQLAlchemy and Alembic) whichever adapter opened it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import unquote

_EMBEDDED = "sqlite:///"


class Transaction(Protocol):
    """Statements of one write transaction (begun ``IMMEDIATE`` on SQLite)."""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def insert_new(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` into ``table`` (a key of ``_sql.KEY_OF``), skipping those
        whose primary key is there already."""


class Database(Protocol):
    """A metadata database as ``MetadataStore`` uses it."""

    #: The SQL dialect: ``sqlite``, ``postgresql``, ...
    dialect: str
    #: The database as shown to users (its URL, the password hidden).
    shown: str
    #: What the driver (and the adapter) raise for a database that fails.
    errors: tuple[type[BaseException], ...]

    def ensure_schema(self, before_create: Callable[[], None] | None) -> None:
        """Bring the schema to the head (through Alembic unless it is there)."""

    def read(self, sql: str, params: Mapping[str, Any] | None = None
             ) -> list[tuple[Any, ...]]: ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    def close(self) -> None: ...


def embedded_path(url: str) -> str | None:
    """The file of an embedded SQLite URL (see the module), else None.

    Example::

        embedded_path("sqlite:////data/kazeflow.db")          # "/data/kazeflow.db"
        embedded_path("sqlite+pysqlite:////data/kazeflow.db")  # None: SQLAlchemy
    """
    if not url.startswith(_EMBEDDED) or "?" in url:
        return None
    path = unquote(url[len(_EMBEDDED):])  # as SQLAlchemy reads it
    return path if path and path != ":memory:" and not path.startswith("file:") else None


def open_database(url: str) -> Database:
    """The adapter for ``url`` (see the module); nothing is read yet.

    Raises:
        StoreError: SQLAlchemy cannot use ``url``.
    """
    path = embedded_path(url)
    if path is not None:
        from kazeflow.store._sqlite import SqliteDatabase

        return SqliteDatabase(url, path)
    from kazeflow.store._sqlalchemy import SqlAlchemyDatabase

    return SqlAlchemyDatabase(url)
