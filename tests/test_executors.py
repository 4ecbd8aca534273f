"""Parallel executors: the same results, records and guarantees as a sequential run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kazeflow import Flow, FlowRunError, KazeflowError, Store, asset
from kazeflow.config import Config

EXECUTORS = ["sequential", "threads", "processes"]


def diamond(pause: float = 0.0):
    """source -> (left, right) -> joined; left and right may sleep ``pause``."""

    @asset(config_schema=Config)
    def source(config):
        return list(range(config.get("n", 5)))

    @asset
    def left(source, context):
        time.sleep(pause)
        context.add_metadata(rows=len(source))
        return [x * 2 for x in source]

    @asset
    def right(source):
        time.sleep(pause)
        return sum(source)

    @asset
    def joined(left, right):
        return {"left": left, "right": right}

    return [source, left, right, joined]


def wide(pause: float = 0.0):
    """Six independent leaves and one asset that sums them."""

    def leaf(i):
        def fn():
            time.sleep(pause)
            return i * i
        return asset(name=f"leaf{i}", code_version="1")(fn)

    leaves = [leaf(i) for i in range(6)]

    @asset
    def total(leaf0, leaf1, leaf2, leaf3, leaf4, leaf5):
        return leaf0 + leaf1 + leaf2 + leaf3 + leaf4 + leaf5

    return [*leaves, total]


def _facts(flow: Flow, result) -> dict:
    """What must not depend on the executor: values, outcomes, records and status."""
    return {
        "values": dict(result),
        "materialized": result.materialized,
        "reused": result.reused,
        "records": sorted((m.asset_name, m.status, m.cache_key, m.data_version,
                           dict(m.upstream_versions), dict(m.user_metadata))
                          for m in flow.history()),
        "status": {n: s.state for n, s in flow.status().items()},
    }


@pytest.mark.parametrize("shape", [diamond, wide])
def test_every_executor_gives_identical_results_history_and_status(tmp_path, shape):
    facts = {}
    for executor in EXECUTORS:
        flow = Flow(assets=shape(), store=Store(tmp_path / executor))
        first = flow.run(executor=executor, max_workers=3)
        facts[executor] = _facts(flow, first)
        second = flow.run(executor=executor, max_workers=3)
        assert second.materialized == () and set(second.reused) == set(flow.asset_names)
        assert dict(second) == dict(first)
    assert facts["threads"] == facts["sequential"]
    assert facts["processes"] == facts["sequential"]


def test_a_change_reruns_the_same_assets_whichever_executor(tmp_path):
    for executor in EXECUTORS:
        flow = Flow(assets=diamond(), store=Store(tmp_path / executor))
        flow.run(executor=executor)
        again = flow.run(config={"source": {"n": 3}}, executor=executor)
        assert again.materialized == ("source", "left", "right", "joined"), executor
        assert again["joined"] == {"left": [0, 2, 4], "right": 3}


def broken_branch():
    """source -> (bad -> after_bad) and (good -> after_good)."""

    @asset
    def source():
        return 10

    @asset
    def bad(source):
        return source / 0

    @asset
    def after_bad(bad):
        return bad

    @asset
    def good(source):
        time.sleep(0.2)
        return source + 1

    @asset
    def after_good(good):
        return good + 1

    return [source, bad, after_bad, good, after_good]


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_failure_stops_its_downstream_only_as_in_a_sequential_run(tmp_path, executor):
    outcomes = {}
    for name in ("sequential", executor):
        flow = Flow(assets=broken_branch(), store=Store(tmp_path / name))
        with pytest.raises(FlowRunError) as info:
            flow.run(executor=name, max_workers=2)
        result = info.value.result
        assert result["after_good"] == 12
        failed = flow.history("bad")[0]
        assert failed.status == "failed" and "ZeroDivisionError" in failed.error
        assert isinstance(info.value.errors["bad"], ZeroDivisionError)
        assert flow.runs()[0].status == "failed"
        outcomes[name] = (str(info.value), result.failed, result.skipped,
                          result.materialized)
    assert outcomes[executor] == outcomes["sequential"]


def dying():
    @asset
    def source():
        return 1

    @asset
    def crash(source):
        os.kill(os.getpid(), signal.SIGKILL)

    @asset
    def after_crash(crash):
        return crash

    @asset
    def exits(source):
        os._exit(3)

    @asset
    def survivor(source):
        time.sleep(0.3)
        return source + 1

    return [source, crash, after_crash, exits, survivor]


def test_a_killed_worker_fails_its_asset_only_and_the_run_goes_on(tmp_path):
    flow = Flow(assets=dying(), store=Store(tmp_path / "s"))
    started = time.monotonic()
    with pytest.raises(FlowRunError) as info:
        flow.run(executor="processes", max_workers=2)
    assert time.monotonic() - started < 30
    result = info.value.result
    assert result.failed == {
        "crash": "asset 'crash': worker process died (exit code -9, SIGKILL)",
        "exits": "asset 'exits': worker process died (exit code 3)"}
    assert result.skipped == {"after_crash": "not run: upstream 'crash' failed"}
    assert result["survivor"] == 2
    assert flow.history("crash")[0].status == "failed"
    assert flow.runs()[0].status == "failed"


def _intervals(flow: Flow) -> dict[str, tuple[float, float]]:
    return {m.asset_name: (m.started_at, m.ended_at) for m in flow.history()}


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_no_asset_starts_before_its_upstreams_end_and_branches_overlap(tmp_path, executor):
    flow = Flow(assets=diamond(pause=0.4), store=Store(tmp_path / "s"))
    flow.run(executor=executor, max_workers=2)
    spans = _intervals(flow)
    for item in flow.assets:
        for dep in item.deps:
            assert spans[item.name][0] >= spans[dep][1], (item.name, dep)
    (l0, l1), (r0, r1) = spans["left"], spans["right"]
    assert l0 < r1 and r0 < l1  # independent branches ran at the same time


def test_a_pool_bounds_how_many_of_its_assets_run_at_once(tmp_path):
    def heavy(i):
        def fn():
            time.sleep(0.15)
            return i
        return asset(name=f"heavy{i}", pool="memory")(fn)

    assets = [heavy(i) for i in range(4)]

    @asset
    def light():
        time.sleep(0.3)
        return "light"

    flow = Flow(assets=[*assets, light], store=Store(tmp_path / "s"))
    flow.run(executor="threads", max_workers=4, pools={"memory": 1})
    spans = sorted(v for k, v in _intervals(flow).items() if k.startswith("heavy"))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end
    s0, s1 = _intervals(flow)["light"]
    assert s0 < spans[0][1]  # other assets still run beside the pool


@pytest.mark.parametrize("executor, nap", [("processes", 30), ("threads", 1)])
def test_ctrl_c_stops_the_workers_and_records_the_run_interrupted(tmp_path, executor, nap):
    @asset
    def quick():
        return 1

    @asset
    def interrupted(quick):
        time.sleep(0.3)
        raise KeyboardInterrupt

    @asset
    def slow():
        time.sleep(nap)
        return 2

    flow = Flow(assets=[quick, interrupted, slow], store=Store(tmp_path / "s"))
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        flow.run(executor=executor, max_workers=3)
    assert time.monotonic() - started < 20
    run = flow.runs()[0]
    assert run.status == "interrupted"
    assert [m.asset_name for m in flow.history()] == ["quick"]
    assert flow.status()["quick"].state == "fresh"


def test_threads_keep_refusing_a_flow_run_inside_an_asset(tmp_path):
    @asset
    def inner():
        return 1

    @asset
    def outer():
        return Flow([inner], store=Store(tmp_path / "s")).run()

    flow = Flow(assets=[outer], store=Store(tmp_path / "s"))
    with pytest.raises(FlowRunError, match="called Flow.run while being materialized"):
        flow.run(executor="threads")


@pytest.mark.parametrize("kwargs, message", [
    ({"executor": "gpu"}, "'sequential', 'threads', 'processes'"),
    ({"executor": "threads", "max_workers": 0}, "max_workers=0"),
    ({"executor": "threads", "pools": {"gpu": 0}}, "pools['gpu'] = 0"),
])
def test_bad_executor_arguments_are_refused_before_anything_runs(tmp_path, kwargs, message):
    calls = []

    @asset
    def one():
        calls.append(1)
        return 1

    flow = Flow(assets=[one], store=Store(tmp_path / "s"))
    with pytest.raises(KazeflowError, match=message.replace("[", r"\[").replace("(", r"\(")):
        flow.run(**kwargs)
    assert calls == []


def test_a_bad_pool_name_is_a_definition_error():
    with pytest.raises(KazeflowError, match="pool must be a non-empty name"):
        @asset(pool="")
        def unpooled():
            return 1


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_corrupt_upstream_found_by_a_worker_is_made_again(tmp_path, executor):
    flow = Flow(assets=diamond(), store=Store(tmp_path / "s"))
    flow.run(executor=executor)
    source = flow.history("source")[0]
    path = flow.store.objects.path(source.data_version)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # same size: only a re-hash notices
    path.write_bytes(bytes(data))
    again = flow.run(force=["left"], executor=executor)
    assert set(again.materialized) == {"source", "left"}
    assert again["left"] == [0, 2, 4, 6, 8] and again["joined"]["right"] == 10
    assert flow.store.verify().ok


SIGINT_CHILD = """
import os, sys, time
from kazeflow import Flow, Store, asset

