"""The store's own SQLite file: owner-only, and never silently replaced by an empty one."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from kazeflow import Flow, StoreError, asset
from kazeflow.store import Store


def _run_once(root: Path, database_url: str | None = None) -> None:
    @asset
    def answer():
        return 42

    with Store(root, metadata=database_url) as store:
        assert Flow(["answer"], store=store).run()["answer"] == 42


def _tables(db: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _lose_the_database(root: Path, *, keep_empty_file: bool) -> Path:
    db = root / "kazeflow.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if keep_empty_file:
        db.write_bytes(b"")
    else:
        db.unlink()
    return db


@pytest.mark.parametrize("keep_empty_file", [True, False], ids=["empty", "missing"])
def test_a_lost_database_beside_objects_is_an_error_not_a_new_history(tmp_path,
                                                                     keep_empty_file):
    root = tmp_path / "store"
    _run_once(root)
    db = _lose_the_database(root, keep_empty_file=keep_empty_file)
    for _ in range(2):  # and again: the refusal leaves nothing that would pass next time
        with Store(root) as store, pytest.raises(StoreError) as raised:
            store.runs()
        message = str(raised.value)
        assert str(db) in message and "lost" in message
        assert "backup" in message and f"move {root / 'objects'} aside" in message
        assert _tables(db) == set()


def test_a_new_store_and_one_with_an_empty_objects_folder_open(tmp_path):
    _run_once(tmp_path / "new")
    root = tmp_path / "emptied"
    (root / "objects").mkdir(parents=True)
    (root / "kazeflow.db").write_bytes(b"")
    _run_once(root)
    assert "runs" in _tables(root / "kazeflow.db")


def test_moving_the_objects_aside_starts_a_new_history(tmp_path):
    root = tmp_path / "store"
    _run_once(root)
    _lose_the_database(root, keep_empty_file=True)
    (root / "objects").rename(tmp_path / "old-objects")
    _run_once(root)


def test_only_the_stores_own_sqlite_file_is_checked(tmp_path):
    root = tmp_path / "store"
    _run_once(root)
    elsewhere = tmp_path / "elsewhere.db"
    elsewhere.write_bytes(b"")  # a database the user named: an empty one is theirs to give
    _run_once(root, f"sqlite:///{elsewhere}")
    assert "runs" in _tables(elsewhere)


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("existing_folder", [False, True], ids=["new", "existing-0755"])
def test_database_files_are_owner_only_under_a_permissive_umask(tmp_path,
                                                                existing_folder):
    root = tmp_path / "store"
    with _umask(0o022):
        if existing_folder:
            root.mkdir(mode=0o755)
        with Store(root) as store:
            @asset
            def answer():
                return 42

            Flow(["answer"], store=store).run()
            db = root / "kazeflow.db"
            wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
            assert wal.exists() and shm.exists()  # while the store is open
            assert {p.name: _mode(p) for p in (db, wal, shm)} == {
                p.name: 0o600 for p in (db, wal, shm)}
            assert _mode(root / "objects") == 0o700
            assert _mode(root) == (0o755 if existing_folder else 0o700)
