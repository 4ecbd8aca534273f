"""The metadata schema comes only from the Alembic revisions, applied safely on open."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import kazeflow.migrations
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from kazeflow.errors import SchemaVersionError, StoreError
from kazeflow.store import Store, _migrate
from kazeflow.store._models import metadata
from kazeflow.store._sqlalchemy import create_metadata_engine

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = Path(kazeflow.migrations.__file__).parent
N_OPENERS = 8
TABLES = {"alembic_version", "runs", "materializations", "objects", "code_sources",
          "run_pins"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """An empty database: the default SQLite file of the store at tmp_path/store, or a
    fresh PostgreSQL schema."""
    if request.param == "sqlite":
        (tmp_path / "store").mkdir()
        return f"sqlite:///{tmp_path / 'store' / 'kazeflow.db'}"
    return request.getfixturevalue("postgres_url")


def _revision_of(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def _tables_of(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("KAZEFLOW_HOME", "KAZEFLOW_METADATA_URL", "KAZEFLOW_OBJECTS_URL")}


# ---------------------------------------------------------------- the revisions themselves

def test_revisions_constant_is_the_chain_in_migrations_versions():
    scripts = ScriptDirectory(_migrate.SCRIPT_LOCATION)
    chain = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(chain) == _migrate.REVISIONS
    assert scripts.get_heads() == [_migrate.HEAD]
    assert MIGRATIONS == REPO / "migrations"  # the editable install maps the top-level folder


def test_revision_files_are_numbered_in_order():
    scripts = ScriptDirectory(_migrate.SCRIPT_LOCATION)
    for number, revision in enumerate(_migrate.REVISIONS, start=1):
        script = scripts.get_revision(revision)
        assert revision == f"{number:04d}"
        assert re.fullmatch(rf"{revision}_[a-z0-9_]+\.py", Path(script.path).name)
    assert (MIGRATIONS / "versions" / "0001_initial.py").is_file()


def test_migrations_never_import_kazeflow():
    for path in MIGRATIONS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "kazeflow" for n in names), path


# ---------------------------------------------------------------- models agree (alembic check)

def test_models_and_revisions_agree(db_url):
    engine = create_metadata_engine(db_url)
    try:
        _migrate.ensure_schema(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": True})
            assert compare_metadata(context, metadata) == []
            # the same through env.py, as `alembic check` runs it
            cfg = _migrate.alembic_config(conn)
            cfg.attributes["target_metadata"] = metadata
            command.check(cfg)
    finally:
        engine.dispose()


def test_the_comparison_sees_a_model_change(tmp_path):
    engine = create_metadata_engine(f"sqlite:///{tmp_path / 'kazeflow.db'}")
    changed = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["runs"].append_column(sa.Column("label", sa.String(40)))
    try:
        _migrate.ensure_schema(engine)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), changed)
    finally:
        engine.dispose()
    assert [d[0] for d in diffs] == ["add_column"] and diffs[0][3].name == "label"


def test_stock_alembic_command_works_from_the_repository(tmp_path):
    import alembic

    if tuple(int(p) for p in alembic.__version__.split(".")[:2]) < (1, 16):
        pytest.skip("this alembic cannot read [tool.alembic] from pyproject.toml (needs 1.16)")
    url = f"sqlite:///{tmp_path / 'dev.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
                              cwd=REPO, env=_clean_env(), capture_output=True, text=True,
                              timeout=60)

    upgraded = run("upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert _revision_of(url) == [_migrate.HEAD]
    checked = run("-x", "metadata=kazeflow.store._models:metadata", "check")
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def _columns_of(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {column["name"] for column in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_metadata_engine(url)
    try:
        with engine.begin() as conn:
            (command.downgrade if down else command.upgrade)(
                _migrate.alembic_config(conn), revision)
    finally:
        engine.dispose()


def test_0002_upgrades_a_0001_database_with_runs_and_downgrades(db_url, tmp_path):
    _migrate_to(db_url, "0001")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO runs (run_id, status, started_at, pid, hostname)"
                             " VALUES ('old', 'succeeded', 1.0, 1, 'h')"))
    engine.dispose()
    assert "process_start" not in _columns_of(db_url, "runs")
    with Store(tmp_path / "store", metadata=db_url) as store:  # opening upgrades
        [old] = store.runs()
        assert (old.run_id, old.status) == ("old", "succeeded")
    assert _revision_of(db_url) == [_migrate.HEAD]
    assert {"process_start", "folder_id"} <= _columns_of(db_url, "runs")
    _migrate_to(db_url, "0001", down=True)
    assert _revision_of(db_url) == ["0001"]
    assert not {"process_start", "folder_id"} & _columns_of(db_url, "runs")


def test_0003_upgrades_a_0002_database_with_records_and_downgrades(db_url, tmp_path):
    _migrate_to(db_url, "0002")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO runs (run_id, status, started_at, pid, hostname)"
                             " VALUES ('old', 'succeeded', 1.0, 1, 'h')"))
        conn.execute(sa.text(
            "INSERT INTO materializations (run_id, asset_name, cache_key, code_hash,"
            " config_hash, config, upstream_versions, data_version, size, started_at,"
            " ended_at, duration, status, forced) VALUES ('old', 'clean', 'k', 'c', 'h',"
            " '{}', '{}', 'd', 1, 1.0, 2.0, 1.0, 'materialized', 0)"))
    engine.dispose()
    assert "libraries" not in _columns_of(db_url, "materializations")
    with Store(tmp_path / "store", metadata=db_url) as store:  # opening upgrades
        [old] = store.history("clean")
        assert (old.data_version, old.libraries) == ("d", {})
    assert _revision_of(db_url) == [_migrate.HEAD]
    assert "libraries" in _columns_of(db_url, "materializations")
    _migrate_to(db_url, "0002", down=True)
    assert _revision_of(db_url) == ["0002"]
    assert "libraries" not in _columns_of(db_url, "materializations")


def test_0004_upgrades_a_0003_database_with_records_and_downgrades(db_url, tmp_path):
    _migrate_to(db_url, "0003")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO runs (run_id, status, started_at, pid, hostname)"
                             " VALUES ('old', 'succeeded', 1.0, 1, 'h')"))
    engine.dispose()
    assert "run_pins" not in _tables_of(db_url)
    with Store(tmp_path / "store", metadata=db_url) as store:  # opening upgrades
        assert [run.run_id for run in store.runs()] == ["old"]
    assert _revision_of(db_url) == [_migrate.HEAD]
    assert _columns_of(db_url, "run_pins") == {"run_id", "data_version"}
    _migrate_to(db_url, "0003", down=True)
    assert _revision_of(db_url) == ["0003"] and "run_pins" not in _tables_of(db_url)


# ---------------------------------------------------------------- applied on open, fast path

def _open_store(root: Path, url: str | None = None) -> None:
    with Store(root, metadata=url) as store:
        _ = store.metadata  # opening the metadata migrates


def test_opening_a_store_creates_the_schema_at_head(tmp_path):
    _open_store(tmp_path / "store")
    url = f"sqlite:///{tmp_path / 'store' / 'kazeflow.db'}"
    assert _revision_of(url) == [_migrate.HEAD]
    assert _tables_of(url) == TABLES


_OPEN_AND_REPORT = textwrap.dedent("""
    import sys
    from kazeflow.store import Store
    with Store(sys.argv[1]) as store:
        store.metadata
    print("alembic imported:", "alembic" in sys.modules)
