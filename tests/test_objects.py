"""The content-addressed object store: atomic, deduplicated, verified on every read."""

import hashlib
import logging
import os
import stat

import numpy as np
import pytest

from kazeflow import Flow, IntegrityError, ObjectNotFoundError, StoreError, asset
from kazeflow.store import Store, _digest, _pickling


def test_objects_are_named_by_the_sha256_of_their_bytes(store):
    data_version, size = store.objects.put({"a": [1, 2, 3]})
    path = store.objects.path(data_version)
    raw = path.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == data_version and len(raw) == size
    assert path.parent.name == data_version[:2] and path.name == data_version[2:]
    assert store.objects.load(data_version) == {"a": [1, 2, 3]}


def test_equal_values_are_stored_once_and_never_rewritten(store):
    first, _ = store.objects.put([1, 2])
    before = store.objects.path(first).stat()
    second, _ = store.objects.put([1, 2])
    assert first == second
    after = store.objects.path(first).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    files = [p for p in (store.root / "objects").rglob("*") if p.is_file()]
    assert files == [store.objects.path(first)]  # no temp file left behind


def test_a_small_value_already_stored_costs_no_file(store):
    first, _ = store.objects.put([1, 2])
    pending = store.objects.write([1, 2])
    assert pending.data_version == first and pending.temp is None and not pending.is_new
    assert [p.name for p in (store.root / "objects").iterdir() if p.is_file()] == []
    store.objects.commit([pending])
    assert store.objects.load(first) == [1, 2]


def test_a_stored_value_removed_before_commit_is_written_again(store):
    first, size = store.objects.put({"k": "v"})
    pending = store.objects.write({"k": "v"})
    assert pending.temp is None
    store.objects.path(first).unlink()  # as gc would, between the check and the commit
    store.objects.commit([pending])
    assert store.objects.has(first, size) and store.objects.load(first) == {"k": "v"}


def test_reuse_decision_is_a_stat_not_a_rehash(store):
    data_version, size = store.objects.put("x" * 1000)
    assert store.objects.has(data_version, size)
    assert not store.objects.has(data_version, size + 1)
    with open(store.objects.path(data_version), "r+b") as f:  # same size, other bytes
        f.write(b"Z")
    assert store.objects.has(data_version, size)  # only reads catch this


def test_a_corrupt_object_is_never_unpickled_and_is_quarantined(store):
    data_version, size = store.objects.put(list(range(100)))
    path = store.objects.path(data_version)
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="is corrupt") as info:
        store.objects.load(data_version)
    assert info.value.data_version == data_version
    assert not path.exists() and not store.objects.has(data_version, size)
    assert list((store.root / "quarantine").iterdir())[0].name.startswith(data_version)
    with pytest.raises(ObjectNotFoundError, match="missing"):
        store.objects.load(data_version)


def test_large_arrays_round_trip(store):
    array = np.arange(3_000_000, dtype=np.float64)  # 24 MB: hashed in a helper thread
    data_version, size = store.objects.put(array)
    assert size > array.nbytes
    raw = store.objects.path(data_version).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == data_version and len(raw) == size
    loaded = store.objects.load(data_version)
    assert np.array_equal(loaded, array) and loaded.flags.writeable


def test_large_buffers_are_stored_out_of_band_after_the_stream(store):
    c_order = np.arange(300_000, dtype=np.float64)  # 2.4 MB: out of band
    fortran = np.asfortranarray(np.arange(400_000, dtype=np.int32).reshape(800, 500))
    frozen = np.ones(200_000)
    frozen.flags.writeable = False
    value = {"c": c_order, "f": fortran, "frozen": frozen,
             "strided": c_order[::2],  # not contiguous: stays in the stream
             "small": np.arange(10), "text": "kept in the stream"}
    data_version, size = store.objects.put(value)
    raw = store.objects.path(data_version).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == data_version and len(raw) == size
    assert raw.endswith(_pickling.MAGIC)
    loaded = store.objects.load(data_version)
    assert loaded.keys() == value.keys()
    for key, array in value.items():
        assert np.array_equal(loaded[key], array) if key != "text" else loaded[key] == array
    assert loaded["f"].flags.f_contiguous and loaded["c"].flags.writeable
    assert not loaded["frozen"].flags.writeable
    loaded["c"][0] = -1.0  # its own memory: neither the store nor other loads change
    assert store.objects.load(data_version)["c"][0] == 0.0


def test_a_value_without_large_buffers_is_a_plain_pickle(store):
    data_version, _ = store.objects.put({"small": np.arange(1000), "n": 1})
    raw = store.objects.path(data_version).read_bytes()
    assert raw.startswith(b"\x80\x05") and raw.endswith(b".")


@pytest.mark.parametrize("where", ["stream", "buffer", "lengths", "trailer", "truncated"])
def test_any_damage_to_an_out_of_band_object_is_caught(store, where):
    data_version, size = store.objects.put(np.arange(500_000, dtype=np.float64))
    path = store.objects.path(data_version)
    raw = bytearray(path.read_bytes())
    tail = len(_pickling.MAGIC) + 12
    if where == "truncated":
        del raw[size // 2:]
    else:
        offset = {"stream": 10, "buffer": size // 2, "lengths": -tail - 3,
                  "trailer": -tail + 2}[where]
        raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="is corrupt"):
        store.objects.load(data_version)
    assert not path.exists()


