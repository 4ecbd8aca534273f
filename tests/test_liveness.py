"""A ``running`` run is ``abandoned`` exactly when its process is gone, whatever the clock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kazeflow.store import Store


def _started_run(store: Store, run_id: str, **changes: object) -> str:
    """The status ``store.runs()`` shows for a run that this process started, after
    ``changes`` to its row (made with SQL, as another process or the clock would)."""
    store.metadata.start_run(run_id, selection=["a"], pid=os.getpid(),
                             hostname=socket.gethostname())
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        with store.metadata.database.transaction() as tx:
            tx.execute(f"UPDATE runs SET {assignments} WHERE run_id = :run_id",
                       {**changes, "run_id": run_id})
    return {run.run_id: run.status for run in store.runs()}[run_id]


def _recorded_start(store: Store, run_id: str) -> str:
    [(start,)] = store.metadata.database.read(
        "SELECT process_start FROM runs WHERE run_id = :r", {"r": run_id})
    return start


def _started_at(store: Store, run_id: str) -> float:
    return next(run.started_at for run in store.runs() if run.run_id == run_id)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_records_the_boot_id_and_start_ticks_of_its_process(store):
    _started_run(store, "r1")
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    ticks = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
    assert _recorded_start(store, "r1") == f"{boot_id}:{ticks}"


@pytest.mark.parametrize("shift", [-3600.0, 3600.0])
def test_a_live_run_stays_running_when_the_clock_moved(store, shift):
    store.metadata.start_run("r0", selection=[], pid=os.getpid(),
                             hostname=socket.gethostname())
    moved = _started_at(store, "r0") + shift  # as if the wall clock jumped by an hour
    assert _started_run(store, "r1", started_at=moved) == "running"


def test_a_run_whose_pid_is_dead_is_abandoned(store):
    assert _started_run(store, "r1", pid=_dead_pid()) == "abandoned"


def test_a_run_whose_pid_was_reused_is_abandoned(store):
    store.metadata.start_run("r0", selection=[], pid=os.getpid(),
                             hostname=socket.gethostname())
    boot_id, ticks = _recorded_start(store, "r0").split(":")
    later = f"{boot_id}:{int(ticks) + 1}"  # this pid, but a process started a tick later
    assert _started_run(store, "r1", process_start=later) == "abandoned"
    other_boot = f"{'0' * 8}-0000-0000-0000-{'0' * 12}:{ticks}"
    assert _started_run(store, "r2", process_start=other_boot) == "abandoned"


def test_an_old_row_without_a_process_start_keeps_the_wall_clock_check(store):
    assert _started_run(store, "r1", process_start=None) == "running"
    # the pid's process began after the run "started": a reused pid
    assert _started_run(store, "r2", process_start=None, started_at=1.0) == "abandoned"
