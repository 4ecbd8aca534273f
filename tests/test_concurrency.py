"""Concurrency: processes and threads sharing one store, and gc racing the runs.

The promise (issue): N processes, or N threads sharing one ``Flow``, running the same
flow against one store all succeed, never see "database is locked", leave a consistent
store and get identical results.

Duplicate work: an asset executes under an exclusive lease on its cache key (a ``flock``
held until its row is committed). A run that found the lease taken, or that took a lease
file another run created, re-checks the store and reuses what that run made. So each
asset executes once overall, also for a run that decided "stale" just before another
committed (tested with a run stopped between its decision and its lease). The bound that
would remain if a lease could not apply (another host without shared locks) is at most
once per run and asset; every scenario asserts that too. ``benchmarks/soak.py`` runs
longer variants. Each scenario runs on SQLite and on PostgreSQL metadata (there leases
are advisory locks in the database).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _flows
import pytest
from _flows import (
    LOG_ENV,
    NAP_ENV,
    Child,
    check_store,
    digest,
    opened,
    read_log,
)

SLOW = [a.name for a in _flows.FLOWS["slow"]]
SLOW_VALUES = {"s_first": [1, 2, 3], "s_second": [10, 20, 30], "s_third": [101, 102, 103],
               "s_fourth": 366}
SLOW_DIGESTS = {name: digest(value) for name, value in SLOW_VALUES.items()}
NAP = "0.3"


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block (read by the assets in this process)."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Together:
    """What concurrent runs of the slow flow did."""

    root: Path
    reports: list[dict[str, Any]]  # per run: materialized, reused, digests
    errors: list[str]  # stderr of each child, or exceptions of threads
    executions: Counter[str]
    metadata: str | None = None  # the metadata URL (None: the store's SQLite file)

    @property
    def duplicates(self) -> int:
        return sum(self.executions.values()) - len(SLOW)


def _metadata_env(metadata: str | None) -> dict[str, str]:
    """What a child needs in its environment to use the ``metadata`` URL."""
    return {} if metadata is None else {"KAZEFLOW_METADATA_URL": metadata}


def processes_scenario(tmp: Path, processes: int, metadata: str | None) -> Together:
    """``processes`` children on one fresh store, released at once by a start file.

    The store is created by the children themselves (their first opens race too).
    """
    barrier, log = tmp / "go", tmp / "executions.log"
    spec = {"store": str(tmp / "store"), "flow": "slow", "barrier": str(barrier),
            "open_early": False}
    env = {LOG_ENV: str(log), NAP_ENV: NAP, **_metadata_env(metadata)}
    with contextlib.ExitStack() as stack:
        children = [stack.enter_context(Child(spec, env)) for _ in range(processes)]
        for child in children:
            child.expect("waiting")
        barrier.touch()
        reports = [child.result() for child in children]
    return Together(tmp / "store", reports, [c.error_output() for c in children],
                    read_log(log), metadata)


def threads_scenario(tmp: Path, threads: int, metadata: str | None) -> Together:
    """``threads`` threads run one ``Flow`` object (store not yet opened) at once."""
    log = tmp / "executions.log"
    start = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[str] = []

    with environment(**{LOG_ENV: str(log), NAP_ENV: NAP}), \
            opened("slow", tmp / "store", metadata) as flow:
        def work(i: int) -> None:
            start.wait()
            try:
                results[i] = flow.run()
            except BaseException as exc:  # reported by the assertions
                errors.append(f"{type(exc).__name__}: {exc}")

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not any(w.is_alive() for w in workers)
        reports = [{"materialized": list(r.materialized), "reused": list(r.reused),
                    "digests": {name: digest(r[name]) for name in r}}
                   for r in results if r is not None]
    return Together(tmp / "store", reports, errors, read_log(log), metadata)


def assert_all_succeeded_alike(together: Together, runs: int) -> None:
    """No error, identical results, a consistent store; at most one execution per run."""
    assert not [e for e in together.errors if "Error" in e or "locked" in e], together.errors
    assert len(together.reports) == runs
    for report in together.reports:
        assert report["digests"] == SLOW_DIGESTS
        assert sorted(report["materialized"] + report["reused"]) == sorted(SLOW)
        assert len(set(report["reused"])) == len(report["reused"])
    assert set(together.executions) == set(SLOW)
    assert max(together.executions.values()) <= runs, together.executions
    check_store(together.root, together.metadata)
    with opened("slow", together.root, together.metadata) as flow:
        report = flow.store.verify()
        assert report.ok and not report.orphaned, report
        assert [run.status for run in flow.runs()] == ["succeeded"] * runs


def assert_each_asset_once(together: Together) -> None:
    assert together.executions == {name: 1 for name in SLOW}
    assert sum(len(r["materialized"]) for r in together.reports) == len(SLOW)


# ---------------------------------------------------------------- processes

@pytest.fixture(scope="module")
def four_processes(tmp_path_factory: pytest.TempPathFactory, new_metadata) -> Together:
    return processes_scenario(tmp_path_factory.mktemp("processes"), 4, new_metadata())


@pytest.mark.slow
def test_processes_running_one_flow_together_all_succeed_alike(four_processes):
    assert_all_succeeded_alike(four_processes, runs=4)


@pytest.mark.slow
def test_processes_running_one_flow_together_execute_each_asset_once(four_processes):
    assert_each_asset_once(four_processes)


# ---------------------------------------------------------------- threads

@pytest.fixture(scope="module")
def four_threads(tmp_path_factory: pytest.TempPathFactory, new_metadata) -> Together:
    return threads_scenario(tmp_path_factory.mktemp("threads"), 4, new_metadata())


def test_threads_sharing_one_flow_all_succeed_alike(four_threads):
    assert_all_succeeded_alike(four_threads, runs=4)


def test_threads_sharing_one_flow_execute_each_asset_once(four_threads):
    assert_each_asset_once(four_threads)


# ---------------------------------------------------------------- a late decider

def late_decider_scenario(tmp: Path, metadata: str | None) -> Together:
    """``late`` stops at its lease request for s_first (it has decided s_first is stale);
    ``early`` then runs the flow to completion; then ``late`` goes on."""
    root, log, release = tmp / "store", tmp / "executions.log", tmp / "release"
    env = {LOG_ENV: str(log), NAP_ENV: "0.05", **_metadata_env(metadata)}
    late_spec = {"store": str(root), "flow": "slow", "stop": "s_first:lease",
                 "action": "hold", "release": str(release)}
    with Child(late_spec, env) as late, Child({"store": str(root), "flow": "slow"},
                                              env) as early:
        assert late.event() == "s_first:lease"
        early.result()
        release.touch()
        late.result()
    return Together(root, [early.report, late.report],
                    [early.error_output(), late.error_output()], read_log(log), metadata)


@pytest.fixture(scope="module")
def late_decided(tmp_path_factory: pytest.TempPathFactory, new_metadata) -> Together:
    return late_decider_scenario(tmp_path_factory.mktemp("late"), new_metadata())


def test_duplicate_work_is_bounded_to_once_per_run(late_decided):
    assert_all_succeeded_alike(late_decided, runs=2)


def test_a_run_that_decided_before_another_committed_reuses_its_result(late_decided):
    assert_each_asset_once(late_decided)
    assert late_decided.reports[1]["materialized"] == []


# ---------------------------------------------------------------- gc racing runs

def gc_scenario(tmp: Path, runs: int, *, seconds: float = 2.0, runner_processes: int = 0,
                collectors: int = 1, metadata: str | None = None) -> None:
    """gc(keep_last=1) in a loop in ``collectors`` processes while this process runs the
    gc flow with changing config (``runs`` times and for ``seconds`` at least; and
    ``runner_processes`` more, ``runs`` times each): every value of every run loads and is
    right, and the store verifies at the end."""
    root, stop, env = tmp / "store", tmp / "stop", _metadata_env(metadata)
    with opened("gc", root, metadata) as flow, contextlib.ExitStack() as stack:
        flow.store.metadata  # noqa: B018 - created before the others open it
        gcs = [stack.enter_context(Child({"mode": "gc", "store": str(root),
                                          "stop_file": str(stop)}, env))
               for _ in range(collectors)]
        runners = [stack.enter_context(Child({"mode": "gc_runs", "store": str(root),
                                              "runs": runs, "offset": n + 1}, env))
                   for n in range(runner_processes)]
        for child in gcs + runners:
            child.expect("waiting")
        deadline, i = time.monotonic() + seconds, -1
        while i + 1 < runs or time.monotonic() < deadline:
            i += 1
            result = flow.run(config=_flows.gc_config(i))
            values, expected = {name: result[name] for name in result}, _flows.gc_expected(i)
            wrong = sorted(name for name in expected if values.get(name) != expected[name])
            assert not wrong, (f"run {i}: wrong {wrong}; reused {result.reused}, "
                               f"materialized {result.materialized}")
        problems = [p for child in runners for p in child.result(600)["problems"]]
        stop.touch()
        totals = [child.result() for child in gcs]
        assert not problems, problems
        assert all(t["loops"] > 1 for t in totals), totals
        assert sum(t["records"] for t in totals) > 0, totals
        check_store(root, metadata)
        assert flow.store.verify().ok
        for record in flow.history():  # what gc kept all loads
            if record.status == "materialized":
                flow.load(record.asset_name, record.id)


def test_gc_in_a_loop_never_breaks_a_concurrent_run(tmp_path, any_metadata):
    gc_scenario(tmp_path, runs=20, metadata=any_metadata)


#: The gc flow's first config with only g_offset changed: g_scaled stays fresh.
OFFSET_CHANGED = {"g_scaled": {"m": 0}, "g_offset": {"o": 1}}


def test_an_upstream_lost_and_remade_by_another_run_still_feeds_the_downstream(tmp_path):
    root, release, aside = tmp_path / "store", tmp_path / "release", tmp_path / "aside"
    spec = {"store": str(root), "flow": "gc", "config": OFFSET_CHANGED,
            "stops": [["g_total:materialize", "hold", str(release)],
                      ["g_scaled:lease", "notify", None]]}
    with opened("gc", root) as flow:
        flow.run(config=_flows.gc_config(0))
        record = flow.history("g_scaled")[0]
        assert record.data_version is not None
        path = root / "objects" / record.data_version[:2] / record.data_version[2:]
        with Child(spec) as late:
            assert late.event() == "g_total:materialize"  # g_scaled was decided fresh
            path.rename(aside)  # then a gc removed its object,
            maker = flow.store.lease(record.cache_key)
            maker.acquire()  # and another run set out to make it again
            release.touch()
            assert late.event() == "g_scaled:lease"  # late found it gone: it waits ...
            time.sleep(0.3)
            aside.rename(path)  # ... while the other run makes it again
            maker.release()
            report = late.result()
    expected = _flows.gc_expected(3)  # the values of OFFSET_CHANGED
    assert report["digests"] == {name: digest(value) for name, value in expected.items()}
    assert len(report["reused"]) == len(set(report["reused"])), report["reused"]


def test_what_a_run_reused_still_loads_after_a_concurrent_gc(tmp_path, any_metadata):
    root, release = tmp_path / "store", tmp_path / "release"
    spec = {"store": str(root), "flow": "gc", "config": _flows.gc_config(0),
            "stop": "run:finish_run", "action": "hold", "release": str(release)}
    with opened("gc", root, any_metadata) as flow:
        flow.run(config=_flows.gc_config(0))
        with Child(spec, _metadata_env(any_metadata)) as reader:
            reader.event()  # everything reused; values not read yet
            flow.run(config=_flows.gc_config(1))  # newer records of three assets
            flow.store.gc(keep_last=1)
            release.touch()
            report = reader.result()
    expected = _flows.gc_expected(0)
    assert report["digests"] == {name: digest(value) for name, value in expected.items()}