@asset
def quick():
    return 1

@asset
def slow(quick):
    print("worker", os.getpid(), flush=True)
    time.sleep(60)
    return 2

if __name__ == "__main__":
    print("parent", os.getpid(), flush=True)
    try:
        Flow(assets=[slow], store=Store(sys.argv[1])).run(executor="processes",
                                                          max_workers=2)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def _start_child(tmp_path: Path) -> subprocess.Popen[str]:
    """The SIGINT_CHILD flow in its own process group; it prints its pid, then a worker's."""
    script = tmp_path / "flows.py"
    script.write_text(SIGINT_CHILD)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "s")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"})


def test_sigint_to_the_run_kills_its_workers_and_records_it_interrupted(tmp_path):
    proc = _start_child(tmp_path)
    try:
        parent = int(proc.stdout.readline().split()[1])
        worker = int(proc.stdout.readline().split()[1])
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: its threads' stacks
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"the run did not stop within 30 s of SIGINT; its stderr:\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert parent == proc.pid and "interrupted" in out
    deadline = time.monotonic() + 5
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)
    store = Store(tmp_path / "s")
    assert store.runs()[0].status == "interrupted"
    assert [m.asset_name for m in store.history()] == ["quick"]


def test_workers_of_a_killed_run_exit_instead_of_running_on(tmp_path):
    proc = _start_child(tmp_path)
    try:
        proc.stdout.readline()
        worker = int(proc.stdout.readline().split()[1])
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        proc.stdout.close()
        proc.stderr.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_asset_starts_when_its_own_upstreams_are_done_not_level_by_level(tmp_path):
    @asset
    def slow():
        time.sleep(0.6)
        return 1

    @asset
    def fast():
        return 2

    @asset
    def after_fast(fast):
        return fast + 1

    flow = Flow(assets=[slow, fast, after_fast], store=Store(tmp_path / "s"))
    flow.run(executor="threads", max_workers=2)
    spans = _intervals(flow)
    assert spans["after_fast"][1] < spans["slow"][1]


