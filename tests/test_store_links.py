"""Paths stay inside the store: no link planted in a store folder is followed, and no
path is built from a data version that is not one."""

import os
import sqlite3

import pytest

from kazeflow import Config, Flow, IntegrityError, StoreError, asset


def small_flow(root):
    @asset(config_schema=Config)
    def value(config):
        return config.get("text", "the value")

    return Flow(["value"], store=root)


@pytest.fixture
def outside(tmp_path):
    """A folder outside the store with a file that nothing may touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim").write_bytes(b"precious")
    return folder


def assert_untouched(outside):
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"precious"


def test_a_forged_data_version_builds_no_path(tmp_path, outside):
    flow = small_flow(tmp_path / "store")
    flow.run()
    forged = os.path.relpath(outside / "victim", tmp_path / "store" / "objects" / "xx")
    with sqlite3.connect(tmp_path / "store" / "kazeflow.db") as conn:
        conn.execute("UPDATE materializations SET data_version = ?", ("xx" + forged,))
    flow.store.close()
    with pytest.raises(StoreError, match="is not a data version"):
        flow.load("value")
    with pytest.raises(StoreError, match="is not a data version"):
        flow.run()
    assert_untouched(outside)


@pytest.mark.parametrize("name", ["leases.lock", "gc.lock"])
def test_a_linked_lock_file_is_refused(tmp_path, outside, name):
    root = tmp_path / "store"
    small_flow(root).run()
    (root / name).unlink(missing_ok=True)
    (root / name).symlink_to(outside / "victim")
    with pytest.raises(StoreError, match=f"{name}.*symbolic link"):  # a new key and object
        small_flow(root).run(config={"value": {"text": "another value"}})
    assert_untouched(outside)


def test_gc_and_verify_never_follow_a_linked_shard_folder(tmp_path, outside):
    root = tmp_path / "store"
    flow = small_flow(root)
    flow.run()
    dv = flow.history("value")[0].data_version
    shard = root / "objects" / dv[:2]
    (outside / dv[2:]).write_bytes(shard.joinpath(dv[2:]).read_bytes())  # looks stored
    shard.joinpath(dv[2:]).unlink()
    shard.rmdir()
    shard.symlink_to(outside)
    flow.store.close()
    report = flow.store.verify()
    assert report.missing == {dv: ("value",)} and report.checked == 0
    flow.store.gc()
    assert sorted(p.name for p in outside.iterdir()) == sorted(["victim", dv[2:]])
    with pytest.raises(StoreError, match=f"{dv[:2]}.*symbolic link"):
        flow.run()  # it would write the object there
    assert sorted(p.name for p in outside.iterdir()) == sorted(["victim", dv[2:]])


def test_a_linked_pins_folder_is_refused_by_runs_and_gc(tmp_path, outside):
    root = tmp_path / "store"
    flow = small_flow(root)
    flow.run()
    (outside / "dead-run.pin").write_text("")  # what gc would delete in pins/
    (root / "pins").rmdir()
    (root / "pins").symlink_to(outside)
    with pytest.raises(StoreError, match="pins.*symbolic link"):
        flow.store.gc()
    with pytest.raises(StoreError, match="pins.*symbolic link"):
        flow.run()
    assert sorted(p.name for p in outside.iterdir()) == ["dead-run.pin", "victim"]


def test_a_linked_quarantine_folder_is_refused(tmp_path, outside):
    root = tmp_path / "store"
    flow = small_flow(root)
    flow.run()
    path = flow.store.objects.path(flow.history("value")[0].data_version)
    path.write_bytes(b"x" * path.stat().st_size)  # corrupt: load quarantines it
    (root / "quarantine").symlink_to(outside)
    with pytest.raises(StoreError, match="quarantine.*symbolic link"):
        flow.load("value")
    assert_untouched(outside)


def test_a_linked_object_file_is_not_read_through(tmp_path, outside):
    root = tmp_path / "store"
    flow = small_flow(root)
    flow.run()
    path = flow.store.objects.path(flow.history("value")[0].data_version)
    (outside / "copy").write_bytes(path.read_bytes())  # the right bytes, behind a link
    path.unlink()
    path.symlink_to(outside / "copy")
    with pytest.raises(IntegrityError):
        flow.store.load("value")
    assert (outside / "copy").exists() and not path.is_symlink()  # the link went aside
    assert flow.run().materialized == ("value",)
