"""Crashes: SIGKILL at many moments of a run, Ctrl-C, abandoned runs, leftover temp files.

Every crash happens to a real child interpreter running a flow from ``tests/_flows.py``;
the child stops at a chosen moment (see ``_flows.Watcher``) and the parent kills it, then
checks the store on disk with plain ``sqlite3`` and resumes the run in this interpreter.
``benchmarks/soak.py`` runs the same scenarios with every kill point.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _flows
import pytest
from _flows import DIAMOND_CONFIG, Child, check_store, digest, opened, raw_rows

DIAMOND = [a.name for a in _flows.FLOWS["diamond"]]
#: A later config that changes d_right, so d_right, d_joined and d_report re-run.
CHANGED_CONFIG = {**DIAMOND_CONFIG, "d_right": {"k": 4}}
#: Moments that every sweep must hit at least once (and one way of flushing objects).
REQUIRED_MOMENTS = {"body", "pickle", "write_returned", "replace", "record.commit",
                    "record.committed", "finish_run"}
FLUSHES = {"fsync", "syncfs", "fsync_dir"}
#: Objects are flushed one by one (fsync, fsync_dir) or as a batch (syncfs), depending on
#: how many a flush holds, which depends on timing: a flush target accepts either.
ANY_FLUSH = "|".join(sorted(FLUSHES))


# ---------------------------------------------------------------- helpers

@contextlib.contextmanager
def object_reads(objects_dir: Path) -> Iterator[list[Path]]:
    """Record every file under ``objects_dir`` that this process opens for reading."""
    real = builtins.open
    seen: list[Path] = []

    def spy(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and "r" in mode and \
                str(file).startswith(str(objects_dir)):
            seen.append(Path(file))
        return real(file, mode, *args, **kwargs)

    builtins.open = io.open = spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        builtins.open = io.open = real


def temps(root: Path) -> list[Path]:
    return sorted((root / "objects").glob("*.partial"))


def age(paths: Sequence[Path], seconds: float = 3600.0) -> None:
    """Make files look ``seconds`` old (past any grace period)."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def committed_by(root: Path, pid: int, metadata: str | None = None) -> set[str]:
    """Assets with a materialized row committed by the run of process ``pid``."""
    return {name for (name,) in raw_rows(
        root, metadata, "SELECT m.asset_name FROM materializations m JOIN runs r USING (run_id) "
              "WHERE r.pid = ? AND m.status = 'materialized'", pid)}


def raw_run_statuses(root: Path, metadata: str | None = None) -> dict[str, str]:
    return dict(raw_rows(root, metadata, "SELECT run_id, status FROM runs"))  # type: ignore[arg-type]


def moment(label: str) -> str:
    """``d_left+d_right:record.commit`` → ``record.commit``."""
    return label.rsplit(":", 1)[1]


@dataclass
class Sweep:
    """What a kill sweep hit and checked."""

    labels: list[str] = field(default_factory=list)
    reused_after_kill: dict[str, set[str]] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)  # targets a run ended without


# ---------------------------------------------------------------- the kill sweep

def prepare_template(tmp: Path, base_config: dict[str, Any] | None) -> Path:
    """An opened (migrated) store, optionally holding a finished run with ``base_config``."""
    template = tmp / "template"
    with opened("diamond", template) as flow:
        flow.store.metadata  # noqa: B018
        if base_config is not None:
            flow.run(config=base_config)
    return template


