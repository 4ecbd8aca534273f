"""Several "machines" on one store: processes with their own working folders (so no
shared lock files) on one PostgreSQL database and one objects location. Leases, gc pins
and run liveness go through the database: each key is computed once, gc never deletes
what a live run elsewhere relies on, a dead run is seen as dead from anywhere, and a
lost connection is a clear StoreError after which the next run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from kazeflow import Store

pytestmark = pytest.mark.postgres

FLOW = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from kazeflow import Config, Flow, asset

    LOG = Path(os.environ["TEST_LOG"])

    def executed(name):
        with open(LOG, "a") as log:
            log.write(f"{name} {os.environ['TEST_MACHINE']}\\n")

    def gate(name):
        # wait for the test's go-ahead file, if one is asked for
        wanted = Path(os.environ.get("TEST_GATE", "")) / name
        if os.environ.get("TEST_GATE"):
            (wanted.parent / f"{name}.waiting").touch()
            while not wanted.exists():
                time.sleep(0.02)

    class Size(Config):
        n: int = 1

    @asset(config_schema=Size)
    def base(config):
        executed("base")
        return list(range(config.n * 1000))

    @asset
    def left(base):
        executed("left")
        time.sleep(0.3)
        return sum(base)

    @asset
    def right(base):
        executed("right")
        time.sleep(0.3)
        return len(base)

    class Label(Config):
        label: str = ""

    @asset(config_schema=Label)
    def report(config, left, right):
        gate("report")
        executed("report")
        return {"sum": left, "n": right}

    if __name__ == "__main__":
        n = int(sys.argv[1]) if sys.argv[1:] else 1
        label = sys.argv[2] if sys.argv[2:] else ""
        flow = Flow(["report"], config={"base": {"n": n}, "report": {"label": label}})
        print(flow.run()["report"])
""")


