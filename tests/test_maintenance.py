"""verify() and gc(): integrity checks and crash-safe reclamation of old objects."""

import os
import time

import pytest

from kazeflow import Config, Flow, KazeflowError, asset
from kazeflow.store import Store


def versions_flow(store):
    @asset(config_schema=Config)
    def value(config):
        return "v" * 100 + str(config.get("n", 0))

    @asset
    def length(value):
        return len(value)

    return Flow(["length"], store=store)


def test_verify_reports_missing_corrupt_and_orphaned(any_store):
    flow = versions_flow(any_store)
    flow.run(config={"value": {"n": 1}})
    report = any_store.verify()
    assert report.ok and report.checked == 2 and not report.orphaned
    value_dv = flow.history("value")[0].data_version
    length_dv = flow.history("length")[0].data_version
    path = any_store.objects.path(value_dv)
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0x20  # one flipped byte
    path.write_bytes(bytes(raw))
    any_store.objects.path(length_dv).unlink()
    orphan, _ = any_store.objects.put(["nobody refers to me"])
    report = any_store.verify()
    assert not report.ok
    assert report.corrupt == (value_dv,) and not path.exists()  # quarantined
    assert report.missing == {length_dv: ("length",)}
    assert report.orphaned == (orphan,)
    result = flow.run(config={"value": {"n": 1}})
    assert set(result.materialized) == {"value", "length"}
    assert any_store.verify().ok


def test_gc_keeps_the_newest_records_and_frees_the_rest(any_store):
    flow = versions_flow(any_store)
    for n in range(4):
        flow.run(config={"value": {"n": n}})
    assert len(flow.history("value")) == 4
    dry = any_store.gc(keep_last=2, dry_run=True)
    # two old records of each asset go; the length records all share one object
    assert dry.dry_run and dry.records_removed == 4 and len(flow.history("value")) == 4
    report = any_store.gc(keep_last=2)
    assert (report.records_removed, report.objects_removed) == (4, 2)
    assert report.bytes_after < report.bytes_before and report.bytes_freed > 0
    assert dry.bytes_after == report.bytes_after
    assert [m.config["n"] for m in flow.history("value")] == [3, 2]
    assert any_store.verify().ok
    assert flow.store.load("value").endswith("3") and flow.run(config={"value": {"n": 3}}).reused


def test_gc_by_age_always_keeps_the_newest_success(any_store):
    flow = versions_flow(any_store)
    flow.run(config={"value": {"n": 1}})
    flow.run(config={"value": {"n": 2}})
    time.sleep(0.05)
    report = any_store.gc(older_than=0)
    # value n=1 and the first length record go; both length records share one object
    assert (report.records_removed, report.objects_removed) == (2, 1)
    assert [m.config["n"] for m in flow.history("value")] == [2]
    assert flow.status(config={"value": {"n": 2}})["length"].state == "fresh"


def test_gc_removes_orphans_and_stale_temps_but_not_live_ones(any_store):
    flow = versions_flow(any_store)
    flow.run()
    orphan, _ = any_store.objects.put("orphan")
    stale = any_store.objects.root / "dead.partial"
    stale.write_bytes(b"half an object")  # nobody holds its lock: its writer is dead
    live_path, live = any_store.objects.create_temp()  # a live writer holds its lock
    report = any_store.gc()
    assert report.objects_removed == 1 and report.temp_files_removed == 1
    assert not any_store.objects.path(orphan).exists() and not stale.exists()
    assert os.path.exists(live_path)
    live.close()
    assert any_store.gc().temp_files_removed == 1 and not os.path.exists(live_path)
    assert any_store.verify().ok


@pytest.mark.parametrize("kwargs", [{"keep_last": 0}, {"keep_last": 1.5},
                                    {"older_than": -1}])
def test_gc_refuses_bad_arguments(any_store, kwargs):
    with pytest.raises(KazeflowError, match="gc\\("):
        any_store.gc(**kwargs)


def test_a_flipped_byte_found_by_verify_is_remade_and_downstream_kept(any_store):
    flow = versions_flow(any_store)
    flow.run()
    value_dv = flow.history("value")[0].data_version
    path = any_store.objects.path(value_dv)
    raw = bytearray(path.read_bytes())
    raw[-2] ^= 0x01
    path.write_bytes(bytes(raw))
    assert any_store.verify().corrupt == (value_dv,)
    assert flow.status()["value"].state == "missing"
    result = flow.run()
    # the same bytes come out again: the downstream is spared by early cut-off
    assert result.materialized == ("value",) and result.reused == ("length",)
    assert any_store.objects.path(value_dv).exists() and any_store.verify().ok


def _leave_dead_pins(store, run_id: str, data_versions: list[str]) -> None:
    """What a crashed run leaves: its pins, with nobody holding its lock any more."""
    if store.coordinator is not None:
        store.coordinator.add_pins(run_id, data_versions)
    else:
        (store.root / "pins").mkdir(exist_ok=True)
        (store.root / "pins" / f"{run_id}.pin").write_text(
            "".join(f"{dv}\n" for dv in data_versions))