def kill_sweep(tmp: Path, *, config: dict[str, Any], base_config: dict[str, Any] | None = None,
               points: int | None = None, every_asset: bool = False,
               parallel: int = 2, nap: float = 0.03, required: frozenset[str] = frozenset(),
               new_metadata: Callable[[], str | None] = lambda: None) -> Sweep:
    """Kill a run of the diamond flow at many moments, each on a copy of one template store.

    An uninterrupted child run first lists the moments (and gives the reference results);
    then ``points`` of them (evenly spread, every kind of moment included, or when there
    are more kinds than points every ``required`` one; ``None``: all,
    and with ``every_asset`` each moment of a batch once per asset in it) are each run in
    a child that is SIGKILLed there. After each kill the store is checked on disk, the run
    is resumed here, and it must reuse exactly what was committed before (or before the
    killed run) and produce the reference results. Each asset naps ``nap`` seconds, so
    that a run commits in several batches and kills find some assets committed and
    others not.

    ``new_metadata`` gives each run's store its metadata URL (None: its SQLite file); a
    PostgreSQL store starts empty rather than from a copy of the template.
    """
    env = {_flows.NAP_ENV: str(nap)}

    def store_at(root: Path) -> tuple[str | None, dict[str, str]]:
        """A store at ``root`` as the template; its metadata and the env for children."""
        metadata = new_metadata()
        if metadata is None:
            shutil.copytree(template, root)
            return None, env
        assert base_config is None, "a PostgreSQL sweep starts from an empty store"
        return metadata, {**env, "KAZEFLOW_METADATA_URL": metadata}

    template = prepare_template(tmp, base_config)
    trace_root = tmp / "trace"
    trace_metadata, trace_env = store_at(trace_root)
    with Child({"store": str(trace_root), "flow": "diamond", "config": config},
               trace_env) as child:
        trace = child.result()
    reference = trace["digests"]
    reference_versions = check_store(trace_root, trace_metadata)
    fresh_before = set(trace["reused"])
    moments = _flows.targets(trace["events"]) if every_asset else list(dict.fromkeys(
        f"{label.split('+')[0].split(':')[0]}:{moment(label)}" for label in trace["events"]))
    chosen = choose_points(moments, points, required)

    sweep = Sweep()
    waiting: deque[tuple[int, Path, Child, str | None]] = deque()
    pending = deque(enumerate(chosen))
    try:
        while pending or waiting:
            while pending and len(waiting) < parallel:
                number, target = pending.popleft()
                root = tmp / f"kill{number:03d}"
                metadata, child_env = store_at(root)
                asset_name, kind = target.split(":")
                if kind in FLUSHES:
                    target = f"{asset_name}:{ANY_FLUSH}"
                spec = {"store": str(root), "flow": "diamond", "config": config,
                        "stop": target, "action": "pause"}
                waiting.append((number, root, Child(spec, child_env), metadata))
            number, root, child, metadata = waiting.popleft()
            with child:
                label = child.event_or_result()
                if label is None:  # batched differently: this moment did not happen
                    sweep.missed.append(child.spec["stop"])
                    shutil.rmtree(root)
                    continue
                child.kill()
            sweep.labels.append(label)
            reused = check_after_kill(root, child.pid, config, fresh_before, reference,
                                      reference_versions, clean_with_gc=number % 2 == 0,
                                      metadata=metadata)
            sweep.reused_after_kill[label] = reused
            shutil.rmtree(root)
    finally:
        for _, _, child, _ in waiting:
            child.close()
    return sweep


def choose_points(moments: list[str], points: int | None,
                  required: frozenset[str] = frozenset()) -> list[str]:
    """``points`` of ``moments`` in order: every kind once (when there is room, each at a
    different asset in turn; else each ``required`` kind at its last asset, which commits
    alone in every run however the others were batched), the rest evenly spread."""
    if points is None or points >= len(moments):
        return moments
    by_kind: dict[str, list[int]] = {}
    for index, target in enumerate(moments):
        by_kind.setdefault(moment(target), []).append(index)
    if points >= len(by_kind):
        picked = {found[n % len(found)] for n, found in enumerate(by_kind.values())}
    else:
        picked = {by_kind[kind][-1] for kind in required if kind in by_kind}
    spread = [int(i * len(moments) / points) for i in range(points)]
    for index in spread + list(range(len(moments))):
        if len(picked) >= points:
            break
        picked.add(index)
    return [moments[i] for i in sorted(picked)]