def test_store_folders_are_owner_only(tmp_path):
    with Store(tmp_path / "s") as s:
        s.objects.put(1)
        assert stat.S_IMODE(os.stat(s.root).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(s.root / "objects").st_mode) == 0o700


def test_a_store_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "not_a_dir"
    target.write_text("hello")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        _ = Store(target).metadata
    assert target.read_text() == "hello"


def test_default_location_and_kazeflow_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAZEFLOW_HOME", raising=False)
    assert Store().root == tmp_path / ".kazeflow"
    monkeypatch.setenv("KAZEFLOW_HOME", str(tmp_path / "elsewhere"))

    @asset
    def thing():
        return 1

    Flow(["thing"]).run()
    assert (tmp_path / "elsewhere" / "kazeflow.db").exists()
    assert not (tmp_path / ".kazeflow").exists()


def flip_a_byte(path):
    """Corrupt an object without changing its size."""
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01
    path.write_bytes(bytes(raw))


def base_and_top(store, calls):
    """A flow of two assets that note their calls in ``calls``."""
    @asset
    def base():
        calls.append("base")
        return list(range(10))

    @asset
    def top(base):
        calls.append("top")
        return sum(base)

    return Flow(["top"], store=store)


def test_corrupt_upstream_inside_run_is_rematerialized_with_a_warning(store, caplog):
    calls = []
    flow = base_and_top(store, calls)
    flow.run()
    path = store.objects.path(flow.history("base")[0].data_version)
    flip_a_byte(path)
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="kazeflow"):
        result = flow.run(force=["top"])
    assert calls == ["base", "top"] and result["top"] == 45
    assert "corrupt" in caplog.text and "materializing it again" in caplog.text
    assert flow.load("base") == list(range(10))


def test_load_of_a_corrupt_object_raises_a_clear_error(store):
    @asset
    def table():
        return {"rows": 5}

    flow = Flow(["table"], store=store)
    flow.run()
    path = store.objects.path(flow.history("table")[0].data_version)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match="is corrupt.*next run will materialize it"):
        flow.load("table")
    assert flow.status()["table"].state == "missing"
    assert flow.run().materialized == ("table",)


def test_a_store_that_must_exist_is_not_created(tmp_path):
    with pytest.raises(StoreError, match="there is no kazeflow store at"):
        Store(tmp_path / "absent", create=False).history()
    assert not (tmp_path / "absent").exists()
    with Store(tmp_path / "made") as store:
        store.objects.put(1)
    assert Store(tmp_path / "made", create=False).history() == []


@pytest.mark.parametrize("data", [b"", b"x" * 100, bytes(range(256)) * 1000,
                                  np.arange(50_000, dtype=np.float64),  # 'd' items, 400 kB
                                  np.arange(12, dtype=np.int64).reshape(3, 4)])
def test_hashing_in_slices_gives_the_plain_sha256(data):
    sha = hashlib.sha256()
    _digest.update(sha, data)
    assert sha.hexdigest() == hashlib.sha256(memoryview(data).tobytes()).hexdigest()


def test_a_same_size_corrupt_object_is_remade_by_the_run_that_reused_it(store, caplog):
    calls = []
    flow = base_and_top(store, calls)
    flow.run()
    path = store.objects.path(flow.history("top")[0].data_version)
    flip_a_byte(path)  # same size: the run's stat cannot tell
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="kazeflow"):
        result = flow.run()
        assert result.reused == ("base", "top") and calls == []  # decided on a stat
        assert result["top"] == 45  # the read verifies, finds it corrupt and re-makes it
    assert calls == ["top"]
    assert "corrupt" in caplog.text and "materializing it again" in caplog.text
    assert flow.load("top") == 45 and store.verify().ok


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_run_that_remakes_a_truncated_or_deleted_object_warns(store, caplog, damage):
    @asset
    def value():
        return list(range(100))

    flow = Flow(["value"], store=store)
    flow.run()
    path = store.objects.path(flow.history("value")[0].data_version)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-5])
    else:
        path.unlink()
    with caplog.at_level(logging.WARNING, logger="kazeflow"):
        assert flow.run().materialized == ("value",)
    assert "is missing, truncated or quarantined; materializing it again" in caplog.text
    assert path.stat().st_size == flow.history("value")[0].size  # repaired, not kept short
    assert store.verify().ok


def test_objects_and_temp_files_are_owner_only_under_umask_022(tmp_path):
    root = tmp_path / "store"
    root.mkdir(mode=0o755)  # a store folder that existed, readable by others
    old = os.umask(0o022)
    try:
        @asset
        def big():
            return b"x" * (1 << 20)  # a file-backed temp, then an object

        flow = Flow(["big"], store=root)
        flow.run()
        temp, raw = flow.store.objects.create_temp()
        raw.close()
    finally:
        os.umask(old)
    path = flow.store.objects.path(flow.history("big")[0].data_version)
    assert os.stat(temp).st_mode & 0o777 == 0o600
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert (root / "objects").stat().st_mode & 0o777 == 0o700