@pytest.fixture
def machines(tmp_path, postgres_url):
    """``start(name, *args, **env)`` runs the flow in a new process with its own working
    folder; all share the database and ``objects/``."""
    script = tmp_path / "pipeline.py"
    script.write_text(FLOW)
    shared = {"KAZEFLOW_METADATA_URL": postgres_url,
              "KAZEFLOW_OBJECTS_URL": str(tmp_path / "objects"),
              "TEST_LOG": str(tmp_path / "executed.log")}

    started: list[subprocess.Popen[str]] = []

    def start(machine: str, *args: str, **env: str) -> subprocess.Popen[str]:
        work = tmp_path / machine
        work.mkdir(exist_ok=True)
        started.append(subprocess.Popen(
            [sys.executable, str(script), *args], cwd=work, text=True,
            env={**os.environ, **shared, "TEST_MACHINE": machine, **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        return started[-1]

    def store(machine: str) -> Store:
        return Store(tmp_path / machine / ".kazeflow", metadata=postgres_url,
                     objects=tmp_path / "objects")

    def executed() -> Counter[str]:
        log = tmp_path / "executed.log"
        return Counter(line.split()[0] for line in log.read_text().splitlines()) \
            if log.exists() else Counter()

    start.store = store  # type: ignore[attr-defined]
    start.executed = executed  # type: ignore[attr-defined]
    start.tmp = tmp_path  # type: ignore[attr-defined]
    yield start
    for process in started:  # a failed test leaves none waiting at a gate
        if process.poll() is None:
            process.kill()
        process.communicate()


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.strip()


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_two_machines_running_at_once_compute_each_key_once(machines):
    runs = [machines(name) for name in ("one", "two", "three")]
    outputs = {_finish(run) for run in runs}
    assert outputs == {"{'sum': 499500, 'n': 1000}"}
    assert machines.executed() == {"base": 1, "left": 1, "right": 1, "report": 1}
    # no machine shares a lock folder with another: leases went through the database
    for name in ("one", "two", "three"):
        assert not (machines.tmp / name / ".kazeflow" / "leases.lock").exists()
    with machines.store("four") as store:  # a fourth, later: every asset is fresh
        assert {run.status for run in store.runs()} == {"succeeded"}
        for name in ("base", "left", "right", "report"):  # recorded once each
            assert len(store.history(name)) == 1, store.history(name)
        assert store.verify().ok


def test_gc_on_another_machine_keeps_what_a_live_run_relies_on(machines):
    _finish(machines("one", "1"))
    _finish(machines("one", "2"))  # base n=1's record is no longer the newest
    gate = machines.tmp / "gate"
    gate.mkdir()
    # a run of n=1 reuses the old objects (pinned), then waits in a new `report`
    live = machines("two", "1", "again", TEST_GATE=str(gate))
    _wait_for(gate / "report.waiting")
    with machines.store("three") as store:
        first_run = store.runs()[-1].run_id  # n=1: what the live run reuses
        relied_on = {m.asset_name: m.data_version for m in store.history()
                     if m.run_id == first_run and m.asset_name != "report"}
        assert set(relied_on) == {"base", "left", "right"}
        assert store.gc(keep_last=1).records_removed >= 3  # their records go...
        for name, data_version in relied_on.items():  # ...their objects stay
            assert store.objects.load(data_version) is not None, name
    (gate / "report").touch()
    assert _finish(live) == "{'sum': 499500, 'n': 1000}"
    with machines.store("three") as store:  # now nothing pins them
        assert store.gc(keep_last=1).objects_removed > 0
        assert store.verify().ok


def test_a_killed_run_is_abandoned_seen_from_another_machine(machines):
    gate = machines.tmp / "gate"
    gate.mkdir()
    run = machines("one", TEST_GATE=str(gate))
    _wait_for(gate / "report.waiting")
    with machines.store("two") as store:
        [running] = store.runs()
        assert running.status == "running"
        os.kill(run.pid, signal.SIGKILL)
        run.communicate(timeout=30)
        deadline = time.monotonic() + 30  # the server notices the closed socket
        while store.runs()[0].status == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert store.runs()[0].status == "abandoned"
        assert store.gc().objects_removed == 0  # its results are recorded: kept
    assert _finish(machines("three")) == "{'sum': 499500, 'n': 1000}"
    assert machines.executed()["report"] == 1 and machines.executed()["left"] == 1


LOSING = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import sqlalchemy
    from kazeflow import Flow, asset

    @asset
    def first():
        return 1

    @asset
    def cut(first):
        time.sleep(0.3)  # `first` is committed (at most 50 ms after it finished)
        marker = Path("cut-once")
        if marker.exists():
            return first + 1
        marker.touch()
        # the database server drops every connection of this run's process
        engine = sqlalchemy.create_engine(os.environ["OTHER_URL"])
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'kz-victim'")
        engine.dispose()
        return first + 1

    @asset
    def last(cut):
        return cut + 1

    print(Flow(["last"]).run()["last"])
""")


def test_a_lost_connection_is_a_store_error_and_the_next_run_resumes(machines,
                                                                     postgres_url):
    script = machines.tmp / "losing.py"
    script.write_text(LOSING)
    sep = "&" if "?" in postgres_url else "?"
    env = {**os.environ, "KAZEFLOW_METADATA_URL": f"{postgres_url}{sep}"
           "application_name=kz-victim", "OTHER_URL": postgres_url}
    (machines.tmp / "w").mkdir()
    first = subprocess.run([sys.executable, str(script)], cwd=machines.tmp / "w", env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode != 0
    assert "StoreError" in first.stderr and "connection" in first.stderr
    assert "run again" in first.stderr
    second = subprocess.run([sys.executable, str(script)], cwd=machines.tmp / "w", env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "3"
    with Store(machines.tmp / "w" / ".kazeflow", metadata=postgres_url) as store:
        assert [m.status for m in store.history("first")] == ["materialized"]  # kept
        assert store.history("last")[0].status == "materialized"
        assert store.verify().ok