def check_after_kill(root: Path, pid: int, config: dict[str, Any], fresh_before: set[str],
                     reference: dict[str, str], reference_versions: dict[str, str],
                     clean_with_gc: bool, metadata: str | None = None) -> set[str]:
    """The whole crash contract for one killed run; returns what the resume reused."""
    check_store(root, metadata)  # no row points at a missing, short or corrupt object
    finished = fresh_before | committed_by(root, pid, metadata)
    with opened("diamond", root, metadata) as flow:
        running = {run_id for run_id, status in raw_run_statuses(root, metadata).items()
                   if status == "running"}
        shown = {run.run_id: run.status for run in flow.runs()}
        assert all(shown[run_id] in ("abandoned", "interrupted") for run_id in running), shown
        report = flow.store.verify()
        assert report.ok, report
        on_disk = [p for p in (root / "objects").glob("*/*") if p.parent.is_dir()]
        assert report.checked == len(on_disk)  # temp files are not objects

        with object_reads(root / "objects") as reads:
            result = flow.run(config=config)
        assert not [p for p in reads if p.name.endswith(".partial")], reads
        assert all(p.parent.parent == root / "objects" for p in reads), reads
        assert set(result.reused) == finished, (result.reused, finished)
        assert set(result.materialized) == set(DIAMOND) - finished
        assert {name: digest(result[name]) for name in result} == reference
        assert check_store(root, metadata) == reference_versions
        assert temps(root) == []  # the resume run removed the dead writer's temp files

        if clean_with_gc:
            assert flow.store.gc().temp_files_removed == 0
        else:
            again = flow.run(config=config)
            assert set(again.reused) == set(DIAMOND)
        assert flow.store.verify().ok
        assert {name: digest(flow.load(name, config=config)) for name in DIAMOND} == reference
    return set(result.reused)


def assert_sweep_covers(sweep: Sweep, minimum: int) -> None:
    assert len(set(sweep.labels)) >= minimum, sweep.labels
    missing = REQUIRED_MOMENTS - {moment(label) for label in sweep.labels}
    assert not missing, f"no kill at {missing}: {sweep.labels}"
    assert FLUSHES & {moment(label) for label in sweep.labels}, sweep.labels


# ---------------------------------------------------------------- the tests

@pytest.mark.slow
def test_sigkill_at_many_moments_of_a_fresh_run_loses_nothing_committed(tmp_path):
    sweep = kill_sweep(tmp_path, config=DIAMOND_CONFIG, points=24)
    assert_sweep_covers(sweep, minimum=20)
    # kills before anything committed resume from scratch, after the end reuse it all
    assert sweep.reused_after_kill[sweep.labels[0]] == set()
    assert sweep.reused_after_kill[sweep.labels[-1]] == set(DIAMOND)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_at_moments_of_a_fresh_run_on_postgresql_loses_nothing_committed(
        tmp_path, postgres_schemas):
    """The same contract with PostgreSQL metadata (leases and pins in the database);
    the moments are those of the objects and the run (commits are traced on SQLite)."""
    required = frozenset({"body", "pickle", "objects_committed"})
    sweep = kill_sweep(tmp_path, config=DIAMOND_CONFIG, points=10, required=required,
                       new_metadata=postgres_schemas)
    assert len(set(sweep.labels)) >= 8, sweep.labels
    assert required <= {moment(label) for label in sweep.labels}, sweep.labels
    assert sweep.reused_after_kill[sweep.labels[0]] == set()
    # each kill was checked by check_after_kill: the resume reused exactly what had
    # been committed and gave the reference results; some kills found work committed
    assert any(sweep.reused_after_kill.values()), sweep.reused_after_kill


@pytest.mark.slow
def test_sigkill_during_an_incremental_run_keeps_the_earlier_results(tmp_path):
    sweep = kill_sweep(tmp_path, config=CHANGED_CONFIG, base_config=DIAMOND_CONFIG, points=6)
    assert len(set(sweep.labels)) >= 5, sweep
    for reused in sweep.reused_after_kill.values():
        assert {"d_source", "d_left"} <= reused


def test_ctrl_c_records_the_run_interrupted_and_keeps_finished_assets(tmp_path, monkeypatch):
    root, log = tmp_path / "store", tmp_path / "executions.log"
    monkeypatch.setenv(_flows.LOG_ENV, str(log))
    env = {"KZTEST_NAP_S_SECOND": "120", _flows.LOG_ENV: str(log)}
    spec = {"store": str(root), "flow": "slow", "stop": "s_second:body", "action": "notify"}
    with Child(spec, env) as child:
        child.event()
        time.sleep(0.2)  # well inside the asset's nap
        code = child.kill(signal.SIGINT)
    assert code == -signal.SIGINT, child.diagnostics()
    assert "KeyboardInterrupt" in child.error_output()
    check_store(root)
    with opened("slow", root) as flow:
        [run] = flow.runs()
        assert run.status == "interrupted" and "KeyboardInterrupt" in (run.error or "")
        assert [m.asset_name for m in flow.history() if m.status == "materialized"] == [
            "s_first"]
        result = flow.run()
        assert result.reused == ("s_first",)
        assert set(result.materialized) == {"s_second", "s_third", "s_fourth"}
        assert result["s_fourth"] == 60 + 306
    assert _flows.read_log(log) == {"s_first": 1, "s_second": 2, "s_third": 1,
                                    "s_fourth": 1}


