"""Watch the SQL a store's metadata database runs, black-box, on either adapter.

Through SQLAlchemy: the engine's ``before_cursor_execute``, ``commit`` and ``rollback``
events. Through the stdlib ``sqlite3`` (the embedded default): ``sqlite3.connect`` hands
out connections whose statements (theirs and their cursors') are seen, and a ``COMMIT``
(statement or ``commit()``) is seen before it runs. Callbacks get a key per DB-API
connection, so a transaction's statements can be told from another's.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kazeflow.store import Store

OnStatement = Callable[[int, str, Any, bool], None]  # key, sql, parameters, executemany
OnEnd = Callable[[int], None]  # key

_COMMIT = re.compile(r"\s*(COMMIT|END)\b", re.IGNORECASE)
_ROLLBACK = re.compile(r"\s*ROLLBACK\s*$", re.IGNORECASE)


@contextlib.contextmanager
def watch_sql(store: Store, on_statement: OnStatement, on_commit: OnEnd | None = None,
              on_rollback: OnEnd | None = None) -> Iterator[None]:
    """Call the callbacks for what ``store``'s metadata database runs in the block."""
    ignore: OnEnd = lambda key: None  # noqa: E731
    commit, rollback = on_commit or ignore, on_rollback or ignore
    engine = getattr(store.metadata.database, "engine", None)
    if engine is not None:
        with _engine_events(engine, on_statement, commit, rollback):
            yield
        return
    with _sqlite_connections(on_statement, commit, rollback):
        store.metadata.close()  # pooled connections were made before: new ones, watched
        try:
            yield
        finally:
            store.metadata.close()


@contextlib.contextmanager
def _engine_events(engine: Any, on_statement: OnStatement, on_commit: OnEnd,
                   on_rollback: OnEnd) -> Iterator[None]:
    from sqlalchemy import event

    def key(conn: Any) -> int:
        return id(conn.connection.dbapi_connection)

    def before_cursor_execute(conn, cursor, statement, parameters, context, many):
        on_statement(key(conn), statement, parameters, many)

    listeners = [("before_cursor_execute", before_cursor_execute),
                 ("commit", lambda conn: on_commit(key(conn))),
                 ("rollback", lambda conn: on_rollback(key(conn)))]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


@contextlib.contextmanager
def _sqlite_connections(on_statement: OnStatement, on_commit: OnEnd,
                        on_rollback: OnEnd) -> Iterator[None]:
    def seen(conn: sqlite3.Connection, sql: str, params: Any, many: bool) -> None:
        if _COMMIT.match(sql):
            on_commit(id(conn))
        elif _ROLLBACK.match(sql):
            on_rollback(id(conn))
        else:
            on_statement(id(conn), sql, params, many)

    class Cursor(sqlite3.Cursor):
        def execute(self, sql: str, params: Any = (), /) -> Any:  # type: ignore[override]
            seen(self.connection, sql, params, False)
            return super().execute(sql, params)

        def executemany(self, sql: str, rows: Any, /) -> Any:  # type: ignore[override]
            rows = list(rows)
            seen(self.connection, sql, rows, True)
            return super().executemany(sql, rows)

    class Connection(sqlite3.Connection):
        def cursor(self, factory: Any = Cursor) -> Any:  # type: ignore[override]
            return super().cursor(factory)

        def execute(self, sql: str, params: Any = (), /) -> Any:  # type: ignore[override]
            seen(self, sql, params, False)
            return super().execute(sql, params)

        def executemany(self, sql: str, rows: Any, /) -> Any:  # type: ignore[override]
            rows = list(rows)
            seen(self, sql, rows, True)
            return super().executemany(sql, rows)

        def commit(self) -> None:
            if self.in_transaction:
                on_commit(id(self))
            super().commit()

        def rollback(self) -> None:
            if self.in_transaction:
                on_rollback(id(self))
            super().rollback()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", functools.partial(sqlite3.connect,
                                                            factory=Connection))
        yield
