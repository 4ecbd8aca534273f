"""A full disk or an unwritable store: a clear StoreError, no partial object, no half row."""

import os
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from kazeflow import Flow, Store, StoreError, asset

CHILD = textwrap.dedent("""
    import resource, signal, sys
    from kazeflow import Flow, StoreError, asset

    @asset
    def small():
        return 1

    @asset
    def big():
        return b"x" * 5_000_000

    Flow(["small"], store=sys.argv[1]).run()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
    try:
        Flow(["big"], store=sys.argv[1]).run()
    except StoreError as exc:
        print("STOREERROR", exc)
        sys.exit(3)
""")


def assert_consistent(root: Path) -> None:
    """No temp file left, and every materialized row's object exists with its size."""
    assert list((root / "objects").glob("*.partial")) == []
    with sqlite3.connect(root / "kazeflow.db") as conn:
        rows = conn.execute("SELECT asset_name, data_version, size FROM materializations "
                            "WHERE status = 'materialized'").fetchall()
    for name, data_version, size in rows:
        path = root / "objects" / data_version[:2] / data_version[2:]
        assert path.stat().st_size == size, name


def test_file_size_limit_gives_store_error_and_leaves_no_partial_object(tmp_path):
    root = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "STOREERROR cannot write an object into" in proc.stdout
    assert "free some disk space" in proc.stdout
    assert_consistent(root)

    @asset
    def big():
        return b"x" * 5_000_000

    flow = Flow(["big"], store=root)
    assert flow.history() == []  # nothing half-recorded for the failed write
    assert flow.runs()[0].status == "failed" and "StoreError" in flow.runs()[0].error
    assert flow.run()["big"] == b"x" * 5_000_000  # with room again, it just works
    assert flow.store.verify().ok


@pytest.fixture
def tiny_fs(tmp_path):
    """A 2 MiB tmpfs (needs permission to mount; skipped where there is none)."""
    mount = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the RLIMIT test covers EFBIG")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_gives_store_error_and_keeps_the_store_usable(tiny_fs):
    calls = []

    @asset
    def small():
        return 1

    @asset
    def huge(small):
        calls.append("huge")
        return os.urandom(3_000_000)

    root = tiny_fs / "store"
    Flow(["small"], store=root).run()
    with pytest.raises(StoreError, match="No space left on device.*free some disk space"):
        Flow(["huge"], store=root).run()
    assert_consistent(root)
    assert Flow(["small"], store=root).run().reused == ("small",)


def test_read_only_store_gives_store_error(tiny_fs):
    @asset
    def value():
        return 1

    root = tiny_fs / "store"
    flow = Flow(["value"], store=root)
    flow.run()
    flow.store.close()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)

    @asset
    def value():  # noqa: F811 - new code: needs a new object
        return 2

    with pytest.raises(StoreError) as info:
        Flow(["value"], store=root).run()
    assert "read-only" in str(info.value).lower() or "readonly" in str(info.value).lower()


def test_a_full_disk_under_the_database_is_a_store_error_and_the_run_says_failed(
        tiny_fs, tmp_path):
    """The objects have room, the database's disk fills: the rows' commit fails with a
    StoreError naming the database and the fix, the run is recorded failed with it."""
    url = f"sqlite:///{tiny_fs / 'meta.db'}"
    root = tmp_path / "store"

    @asset
    def small():
        return 1

    @asset
    def noted(small, context):
        context.add_metadata(notes="n" * 400_000)  # a row bigger than the room left
        return small + 1

    Flow(["small"], store=Store(root, metadata=url)).run()
    filler = tiny_fs / "filler"
    with open(filler, "wb") as f:  # leave about 64 KiB free
        free = os.statvfs(tiny_fs).f_bavail * os.statvfs(tiny_fs).f_frsize
        f.write(b"\0" * max(free - 65536, 0))
    with Store(root, metadata=url) as store:
        with pytest.raises(StoreError) as info:
            Flow(["noted"], store=store).run()
    message = str(info.value)
    assert f"cannot write the metadata database {url}" in message
    assert "free some disk space" in message or "free some space" in message
    filler.unlink()
    with Store(root, metadata=url) as store:
        failed = store.runs()[0]
        assert failed.status == "failed" and "cannot write the metadata database" in \
            failed.error
        assert [r.asset_name for r in store.history()] == ["small"]  # no half row
        assert Flow(["noted"], store=store).run().materialized == ("noted",)
        assert store.verify().ok
