"""The two ways to a metadata database: the embedded default through the stdlib
``sqlite3`` (no SQLAlchemy, no Alembic when the schema is current) and every other URL
through SQLAlchemy; the same guarantees either way, and Alembic alone changes a schema."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from _sqlwatch import watch_sql

from kazeflow import Flow, SchemaVersionError, StoreError, asset
from kazeflow.store import Store, _migrate, _revision, _sql
from kazeflow.store._database import embedded_path
from kazeflow.store._sqlalchemy import SqlAlchemyDatabase
from kazeflow.store._sqlite import SqliteDatabase

PATHS = ["stdlib", "sqlalchemy"]


def _url(path: str, db: Path) -> str | None:
    """The metadata URL that takes ``path`` to ``db`` (None: the store's own file)."""
    return None if path == "stdlib" else f"sqlite+pysqlite:///{db}"


@pytest.fixture(params=PATHS)
def sqlite_store(request, tmp_path):
    """A store on SQLite through each adapter."""
    with Store(tmp_path / "store", metadata=_url(request.param, tmp_path / "sa.db")) as s:
        yield s


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("KAZEFLOW_HOME", "KAZEFLOW_METADATA_URL", "KAZEFLOW_OBJECTS_URL")}


# ---------------------------------------------------------------- which path

def test_the_head_is_known_without_alembic_and_is_alembics():
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(_migrate.SCRIPT_LOCATION)
    assert scripts.get_current_head() == _revision.HEAD == _migrate.HEAD
    assert _revision.REVISIONS == _migrate.REVISIONS


def test_the_sql_names_the_columns_of_the_models():
    from kazeflow.store import _models

    def names(table):
        return tuple(column.name for column in table.columns)

    assert _sql.RECORD_COLUMNS == names(_models.materializations)
    assert _sql.RUN_COLUMNS == names(_models.runs)
    assert _sql.OBJECT_COLUMNS == names(_models.objects)
    assert _sql.CODE_COLUMNS == names(_models.code_sources)
    for table, key in _sql.KEY_OF.items():
        assert [c.name for c in _models.metadata.tables[table].primary_key] == [key]


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:////data/kazeflow.db", "/data/kazeflow.db"),
    ("sqlite:///relative.db", "relative.db"),
    ("sqlite:////data/my%20store.db", "/data/my store.db"),  # as SQLAlchemy reads it
    ("sqlite+pysqlite:////data/kazeflow.db", None),
    ("sqlite:////data/kazeflow.db?timeout=5", None),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("postgresql+psycopg://u@h/db", None),
])
def test_only_a_plain_sqlite_file_url_is_embedded(url, path):
    assert embedded_path(url) == path


def test_the_default_store_goes_through_sqlite3_and_a_driver_url_through_sqlalchemy(
        tmp_path):
    with Store(tmp_path / "a") as default:
        assert isinstance(default.metadata.database, SqliteDatabase)
    with Store(tmp_path / "b", metadata=f"sqlite:///{tmp_path / 'b.db'}") as plain:
        assert isinstance(plain.metadata.database, SqliteDatabase)
    with Store(tmp_path / "c", metadata=f"sqlite+pysqlite:///{tmp_path / 'c.db'}") as sa:
        assert isinstance(sa.metadata.database, SqlAlchemyDatabase)
        assert sa.metadata.dialect == "sqlite"


# ---------------------------------------------------------------- same guarantees

def test_every_connection_is_set_up_alike(sqlite_store):
    def pragma(name: str) -> object:
        return sqlite_store.metadata.database.read(f"PRAGMA {name}")[0][0]

    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 1  # NORMAL
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") == 60_000


def _value_flow(store: Store) -> Flow:
    @asset
    def value():
        return [1, 2, 3]

    @asset
    def total(value):
        return sum(value)

    return Flow(["total"], store=store)


def test_writers_begin_immediate_and_commit(sqlite_store):
    flow = _value_flow(sqlite_store)
    flow.run()
    statements: list[str] = []

    def seen(key, sql, params, many):
        statements.append(sql.strip().split()[0].upper() + (
            " IMMEDIATE" if "IMMEDIATE" in sql.upper() else ""))

    with watch_sql(sqlite_store, seen, lambda key: statements.append("COMMIT")):
        flow.run(force=True)
    writes = [s for s in statements if s in ("INSERT", "UPDATE", "DELETE")]
    assert writes and "BEGIN" not in statements
    for i, statement in enumerate(statements):
        if statement in ("INSERT", "UPDATE"):
            opened = max(j for j in range(i) if statements[j] == "BEGIN IMMEDIATE")
            assert "COMMIT" not in statements[opened:i]