def _runs_with_pins(store) -> set[str]:
    if store.coordinator is not None:
        with store.metadata.engine.connect() as conn:
            return {run_id for (run_id,) in conn.exec_driver_sql(
                "SELECT DISTINCT run_id FROM run_pins")}
    return {p.name.removesuffix(".pin") for p in (store.root / "pins").iterdir()}


def test_gc_keeps_what_a_live_run_pinned_and_forgets_pins_of_dead_runs(any_store):
    flow = versions_flow(any_store)
    flow.run(config={"value": {"n": 1}})
    flow.run(config={"value": {"n": 2}})
    old = flow.history("value")[1].data_version
    pins = any_store.pins("a-running-run")
    pins.open()
    pins.add([old])
    any_store.gc(keep_last=1)
    assert any_store.objects.load(old).endswith("1")  # record gone, object kept
    pins.close()
    _leave_dead_pins(any_store, "a-dead-run", [old])
    report = any_store.gc(keep_last=1)
    assert report.objects_removed == 1 and not any_store.objects.path(old).exists()
    assert _runs_with_pins(any_store) == set()


def test_a_result_keeps_its_lazy_values_pinned_until_they_are_read(any_store):
    flow = versions_flow(any_store)
    flow.run(config={"value": {"n": 1}})
    result = flow.run(config={"value": {"n": 1}})  # all reused: values load lazily
    assert _runs_with_pins(any_store) == {result.run_id}
    flow.run(config={"value": {"n": 2}})
    any_store.gc(keep_last=1)  # the n=1 value is no longer the newest: only a pin keeps it
    assert result["value"].endswith("1") and result["length"] == 101
    assert _runs_with_pins(any_store) == set()  # everything read: unpinned


def test_gc_dry_run_deletes_nothing_at_all(any_store):
    flow = versions_flow(any_store)
    flow.run()
    _leave_dead_pins(any_store, "dead-run", [])
    if any_store.coordinator is not None:
        _leave_dead_pins(any_store, "dead-run", ["0" * 64])
    dead_temp = any_store.objects.root / "dead.partial"
    dead_temp.write_bytes(b"half an object")
    orphan, _ = any_store.objects.put("orphan")
    before = sorted(p.relative_to(any_store.root) for p in any_store.root.rglob("*"))
    report = any_store.gc(dry_run=True)
    assert report.dry_run and report.objects_removed == 1
    assert sorted(p.relative_to(any_store.root) for p in any_store.root.rglob("*")) == before
    assert _runs_with_pins(any_store) == {"dead-run"}
    assert any_store.gc().objects_removed == 1 and _runs_with_pins(any_store) == set()


@pytest.mark.postgres
def test_folders_sharing_a_database_each_verify_and_gc_their_own_runs(tmp_path,
                                                                       postgres_url):
    with Store(tmp_path / "a", metadata=postgres_url) as a, \
            Store(tmp_path / "b", metadata=postgres_url) as b:
        flow_a, flow_b = versions_flow(a), Flow(["length"], store=b)
        a_runs = [flow_a.run(config={"value": {"n": n}}).run_id for n in (1, 2)]
        b_runs = [flow_b.run(config={"value": {"n": n}}).run_id for n in (1, 3)]

        def records_of(run_ids: list[str]) -> list[int]:
            return sorted(m.id for m in a.history() if m.run_id in run_ids)

        assert a.folder_id != b.folder_id
        assert a.verify().ok and b.verify().ok  # neither misses the other's objects
        b_records = records_of(b_runs)
        shared = next(m.data_version for m in a.history("value") if m.config["n"] == 1)
        report = a.gc(keep_last=1)
        assert report.records_removed == 2  # a's n=1 records of value and length
        assert records_of(b_runs) == b_records and len(records_of(a_runs)) == 2
        # a's record of n=1 is gone, but b's record of the same value still refers to it
        assert a.objects.path(shared).exists() and shared not in a.verify().orphaned
        assert a.verify().ok and b.verify().ok
        b.gc(keep_last=1)
        assert len(records_of(a_runs)) == 2 and len(records_of(b_runs)) == 2
        assert a.verify().ok and b.verify().ok


def test_a_pin_file_a_gc_removes_before_it_is_locked_is_made_again(store, monkeypatch):
    """A gc that finds a run's new pin file not yet locked removes it as a dead run's;
    the run then makes another, so that what it pins stays visible to gc."""
    from kazeflow.store import _locks, _pins

    lock = _locks.FileLock._lock
    removed = []

    def gc_first(self, fd, blocking):  # a concurrent gc, between creating and locking
        if self.path.endswith(_pins.SUFFIX) and not removed:
            removed.append(self.path)
            os.unlink(self.path, dir_fd=self.dir_fd)
        return lock(self, fd, blocking)

    store.objects  # noqa: B018 - the store's folders exist, as for any run
    monkeypatch.setattr(_locks.FileLock, "_lock", gc_first)
    pins = store.pins("r" * 32)
    pins.open()
    try:
        pins.add(["a" * 64])
        assert removed == [pins.name]  # it did vanish once
        assert _pins.live_pins(store.root / "pins", remove_dead=False) == {"a" * 64}
    finally:
        pins.close()
