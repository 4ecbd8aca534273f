"""Failing assets, unpicklable results and recursive runs."""

import threading

import pytest

from kazeflow import Flow, FlowRunError, KazeflowError, asset


def branches(calls, broken=True):
    """source -> (bad -> after_bad) and (good) -> both."""

    @asset
    def source():
        calls.append("source")
        return 10

    @asset
    def bad(source):
        calls.append("bad")
        if broken:
            return source / 0
        return source / 2

    @asset
    def after_bad(bad):
        calls.append("after_bad")
        return bad + 1

    @asset
    def good(source):
        calls.append("good")
        return source + 1


def test_failure_stops_downstream_and_keeps_independent_branches(any_store):
    calls = []
    branches(calls)
    flow = Flow(["after_bad", "good"], store=any_store)
    with pytest.raises(FlowRunError) as info:
        flow.run()
    err = info.value
    assert isinstance(err, KazeflowError)
    assert "asset 'bad' failed: ZeroDivisionError: division by zero" in str(err)
    assert "'after_bad'" in str(err)
    result = err.result
    assert set(result.failed) == {"bad"} and set(result.skipped) == {"after_bad"}
    assert result["good"] == 11 and result["source"] == 10
    assert "after_bad" not in calls
    failed = flow.history("bad")[0]
    assert failed.status == "failed" and failed.data_version is None
    assert "Traceback" in failed.error and "ZeroDivisionError" in failed.error
    assert flow.runs()[0].status == "failed" and flow.runs()[0].n_failed == 1
    assert flow.status()["bad"].state == "missing"


def test_fixing_the_asset_reruns_only_the_failed_part(any_store):
    calls = []
    branches(calls)
    flow = Flow(["after_bad", "good"], store=any_store)
    with pytest.raises(FlowRunError):
        flow.run()
    calls.clear()
    branches(calls, broken=False)
    result = Flow(["after_bad", "good"], store=any_store).run()
    assert calls == ["bad", "after_bad"] and result["after_bad"] == 6.0
    assert set(result.reused) == {"source", "good"}


def test_unpicklable_result_names_asset_and_type_and_stores_nothing(any_store):
    @asset
    def holder():
        return {"lock": threading.Lock()}

    @asset
    def stream():
        return (i for i in range(3))

    handles = []

    @asset
    def handle():
        handles.append(open(__file__))
        return handles[-1]

    flow = Flow(["holder", "stream", "handle"], store=any_store)
    with pytest.raises(FlowRunError) as info:
        flow.run()
    handles[0].close()
    message = str(info.value)
    assert "asset 'holder'" in message and "'_thread.lock'" in message
    assert "asset 'stream'" in message and "instead of a generator" in message
    assert "asset 'handle'" in message and "not an open file" in message
    objects = any_store.root / "objects"
    assert [p for p in objects.rglob("*") if p.is_file()] == []
    assert all(m.status == "failed" for m in flow.history())


def test_keyboard_interrupt_records_the_run_as_interrupted(any_store):
    @asset
    def done():
        return 1

    @asset
    def stopped(done):
        raise KeyboardInterrupt

    flow = Flow(["stopped"], store=any_store)
    with pytest.raises(KeyboardInterrupt):
        flow.run()
    assert flow.runs()[0].status == "interrupted"
    assert flow.status()["done"].state == "fresh"