""")


def test_opening_an_up_to_date_store_does_not_import_alembic(tmp_path):
    def open_in_a_new_process() -> str:
        done = subprocess.run([sys.executable, "-c", _OPEN_AND_REPORT, str(tmp_path / "s")],
                              env=_clean_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert open_in_a_new_process() == "alembic imported: True"  # first open migrates
    assert open_in_a_new_process() == "alembic imported: False"


def test_fast_path_is_well_under_a_millisecond(tmp_path):
    engine = create_metadata_engine(f"sqlite:///{tmp_path / 'kazeflow.db'}")
    try:
        _migrate.ensure_schema(engine)
        timings = []
        for _ in range(200):
            start = time.perf_counter()
            _migrate.ensure_schema(engine)
            timings.append(time.perf_counter() - start)
    finally:
        engine.dispose()
    assert statistics.median(timings) < 1e-3


# ---------------------------------------------------------------- refusals

def _set_revision(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def _sqlite_snapshot(path: Path) -> tuple[str, list[str]]:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dump = list(conn.iterdump())
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest(), dump


def test_a_newer_database_is_refused_and_left_unchanged(db_url, tmp_path):
    _open_store(tmp_path / "store", db_url)
    _set_revision(db_url, "9999")
    db_file = tmp_path / "store" / "kazeflow.db"
    before = _sqlite_snapshot(db_file) if db_url.startswith("sqlite") else None
    with pytest.raises(SchemaVersionError) as raised:
        _open_store(tmp_path / "store", db_url)
    message = str(raised.value)
    database = str(db_file) if before else "127.0.0.1:5432/test"
    assert database in message and "'9999'" in message and repr(_migrate.HEAD) in message
    assert "upgrade kazeflow" in message
    assert _revision_of(db_url) == ["9999"] and _tables_of(db_url) == TABLES
    if before:
        assert _sqlite_snapshot(db_file) == before


def test_a_corrupt_sqlite_file_is_a_store_error_and_left_alone(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    garbage = os.urandom(64 * 1024)
    (root / "kazeflow.db").write_bytes(garbage)
    with pytest.raises(StoreError) as raised:
        _open_store(root)
    assert not isinstance(raised.value, SchemaVersionError)
    assert str(root / "kazeflow.db") in str(raised.value)
    assert "not a database" in str(raised.value)
    assert (root / "kazeflow.db").read_bytes() == garbage


# ---------------------------------------------------------------- concurrent first opens

_OPENER = textwrap.dedent("""
    import json, logging, os, sys, time
    from kazeflow.store import Store

    root, url, go = sys.argv[1], sys.argv[2] or None, sys.argv[3]
    upgrades = []
    handler = logging.Handler()
    handler.emit = upgrades.append
    log = logging.getLogger("kazeflow.store._migrate")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        with Store(root, metadata=url) as store:
            store.metadata
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"error": error, "upgrades": len(upgrades)}))
""")


def _assert_opened_once(errors: list[str | None], upgrades: int, url: str) -> None:
    assert errors == [None] * N_OPENERS
    assert upgrades == 1  # exactly one opener created the schema
    assert _revision_of(url) == [_migrate.HEAD] and _tables_of(url) == TABLES


@pytest.mark.slow
def test_concurrent_first_opens_from_processes(tmp_path):
    # SQLite only, to keep this file quick: on PostgreSQL the same advisory lock that
    # test_an_upgrade_waits_for_the_database_lock shows held serialises processes.
    script, go = tmp_path / "opener.py", tmp_path / "go"
    script.write_text(_OPENER)
    openers = [subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "store"), "", str(go)],
        env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(N_OPENERS)]
    try:
        assert [p.stdout.readline().strip() for p in openers] == ["ready"] * N_OPENERS
        go.touch()  # all are imported and waiting: release them at once
        outputs = [p.communicate(timeout=120) for p in openers]
    finally:
        for p in openers:
            p.kill()
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    _assert_opened_once([r["error"] for r in reports], sum(r["upgrades"] for r in reports),
                        f"sqlite:///{tmp_path / 'store' / 'kazeflow.db'}")


def test_concurrent_first_opens_from_threads(db_url, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=_migrate.logger.name)
    barrier = threading.Barrier(N_OPENERS)
    errors: list[str | None] = [None] * N_OPENERS

    def open_store(i: int) -> None:
        barrier.wait()
        try:
            _open_store(tmp_path / "store", db_url)  # a Store each, like separate flows
        except Exception as exc:
            errors[i] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=open_store, args=(i,)) for i in range(N_OPENERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    upgrades = sum(r.name == _migrate.logger.name for r in caplog.records)
    _assert_opened_once(errors, upgrades, db_url)


def _hold_database_lock(url: str) -> Callable[[], None]:
    """Take the lock an upgrader needs from outside kazeflow; returns a release function."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")

        def release_sqlite() -> None:
            conn.execute("COMMIT")
            conn.close()
        return release_sqlite
    engine = sa.create_engine(url)
    conn = engine.connect()
    conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _migrate._PG_LOCK_KEY})

    def release() -> None:
        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _migrate._PG_LOCK_KEY})
        conn.close()
        engine.dispose()
    return release


def test_an_upgrade_waits_for_the_database_lock(db_url):
    release = _hold_database_lock(db_url)
    engine = create_metadata_engine(db_url)
    upgrader = threading.Thread(target=_migrate.ensure_schema, args=(engine,))
    try:
        upgrader.start()
        upgrader.join(0.5)
        assert upgrader.is_alive() and "alembic_version" not in _tables_of(db_url)
    finally:
        release()
        upgrader.join(60)
        engine.dispose()
    assert not upgrader.is_alive() and _revision_of(db_url) == [_migrate.HEAD]