def test_threads_share_a_store_on_either_path(sqlite_store):
    meta, errors = sqlite_store.metadata, []

    def work(n: int) -> None:
        try:
            for i in range(20):
                run_id = f"{n:02d}{i:02d}" + "0" * 28
                meta.start_run(run_id, selection=["x"], pid=os.getpid(), hostname="h")
                meta.record([_row(run_id, f"a{n}", i)], [(f"{n:02d}{i:02d}" * 16, 1)])
                assert meta.latest([f"a{n}"])[f"a{n}"].size == i
        except Exception as exc:  # reported below, with the thread that failed
            errors.append(f"{n}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(sqlite_store.history(None)) == 8 * 20


def _row(run_id: str, asset_name: str, size: int) -> dict[str, object]:
    return {"run_id": run_id, "asset_name": asset_name, "cache_key": "k" * 64,
            "code_hash": "c" * 64, "config_hash": "h" * 64, "config": {},
            "upstream_versions": {}, "data_version": f"{size:064d}", "size": size,
            "started_at": 1.0, "ended_at": 2.0, "duration": 1.0, "status": "materialized",
            "forced": False, "error": None, "user_metadata": {}, "libraries": {}}


def test_a_damaged_row_and_a_bad_insert_give_the_same_errors(sqlite_store):
    flow = _value_flow(sqlite_store)
    flow.run()
    with sqlite_store.metadata.database.transaction() as tx:
        tx.execute("UPDATE materializations SET config = '{not json'")
    with pytest.raises(StoreError, match=r"cannot read the metadata database sqlite(\+pysqlite)?"
                       r":///.*the database is damaged"):
        flow.history()
    with pytest.raises(StoreError, match="cannot write the metadata database .*FOREIGN KEY"):
        sqlite_store.metadata.record([_row("no-such-run", "value", 1)])


def test_an_unknown_revision_is_refused_on_either_path(tmp_path):
    db = tmp_path / "store" / "kazeflow.db"
    for url in (None, f"sqlite+pysqlite:///{db}"):
        with Store(tmp_path / "store", metadata=url) as store:
            store.metadata  # noqa: B018 - creates the schema
            with store.metadata.database.transaction() as tx:
                tx.execute("UPDATE alembic_version SET version_num = '9999'")
        with pytest.raises(SchemaVersionError) as raised:
            Store(tmp_path / "store", metadata=url).metadata  # noqa: B018
        message = str(raised.value)
        assert str(db) in message and "'9999'" in message
        assert repr(_revision.HEAD) in message and "upgrade kazeflow" in message
        _set_revision(db, _revision.HEAD)


def _set_revision(db: Path, revision: str) -> None:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.close()


# ---------------------------------------------------------------- what a process imports

_PIPELINE = textwrap.dedent("""
    import json, sys
    from kazeflow import Flow, asset

    @asset
    def raw():
        return [1, 2, 3]

    @asset
    def total(raw):
        return sum(raw)

    flow = Flow(["total"], store=sys.argv[1])
    if sys.argv[2] == "run":
        outcome = list(flow.run().materialized)
    elif sys.argv[2] == "status":
        outcome = {name: s.state for name, s in flow.status().items()}
    else:
        flow.store.metadata
        outcome = None
    print(json.dumps({"outcome": outcome, "loaded": sorted(
        m for m in HEAVY if m in sys.modules)}))
""")
#: What a process that only reads a current store needs none of: the schema tooling,
#: and what writing and reading objects (pickle, syncfs through ctypes) or messages
#: (difflib) need.
HEAVY = ("sqlalchemy", "alembic", "cloudpickle", "pickle", "ctypes", "socket", "difflib")


def _in_a_new_process(tmp_path: Path, root: Path, what: str) -> dict[str, object]:
    import json

    script = tmp_path / "pipeline.py"
    script.write_text(f"HEAVY = {HEAVY!r}\n{_PIPELINE}")
    done = subprocess.run([sys.executable, str(script), str(root), what], env=_clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_warm_run_and_status_on_a_current_store_load_no_sqlalchemy_nor_pickle(tmp_path):
    root = tmp_path / "store"
    first = _in_a_new_process(tmp_path, root, "run")
    assert first["outcome"] == ["raw", "total"]
    assert {"alembic", "sqlalchemy", "cloudpickle", "pickle"} <= set(first["loaded"])
    assert _in_a_new_process(tmp_path, root, "run") == {"outcome": [], "loaded": []}
    assert _in_a_new_process(tmp_path, root, "status") == {
        "outcome": {"raw": "fresh", "total": "fresh"}, "loaded": []}


def test_an_older_schema_is_upgraded_through_alembic_then_opens_without_it(tmp_path):
    from alembic import command

    from kazeflow.store._sqlalchemy import create_metadata_engine

    root = tmp_path / "store"
    root.mkdir()
    db = root / "kazeflow.db"
    engine = create_metadata_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            command.upgrade(_migrate.alembic_config(conn), _revision.REVISIONS[-2])
    finally:
        engine.dispose()
    assert {"alembic", "sqlalchemy"} <= set(_in_a_new_process(tmp_path, root, "open")["loaded"])
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (_revision.HEAD,)]
    conn.close()
    assert _in_a_new_process(tmp_path, root, "open")["loaded"] == []
