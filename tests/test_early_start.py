"""Early start: an asset's value goes downstream as soon as its bytes are written, while
their hash and fsync finish in helper threads. A downstream asset that runs whatever that
data version turns out to be (never materialized, forced, not cached) starts at once;
the upstream's row is committed meanwhile, each key is still computed once, and what is
stored is what was written, whatever the downstream does to the value."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kazeflow import Flow, FlowRunError, Store, asset
from kazeflow.assets import registry

BIG = 32 << 20  # bytes: large enough to be hashed and fsynced in helper threads


def big_bytes() -> bytearray:
    return bytearray(range(256)) * (BIG // 256)


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_a_never_materialized_downstream_starts_while_its_upstream_is_stored(
        tmp_path, executor):
    @asset
    def big():
        return big_bytes()

    @asset
    def total(big):
        return sum(big[:1000])

    flow = Flow(["total"], store=Store(tmp_path / "s"))
    result = flow.run(executor=executor)
    assert result.materialized == ("big", "total") and result["total"] == sum(big_bytes()[:1000])
    big_record, total_record = flow.history("big")[0], flow.history("total")[0]
    # big's record ends when its object was hashed and fsynced: after total had started
    assert total_record.started_at < big_record.ended_at
    assert total_record.upstream_versions == {"big": big_record.data_version}
    assert flow.store.verify().ok
    again = flow.run(executor=executor)
    assert again.reused == ("big", "total") and again.materialized == ()
    forced = flow.run(executor=executor, force=True)  # forced: runs whatever big is
    assert forced.materialized == ("big", "total")
    assert flow.history("total")[0].started_at < flow.history("big")[0].ended_at


def test_early_starts_with_several_upstreams_and_in_a_chain(tmp_path):
    @asset
    def left():
        return big_bytes()

    @asset
    def right():
        return big_bytes()[::-1]

    @asset
    def both(left, right):  # starts while right is stored; its own value is large too
        return left + right

    @asset
    def tail(both):  # waits for both, which started early, to land
        return len(both)

    flow = Flow(["tail"], store=Store(tmp_path / "s"))
    result = flow.run()
    assert result.materialized == ("left", "right", "both", "tail")
    assert result["tail"] == 2 * BIG
    records = {name: flow.history(name)[0] for name in ("left", "right", "both", "tail")}
    assert records["both"].started_at < records["right"].ended_at
    assert records["both"].upstream_versions == {"left": records["left"].data_version,
                                                 "right": records["right"].data_version}
    assert records["tail"].started_at >= records["both"].ended_at
    assert flow.store.verify().ok and flow.load("both") == big_bytes() + big_bytes()[::-1]
    assert flow.run().reused == ("left", "right", "both", "tail")


def test_a_downstream_changing_its_input_in_place_does_not_change_what_was_stored(tmp_path):
    @asset
    def big():
        return big_bytes()

    @asset
    def scribble(big):
        big[:] = bytes(len(big))  # while big's bytes may still be being hashed
        return len(big)

    flow = Flow(["scribble"], store=Store(tmp_path / "s"))
    result = flow.run()
    assert result.materialized == ("big", "scribble")
    # scribble ran while big's bytes were still being hashed: the case that matters
    assert flow.history("scribble")[0].started_at < flow.history("big")[0].ended_at
    assert flow.store.verify().ok  # every object hashes to its name
    assert flow.load("big") == big_bytes()


def test_a_downstream_that_may_be_reused_waits_for_its_upstream_data_version(tmp_path):
    calls = []

    @asset(name="big")
    def big_v1():
        return big_bytes()

    @asset
    def total(big):
        calls.append("total")
        return len(big)

    store = Store(tmp_path / "s")
    Flow(["total"], store=store).run()
    registry.clear()

    @asset(name="big")
    def big_v2():  # new code, the same bytes: total stays fresh (early cut-off)
        return bytearray(range(256)) * (BIG // 512) * 2

    @asset
    def total(big):  # noqa: F811 - the same code again, in a fresh registry
        calls.append("total")
        return len(big)

    again = Flow(["total"], store=store).run()
    assert again.materialized == ("big",) and again.reused == ("total",)
    assert calls == ["total"]


def test_the_upstream_row_is_committed_while_an_early_downstream_runs(tmp_path):
    path = tmp_path / "s"

    @asset
    def big():
        return big_bytes()

    @asset
    def waits(big):
        """Looks for big's row through another connection, as a crash would leave it."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with Store(path) as other:
                if other.history("big"):
                    return True
            time.sleep(0.02)
        return False

    flow = Flow(["waits"], store=Store(path))
    assert flow.run()["waits"] is True
    assert flow.history("waits")[0].started_at < flow.history("big")[0].ended_at  # early


def test_a_failing_early_downstream_is_recorded_with_its_inputs(tmp_path):
    @asset
    def big():
        return big_bytes()

    @asset
    def broken(big):
        raise ValueError("no good")

    flow = Flow(["broken"], store=Store(tmp_path / "s"))
    with pytest.raises(FlowRunError) as caught:
        flow.run()
    assert caught.value.result.materialized == ("big",)
    failed = flow.history("broken")[0]
    assert failed.status == "failed" and "no good" in (failed.error or "")
    stored = flow.history("big")[0]
    assert failed.upstream_versions == {"big": stored.data_version}
    assert failed.started_at < stored.ended_at  # it failed while big was being stored


def test_ctrl_c_in_an_early_downstream_keeps_the_upstream(tmp_path):
    @asset
    def big():
        return big_bytes()

    @asset
    def stopped(big):
        raise KeyboardInterrupt

    flow = Flow(["stopped"], store=Store(tmp_path / "s"))
    with pytest.raises(KeyboardInterrupt):
        flow.run()
    assert flow.runs()[0].status == "interrupted"
    assert flow.status()["big"].state == "fresh" and flow.store.verify().ok
    assert not list((tmp_path / "s" / "objects").rglob("*.partial"))


CHILD = """
import os, sys, time
from kazeflow import Flow, Store, asset

def log(name):
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (name + "\\n").encode())
    os.close(fd)

@asset
def big():
    log("big")
    return bytearray(range(256)) * ((32 << 20) // 256)

@asset
def total(big):
    log("total")
    time.sleep(0.5)  # others reuse big meanwhile, and then want total's key
    return len(big)

while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
print(Flow(["total"], store=Store(sys.argv[1])).run()["total"])
"""


def test_concurrent_runs_compute_an_early_started_asset_once(tmp_path):
    script, log, go = tmp_path / "flow.py", tmp_path / "calls.log", tmp_path / "go"
    script.write_text(CHILD)
    children = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "s"), str(log),
                                  str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(3)]
    time.sleep(0.5)  # all imported and waiting
    go.touch()
    outputs = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(BIG)}
    assert Counter(log.read_text().split()) == {"big": 1, "total": 1}
    assert Store(tmp_path / "s").verify().ok


@pytest.mark.parametrize("size", [1_000, 1 << 20, BIG])
def test_a_value_changed_once_written_is_stored_as_written(store, size):
    value = bytearray(os.urandom(size))
    writing = store.objects.start_write(value)
    original = bytes(value)
    value[:] = bytes(size)
    pending = writing.finish()
    store.objects.commit([pending])
    assert store.objects.load(pending.data_version) == original  # load verifies the hash


def test_an_abandoned_write_leaves_nothing_behind(store):
    store.objects.start_write(big_bytes()).abandon()
    assert [p for p in Path(store.objects.root).rglob("*") if p.is_file()] == []
