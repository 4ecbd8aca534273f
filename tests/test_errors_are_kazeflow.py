"""Every error kazeflow gives is a KazeflowError that names what was wrong and the fix."""

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from kazeflow import Config, Flow, FlowRunError, KazeflowError, Store, StoreError, asset


@pytest.mark.parametrize("url", ["nonsense", "foo://x", "postgresql+nodriver://a@b/c"])
def test_a_bad_database_url_is_a_store_error(tmp_path, url):
    with pytest.raises(StoreError, match="cannot use the metadata database URL.*SQLAlchemy URL"):
        Store(tmp_path / "store", metadata=url).history()


def value_flow(store):
    @asset(config_schema=Config)
    def value(config):
        return config.get("n", 1)

    return Flow(["value"], store=store)


@pytest.mark.parametrize("force", [[1], [None], 3])
def test_force_of_the_wrong_type_is_a_kazeflow_error(store, force):
    with pytest.raises(KazeflowError, match="force= takes True, False or a list"):
        value_flow(store).run(force=force)


@pytest.mark.parametrize("version", [3.5, "", True, b"ab"])
def test_a_version_of_the_wrong_kind_is_a_kazeflow_error(store, version):
    flow = value_flow(store)
    flow.run()
    with pytest.raises(KazeflowError, match="version=.*a record id"):
        flow.load("value", version=version)


def test_a_damaged_database_gives_store_errors_naming_the_fix(tmp_path):
    root = tmp_path / "store"
    flow = value_flow(root)
    for n in range(300):  # several pages of records
        flow.run(config={"value": {"n": n}})
    flow.store.close()
    db = root / "kazeflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    raw = bytearray(db.read_bytes())
    for start in range(2 * page, len(raw), page):  # every page but the first two
        raw[start + 100:start + 400] = b"\xff" * 300
    db.write_bytes(bytes(raw))
    for call in (lambda: flow.history(), lambda: flow.load("value"),
                 lambda: flow.status(config={"value": {"n": 1}}), lambda: flow.runs()):
        with pytest.raises(StoreError, match="damaged: restore it from a backup"):
            call()


def test_a_record_whose_json_is_damaged_gives_a_store_error(store):
    flow = value_flow(store)
    flow.run()
    with sqlite3.connect(store.root / "kazeflow.db") as conn:
        conn.execute("UPDATE materializations SET config = '{not json'")
    with pytest.raises(StoreError, match="damaged"):
        flow.history()


def test_a_nul_byte_in_an_error_is_recorded(any_store):
    @asset
    def broken():
        raise ValueError("bad\x00byte")

    with pytest.raises(FlowRunError):
        Flow(["broken"], store=any_store).run()
    [record] = any_store.history("broken")
    assert record.status == "failed" and "bad\\x00byte" in record.error


FULL_AT_COMMIT = textwrap.dedent("""
    import resource, signal, sys
    from kazeflow import Flow, StoreError, asset

    @asset
    def small():
        return 1

    flow = Flow(["small"], store=sys.argv[1])
    flow.store.metadata  # opened: the schema is there
    db = flow.store.root / "kazeflow.db"
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    size = max(db.stat().st_size, (flow.store.root / "kazeflow.db-wal").stat().st_size)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    try:
        flow.run()
    except StoreError as exc:
        print("STOREERROR", exc)
        sys.exit(3)
""")


def test_a_full_disk_at_the_metadata_commit_is_a_store_error(tmp_path):
    root = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", FULL_AT_COMMIT, str(root)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "STOREERROR cannot write the metadata database" in proc.stdout
    assert "Traceback" not in proc.stderr

    @asset
    def small():
        return 1

    flow = Flow(["small"], store=root)
    assert flow.history() == []  # no half-written row
    assert flow.run().materialized == ("small",)  # with room again, it just works


@pytest.mark.parametrize("command", ["current", "upgrade"])
def test_the_db_commands_give_one_line_for_a_bad_url(tmp_path, command):
    proc = subprocess.run([sys.executable, "-m", "kazeflow", "db", command, "--store",
                           str(tmp_path / "store"), "--metadata-url", "foo://x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "cannot use the metadata database URL" in proc.stderr