def test_executor_objects_can_be_given_and_reused_across_runs(tmp_path):
    import concurrent.futures

    from kazeflow.executors import ProcessExecutor

    pool = ProcessExecutor(2)
    try:
        for i in range(2):
            flow = Flow(assets=diamond(), store=Store(tmp_path / f"p{i}"))
            assert flow.run(executor=pool)["joined"]["right"] == 10
    finally:
        pool.shutdown()
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        flow = Flow(assets=diamond(), store=Store(tmp_path / "t"))
        assert flow.run(executor=threads)["joined"]["right"] == 10
        assert threads.submit(int, "3").result() == 3  # the run left it usable


def test_two_parallel_runs_on_one_store_execute_each_asset_once(tmp_path):
    import threading

    calls: list[str] = []

    def leaf(i):
        def fn():
            calls.append(f"leaf{i}")
            time.sleep(0.1)
            return i
        return asset(name=f"leaf{i}", code_version="1")(fn)

    leaves = [leaf(i) for i in range(4)]

    @asset
    def total(leaf0, leaf1, leaf2, leaf3):
        calls.append("total")
        return leaf0 + leaf1 + leaf2 + leaf3

    results, errors = [], []

    def one_run():
        try:
            flow = Flow(assets=[*leaves, total], store=Store(tmp_path / "s"))
            results.append(dict(flow.run(executor="threads", max_workers=2)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    runs = [threading.Thread(target=one_run) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(60)
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert sorted(calls) == sorted([f"leaf{i}" for i in range(4)] + ["total"])


def test_worker_processes_write_and_read_large_arrays_out_of_band(tmp_path):
    import numpy as np

    @asset
    def matrix():
        return np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000)  # 8 MB

    @asset
    def column_sums(matrix):
        return matrix.sum(axis=0)

    with Store(tmp_path / "store") as store:
        result = Flow(["column_sums"], store=store).run(executor="processes",
                                                       max_workers=2)
        expected = np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000).sum(axis=0)
        assert np.array_equal(result["column_sums"], expected)
        assert np.array_equal(result["matrix"][3], np.arange(3000, 4000))
        record = store.materialization("matrix")
        assert store.objects.path(record.data_version).read_bytes().endswith(
            b"KZFOOB1\n")
        assert store.verify().ok
