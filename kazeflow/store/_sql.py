"""Every SQL statement of the metadata database, once, as plain text.

Both database adapters run these (``_sqlite``: the stdlib driver on the embedded
default; ``_sqlalchemy``: every other database), so the text keeps to what SQLite and
PostgreSQL share: named ``:parameters``, ``LIMIT``, ``ON CONFLICT DO NOTHING`` (other
databases get a look-first insert instead, see ``_sqlalchemy``) and, for lists of asset
names, one JSON parameter read by the database's JSON table function. Nothing here
imports SQLAlchemy: the column lists are spelt out, and a test keeps them equal to the
tables of ``_models`` (the schema as the Alembic revisions make it).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from kazeflow.results import RecordKey

#: The columns of each table, in table order (a test keeps them equal to ``_models``).
#: Those of ``materializations`` are also the fields of a record, in order.
RECORD_COLUMNS = (
    "id", "run_id", "asset_name", "cache_key", "code_hash", "config_hash", "config",
    "upstream_versions", "data_version", "size", "started_at", "ended_at", "duration",
    "status", "forced", "error", "user_metadata", "libraries")
RUN_COLUMNS = (
    "run_id", "status", "started_at", "ended_at", "pid", "hostname", "selection",
    "n_materialized", "n_reused", "n_failed", "error", "process_start", "folder_id")
OBJECT_COLUMNS = ("data_version", "size", "created_at")
CODE_COLUMNS = ("code_hash", "components", "created_at")
#: The primary key of the tables that rows are added to only when missing.
KEY_OF = {"objects": "data_version", "code_sources": "code_hash"}

_CHUNK = 500  # ids per IN (...) clause


def _columns(names: Sequence[str], table: str = "m") -> str:
    return ", ".join(f"{table}.{name}" for name in names)


def _insert(table: str, names: Sequence[str], skip_existing: bool = False) -> str:
    """``INSERT`` of ``names`` into ``table``; ``skip_existing`` skips rows whose primary
    key is there already."""
    return (f"INSERT INTO {table} ({', '.join(names)}) VALUES "
            f"({', '.join(f':{name}' for name in names)})"
            + (" ON CONFLICT DO NOTHING" if skip_existing else ""))


# ---------------------------------------------------------------- writes
INSERT_RECORD = _insert("materializations", RECORD_COLUMNS[1:])  # id: autoincrement
INSERT_NEW = {"objects": _insert("objects", OBJECT_COLUMNS, skip_existing=True),
              "code_sources": _insert("code_sources", CODE_COLUMNS, skip_existing=True)}
#: Databases that read ``ON CONFLICT DO NOTHING``.
ON_CONFLICT_DIALECTS = ("sqlite", "postgresql")
#: Where the database has no ``ON CONFLICT``: look for the key, then insert.
INSERT_PLAIN = {"objects": _insert("objects", OBJECT_COLUMNS),
                "code_sources": _insert("code_sources", CODE_COLUMNS)}
SELECT_KEY = {table: f"SELECT 1 FROM {table} WHERE {key} = :{key}"
              for table, key in KEY_OF.items()}

START_RUN = (
    "INSERT INTO runs (run_id, status, started_at, pid, hostname, selection,"
    " process_start, folder_id) VALUES (:run_id, 'running', :started_at, :pid, :hostname,"
    " :selection, :process_start, :folder_id)")
FINISH_RUN = (
    "UPDATE runs SET status = :status, ended_at = :ended_at,"
    " n_materialized = :n_materialized, n_reused = :n_reused, n_failed = :n_failed,"
    " error = :error WHERE run_id = :run_id")

#: Object rows that no record refers to any more (after records were deleted).
DELETE_UNREFERENCED_OBJECTS = (
    "DELETE FROM objects WHERE data_version NOT IN (SELECT m.data_version"
    " FROM materializations AS m WHERE m.data_version IS NOT NULL)")


def delete_records(ids: Sequence[int]) -> list[tuple[str, dict[str, Any]]]:
    """``DELETE`` statements (with their parameters) of the records ``ids``, a chunk
    each."""
    statements = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        statements.append((f"DELETE FROM materializations WHERE id IN ({_placeholders(chunk)})",
                           _numbered(chunk)))
    return statements


# ---------------------------------------------------------------- reads
SELECT_CODE = "SELECT components FROM code_sources WHERE code_hash = :code_hash"
SELECT_BY_ID = f"SELECT {_columns(RECORD_COLUMNS)} FROM materializations AS m WHERE m.id = :id"
SELECT_BY_CACHE_KEY = (
    f"SELECT {_columns(RECORD_COLUMNS)} FROM materializations AS m WHERE m.cache_key = :key"
    " AND m.status = 'materialized' ORDER BY m.id DESC")

#: A table of the strings in the JSON-array parameter ``names`` (column ``value``),
#: where the database has one.
JSON_NAMES = {"sqlite": "json_each(:names)",
              "postgresql": "json_array_elements_text(CAST(:names AS JSON))"}

#: Columns of :func:`newest` queries.
RECORD = _columns(RECORD_COLUMNS)
KEY = _columns(RecordKey._fields)  # what reusing a record needs
ATTEMPT = "m.id, m.status"
SUCCESSFUL = " AND n.status = 'materialized'"


def newest(dialect: str, columns: str, where: str = SUCCESSFUL) -> str:
    """The asset name and ``columns`` (of ``materializations AS m``) of the newest record
    matching ``where`` (of ``materializations AS n``) of each asset in the JSON
    parameter ``names``; where the database has no JSON table function, of every asset
    (the caller keeps those it asked for)."""
    names = JSON_NAMES.get(dialect)
    if names is not None:
        return (f"SELECT m.asset_name, {columns} FROM {names} AS j"
                " JOIN materializations AS m ON m.id = (SELECT max(n.id)"
                f" FROM materializations AS n WHERE n.asset_name = j.value{where})")
    return (f"SELECT m.asset_name, {columns} FROM materializations AS m WHERE m.id IN"
            " (SELECT max(n.id) FROM materializations AS n WHERE 1 = 1"
            f"{where} GROUP BY n.asset_name)")


def select_runs(limit: int | None) -> str:
    return (f"SELECT {_columns(RUN_COLUMNS, 'r')} FROM runs AS r"
            f" ORDER BY r.started_at DESC, r.run_id{_limit(limit)}")


def history(dialect: str, names: Collection[str] | None, limit: int | None
            ) -> tuple[str, dict[str, Any]]:
    """Records of ``names`` (None: every asset), newest first: the query and its
    parameters (but ``:limit``)."""
    where, params = "", dict[str, Any]()
    if names is not None:
        where, params = _among("m.asset_name", dialect, names)
        where = f" WHERE {where}"
    return (f"SELECT {RECORD} FROM materializations AS m{where}"
            f" ORDER BY m.id DESC{_limit(limit)}", params)


def find_version(by_id: bool, by_prefix: bool) -> str:
    """Successful records of ``:asset_name`` (with id ``:id``, or whose data version
    starts with ``:prefix``, see :func:`like_prefix`), newest first, at most 50."""
    where = (" AND m.id = :id" if by_id else
             " AND m.data_version LIKE :prefix ESCAPE '/'" if by_prefix else "")
    return (f"SELECT {RECORD} FROM materializations AS m WHERE m.asset_name = :asset_name"
            f" AND m.status = 'materialized'{where} ORDER BY m.id DESC LIMIT 50")


def like_prefix(prefix: str) -> str:
    """The ``LIKE`` pattern (escaped with ``/``) of strings starting with ``prefix``."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


