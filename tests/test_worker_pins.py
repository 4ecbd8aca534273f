"""An object a worker process wrote stays pinned against gc until its RunResult is read.

With ``executor="processes"`` a worker writes the asset's object and sends back only its
data version, so the calling process's ``RunResult`` loads the value lazily, from the
store, when it is first read. Until then the run's pin file keeps the object against a
``gc(keep_last=1)`` that runs elsewhere (another Store handle, another process) once the
result's record is no longer the newest; once every value is read, or the result is
dropped, the pin goes and a further gc removes the object.
"""

from __future__ import annotations

import gc as garbage
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kazeflow import Config, Flow, Store, asset

GC_CODE = """
import json, sys
from kazeflow import Store
with Store(sys.argv[1], create=False) as store:
    report = store.gc(keep_last=1)
print(json.dumps({"records": report.records_removed, "objects": report.objects_removed}))
"""


def gc_in_another_process(root: Path) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", GC_CODE, str(root)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def gc_in_another_handle(root: Path) -> dict[str, int]:
    with Store(root, create=False) as other:
        report = other.gc(keep_last=1)
    return {"records": report.records_removed, "objects": report.objects_removed}


GC_ELSEWHERE: dict[str, Callable[[Path], dict[str, int]]] = {
    "another-process": gc_in_another_process, "another-handle": gc_in_another_handle}


def expected(n: int) -> str:
    return "v" * 1000 + str(n)


def versions_flow(store: Store) -> Flow:
    @asset(config_schema=Config)
    def value(config):
        return expected(config.get("n", 0))

    @asset
    def length(value):
        return len(value)

    return Flow(["length"], store=store)


def run(flow: Flow, n: int) -> Any:
    return flow.run(config={"value": {"n": n}}, executor="processes", max_workers=1)


def made_by(flow: Flow, result: Any, asset_name: str) -> str:
    """The data version of the record ``result``'s run made for ``asset_name``."""
    [record] = [m for m in flow.history(asset_name) if m.run_id == result.run_id]
    assert record.status == "materialized" and record.data_version
    return record.data_version


def pin_file(store: Store, result: Any) -> Path:
    return store.root / "pins" / f"{result.run_id}.pin"


@pytest.mark.parametrize("where", [
    pytest.param("another-process", marks=pytest.mark.slow), "another-handle"])
def test_a_worker_made_object_stays_pinned_until_its_result_is_read(store, where):
    collect = GC_ELSEWHERE[where]
    flow = versions_flow(store)
    run(flow, 0)
    held = run(flow, 1)  # held, not read: value and length load lazily
    assert set(held.materialized) == {"value", "length"}
    held_dv = made_by(flow, held, "value")
    path = store.objects.path(held_dv)
    newer = run(flow, 2)  # the held result's record is no longer the newest
    assert newer["value"] == expected(2) and newer["length"] == 1001
    assert not pin_file(store, newer).exists()  # all read: only `held` pins anything

    report = collect(store.root)
    # the n=0 and n=1 records of value and length go; only the pin keeps held's object
    assert report["records"] == 4
    assert not any(m.run_id == held.run_id for m in flow.history())
    assert path.is_file(), "gc removed an object that an unread RunResult refers to"
    assert held["length"] == 1001  # one value read, one still to load
    collect(store.root)
    assert path.is_file(), "gc removed an object before its RunResult read it"
    assert pin_file(store, held).exists()

    assert held["value"] == expected(1)  # loaded (and verified) from the store
    assert not pin_file(store, held).exists()  # everything read: unpinned
    report = collect(store.root)
    assert report["objects"] >= 1 and not path.exists()  # now gc may remove it
    assert store.verify().ok and store.load("value") == expected(2)


def test_a_dropped_result_unpins_the_worker_made_object(store):
    flow = versions_flow(store)
    run(flow, 0)
    held = run(flow, 1)
    held_dv = made_by(flow, held, "value")
    path, pins = store.objects.path(held_dv), pin_file(store, held)
    newer = run(flow, 2)
    dict(newer)  # read it all
    gc_in_another_handle(store.root)
    assert path.is_file(), "gc removed an object that an unread RunResult refers to"
    assert pins.exists()
    del held
    garbage.collect()  # a result nobody can read any more lets go of its pins
    report = gc_in_another_handle(store.root)
    assert report["objects"] >= 1 and not path.exists()
    assert not pins.exists() and store.verify().ok
