"""The garbage collector is paused for kazeflow's bookkeeping only: assets run with the
collector as the user had it, and it is restored afterwards."""

from __future__ import annotations

import gc

import pytest

from kazeflow import Flow, asset
from kazeflow.running import _gcpause


@pytest.fixture
def seen():
    """What each asset saw of the collector (restored to on after the test)."""
    states: dict[str, bool] = {}
    yield states
    gc.enable()


def _flow(seen, store):
    @asset
    def first():
        seen["first"] = gc.isenabled()
        return 1

    @asset
    def second(first):
        seen["second"] = gc.isenabled()
        return first + 1

    return Flow(["second"], store=store)


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_assets_run_with_the_collector_on_and_it_stays_on(seen, store, executor):
    assert gc.isenabled()
    flow = _flow(seen, store)
    flow.run(executor=executor)
    assert seen == {"first": True, "second": True}
    assert gc.isenabled()
    flow.status()
    assert gc.isenabled()


def test_a_collector_the_user_turned_off_stays_off(seen, store):
    gc.disable()
    flow = _flow(seen, store)
    flow.run()
    assert seen == {"first": False, "second": False}
    assert not gc.isenabled()


def test_the_collector_is_restored_when_an_asset_fails(seen, store):
    @asset
    def broken():
        seen["broken"] = gc.isenabled()
        raise ValueError("no")

    with pytest.raises(Exception, match="no"):
        Flow(["broken"], store=store).run()
    assert seen == {"broken": True} and gc.isenabled()


def test_bookkeeping_triggers_no_collection(store):
    names = [f"n{i}" for i in range(300)]
    for i, name in enumerate(names):
        asset(name=name, deps=names[max(0, i - 2):i])(lambda: 1)
    flow = Flow(names, store=store)
    flow.run()
    during = []  # collections while kazeflow was busy with its own bookkeeping
    gc.callbacks.append(lambda phase, info: during.append(info["generation"])
                        if _gcpause._bookkeeping else None)
    try:
        flow.status()
        flow.run()  # nothing to do: bookkeeping only
    finally:
        gc.callbacks.pop()
    assert during == []