#: Records of this folder's runs (``:folder_id``); runs recorded before folders had
#: ids count as every folder's.
_OF_THIS_FOLDER = (" AND m.run_id IN (SELECT r.run_id FROM runs AS r"
                   " WHERE r.folder_id = :folder_id OR r.folder_id IS NULL)")


def referenced(every_folder: bool) -> str:
    """Id, data version and asset of successful records (of this folder's runs, unless
    ``every_folder``)."""
    return ("SELECT m.id, m.data_version, m.asset_name FROM materializations AS m"
            " WHERE m.status = 'materialized'" + ("" if every_folder else _OF_THIS_FOLDER))


#: Records of this folder's runs, by asset and newest first, as gc weighs them.
SELECT_GC_CANDIDATES = (
    "SELECT m.id, m.asset_name, m.status, m.ended_at FROM materializations AS m"
    f" WHERE 1 = 1{_OF_THIS_FOLDER} ORDER BY m.asset_name, m.id DESC")


def _limit(limit: int | None) -> str:
    return "" if limit is None else " LIMIT :limit"


def _among(column: str, dialect: str, names: Collection[str]) -> tuple[str, dict[str, Any]]:
    """``column`` is one of ``names``: a JSON parameter where the database reads one,
    else a parameter each."""
    if (table := JSON_NAMES.get(dialect)) is not None:
        return f"{column} IN (SELECT j.value FROM {table} AS j)", {"names": json.dumps(
            list(names))}
    if not names:
        return "1 = 0", {}
    return f"{column} IN ({_placeholders(names)})", _numbered(names)


def _placeholders(values: Collection[Any]) -> str:
    return ", ".join(f":p{i}" for i in range(len(values)))


def _numbered(values: Collection[Any]) -> dict[str, Any]:
    return {f"p{i}": value for i, value in enumerate(values)}
