"""The bad-input catalogue: each gets its exact error class, a helpful message, and
leaves the store as it was."""

import hashlib
import sqlite3
import threading

import pytest

from kazeflow import (
    Config,
    ConfigError,
    CycleError,
    DefinitionError,
    DuplicateAssetError,
    Flow,
    FlowRunError,
    RecursiveRunError,
    SchemaVersionError,
    StoreError,
    UnknownAssetError,
    UnpicklableResultError,
    asset,
)


class Strict(Config):
    rate: float
    label: str = "x"
    extra: dict = {}


def snapshot(store):
    """Object files by content, and every metadata row (None before the store exists)."""
    db = store.root / "kazeflow.db"
    if not db.exists():
        return None
    files = {p.relative_to(store.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in (store.root / "objects").rglob("*") if p.is_file()}
    with sqlite3.connect(db) as conn:
        rows = {t: conn.execute(f"SELECT * FROM {t}").fetchall()  # noqa: S608
                for t in ("runs", "materializations", "objects", "code_sources")}
    return files, rows


@pytest.fixture
def seeded(store):
    """A store holding one successful run, to show bad input does not touch it."""
    @asset
    def seed():
        return 1

    Flow(["seed"], store=store).run()
    return store


def base_assets():
    @asset(config_schema=Strict)
    def rated(config):
        return config.rate

    @asset
    def plain():
        return 2


@pytest.mark.parametrize("config, error, message", [
    ({"ratd": {"rate": 1.0}}, ConfigError, "'ratd', which is not an asset.*did you mean"),
    ({"rated": {"rate": 1.0}, "plain": {"a": 1}}, ConfigError,
     "'plain', which declares no config_schema"),
    ({"rated": {"rate": "fast"}}, ConfigError, "field 'rate' must be float, got 'fast'"),
    ({"rated": {}}, ConfigError, "missing required field 'rate'"),
    ({"rated": {"rate": 1.0, "colour": "red"}}, ConfigError, "unknown key 'colour'"),
    ({"rated": {"rate": 1.0, "extra": {"at": object()}}}, ConfigError,
     "'extra' = .* is not JSON-able"),
])
def test_bad_config_is_refused_before_anything_runs(seeded, config, error, message):
    base_assets()
    before = snapshot(seeded)
    with pytest.raises(error, match=message):
        Flow(["rated", "plain"], store=seeded).run(config=config)
    assert snapshot(seeded) == before


def test_cycle_unknown_and_bad_names_are_refused_without_touching_the_store(seeded):
    before = snapshot(seeded)

    @asset
    def ping(pong):
        return 1

    @asset
    def pong(ping):
        return 1

    with pytest.raises(CycleError, match="cycle: (ping -> pong -> ping|pong -> ping -> pong)"):
        Flow(["ping"], store=seeded).run()

    @asset
    def needs(sead):
        return sead

    with pytest.raises(UnknownAssetError, match="unknown asset 'sead'; did you mean 'seed'"):
        Flow(["needs"], store=seeded).run()

    with pytest.raises(DuplicateAssetError, match="'ping' is defined twice"):
        @asset(name="ping")
        def another():
            return 1

    with pytest.raises(DefinitionError, match="'raw-data'.*valid Python identifier"):
        @asset(name="raw-data")
        def dashed():
            return 1

    assert snapshot(seeded) == before


@pytest.mark.parametrize("make, type_name", [
    (lambda: {"lock": threading.Lock()}, "_thread.lock"),
    (lambda: (x for x in range(3)), "generator"),
])
def test_unstorable_results_name_asset_and_type_and_store_no_object(seeded, make, type_name):
    @asset
    def result_of_asset():
        return make()

    files_before = snapshot(seeded)[0]
    with pytest.raises(FlowRunError, match="asset 'result_of_asset'") as info:
        Flow(["result_of_asset"], store=seeded).run()
    error = info.value.errors["result_of_asset"]
    assert isinstance(error, UnpicklableResultError) and error.type_name == type_name
    assert snapshot(seeded)[0] == files_before
    assert [m.status for m in Flow(["result_of_asset"], store=seeded).history()] == ["failed"]


def test_open_file_result_is_refused(seeded, tmp_path):
    handle = open(tmp_path / "f.txt", "w")

    @asset
    def opened():
        return handle

    try:
        with pytest.raises(FlowRunError, match="not an open file") as info:
            Flow(["opened"], store=seeded).run()
    finally:
        handle.close()
    assert isinstance(info.value.errors["opened"], UnpicklableResultError)


def test_recursive_run_is_refused(seeded):
    @asset
    def inner():
        return 1

    @asset
    def outer():
        return Flow(["inner"], store=seeded).run()["inner"]

    with pytest.raises(FlowRunError) as info:
        Flow(["outer"], store=seeded).run()
    assert isinstance(info.value.errors["outer"], RecursiveRunError)
    assert "declare what it needs as upstream assets" in str(info.value.errors["outer"])
    assert Flow(["inner"], store=seeded).history() == []


def test_store_path_that_is_a_file(tmp_path):
    path = tmp_path / "store"
    path.write_bytes(b"data")

    @asset
    def thing():
        return 1

    with pytest.raises(StoreError, match="is a file, not a folder") as info:
        Flow(["thing"], store=path).run()
    assert info.value.path == path and path.read_bytes() == b"data"


def test_newer_schema_is_refused(seeded):
    with sqlite3.connect(seeded.root / "kazeflow.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    seeded.close()
    before = snapshot(seeded)
    with pytest.raises(SchemaVersionError, match="revision '9999'.*upgrade kazeflow"):
        Flow(["seed"], store=seeded).run()
    assert snapshot(seeded) == before


def test_corrupt_database_file_is_refused(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    garbage = b"this is not a database" * 100
    (root / "kazeflow.db").write_bytes(garbage)

    @asset
    def thing():
        return 1

    with pytest.raises(StoreError, match="kazeflow.db.*move it aside"):
        Flow(["thing"], store=root).run()
    assert (root / "kazeflow.db").read_bytes() == garbage