def test_a_run_whose_process_died_is_shown_abandoned(tmp_path):
    root = tmp_path / "store"
    spec = {"store": str(root), "flow": "slow", "stop": "s_second:body", "action": "pause"}
    with opened("slow", root) as flow:
        with Child(spec) as child:
            child.event()
            [live] = flow.runs()
            assert live.status == "running" and live.pid == child.pid
            child.kill()
        [dead] = flow.runs()
        assert dead.run_id == live.run_id and dead.status == "abandoned"
        assert raw_run_statuses(root) == {live.run_id: "running"}  # as the dead left it
        result = flow.run()
        assert result["s_fourth"] == 366
        statuses = {run.run_id: run.status for run in flow.runs()}
        assert statuses == {live.run_id: "abandoned", result.run_id: "succeeded"}


def test_temp_files_of_crashed_writes_are_not_objects_and_get_cleaned(tmp_path):
    root = tmp_path / "store"
    prepare_template(tmp_path, None).rename(root)
    spec = {"store": str(root), "flow": "diamond", "config": DIAMOND_CONFIG,
            "stop": "d_source:pickle", "action": "pause"}
    with opened("diamond", root) as flow:
        with Child(spec) as writer:
            writer.event()
            [live] = temps(root)
            assert live.stat().st_size > _flows.PAD  # the pickle is half written
            age([live])
            assert flow.store.objects.remove_stale_temps() == 0  # its writer holds it
            writer.kill()
        report = flow.store.verify()
        assert report.ok and report.checked == 0 and report.orphaned == ()
        assert flow.store.gc().temp_files_removed == 1  # its writer is gone
        assert temps(root) == []

        with Child(spec) as writer:
            writer.event()
            writer.kill()
        [young] = temps(root)
        with object_reads(root / "objects") as reads:
            result = flow.run(config=DIAMOND_CONFIG)  # its writer is dead: removed at once
        assert young not in reads and not young.exists()
        assert set(result.materialized) == set(DIAMOND)
        assert set(flow.run(config=DIAMOND_CONFIG).reused) == set(DIAMOND)
        assert temps(root) == []
        assert flow.store.verify().ok


def long_second_asset(root: Path) -> Child:
    """A child whose run has finished ``s_first`` and is two minutes into ``s_second``."""
    spec = {"store": str(root), "flow": "slow", "stop": "s_second:body", "action": "notify"}
    child = Child(spec, env={"KZTEST_NAP_S_SECOND": "120"})
    child.event()
    time.sleep(0.5)  # far longer than any commit batching should wait
    return child


def test_an_asset_finished_before_a_long_one_survives_a_kill(tmp_path):
    root = tmp_path / "store"
    with long_second_asset(root) as child:
        child.kill()
    check_store(root)
    assert committed_by(root, child.pid) == {"s_first"}


def test_gc_is_not_held_off_by_a_run_busy_in_a_long_asset(tmp_path):
    root = tmp_path / "store"
    with long_second_asset(root) as child, opened("slow", root) as flow:
        collector = threading.Thread(target=flow.store.gc, daemon=True)
        collector.start()
        collector.join(timeout=3)
        blocked = collector.is_alive()
        child.kill()
        collector.join(timeout=60)
    assert not blocked


def test_the_run_commits_a_due_batch_itself_before_its_next_asset(tmp_path, monkeypatch):
    """With the timer far away, what finished is committed by the run's own thread as
    soon as a batch is due: a later asset already sees its upstreams' records."""
    from kazeflow import Flow, Store, asset
    from kazeflow.running._batch import WriteBatch

    monkeypatch.setattr(WriteBatch, "MAX_AGE", 60.0)  # the timer never comes first
    root = tmp_path / "store"
    seen = {}

    @asset
    def first():
        return 1

    @asset
    def second(first):
        time.sleep(WriteBatch.DUE_AGE * 3)  # the batch holding `first` falls due
        return first + 1

    @asset
    def third(second):
        with Store(root, create=False) as other:
            seen["committed"] = {r.asset_name for r in other.history()}
        return second + 1

    assert Flow(["third"], store=root).run()["third"] == 3
    assert seen["committed"] == {"first", "second"}
