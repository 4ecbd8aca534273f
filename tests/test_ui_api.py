"""``kazeflow ui`` over plain HTTP: the JSON the page reads, for a real store made by a
real run, and what the server refuses. (The page itself: ``test_ui_browser.py``.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kazeflow.results import AssetStatus, Materialization, Run
from kazeflow.ui import _layout, _progress

FLOW = '''
import os
import time
from pathlib import Path

from kazeflow import asset


def clean(xs):
    return [x for x in xs if x > 0]


@asset
def raw_data():
    return [1, 2, 3, -4, 5]


@asset
def processed_data(raw_data):
    return sum(clean(raw_data))


@asset
def other(raw_data):
    time.sleep(0.2)
    return len(raw_data)


@asset
def report(processed_data, other):
    return f"total={processed_data} n={other}"


@asset
def boom(raw_data):
    return raw_data[0] / 0


@asset
def gate(raw_data):
    """Waits until the file $GATE exists."""
    while not Path(os.environ["GATE"]).exists():
        time.sleep(0.05)
    return "open"
'''


def _script() -> str:
    beside = Path(sys.executable).with_name("kazeflow")
    found = str(beside) if beside.exists() else shutil.which("kazeflow")
    if found is None:
        pytest.skip("the kazeflow console script is not installed (pip install -e .)")
    return found


class Project:
    """A folder with ``flows.py`` and its store, driven by the real ``kazeflow`` command."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.flows = folder / "flows.py"
        self.flows.write_text(textwrap.dedent(FLOW))
        self.store = folder / "store"
        self.gate = folder / "gate-open"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KAZEFLOW_")}
        self.env.update(KAZEFLOW_HOME=str(self.store), GATE=str(self.gate), NO_COLOR="1")

    def kazeflow(self, *args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([_script(), *args], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == rc, (args, done.stdout, done.stderr)
        return done

    def start_run(self, *args: str) -> subprocess.Popen[str]:
        """``kazeflow run flows.py ARGS`` in the background."""
        return subprocess.Popen([_script(), "run", "flows.py", *args], cwd=self.folder,
                                env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def edit(self, old: str, new: str) -> None:
        text = self.flows.read_text()
        assert old in text
        self.flows.write_text(text.replace(old, new))
        os.utime(self.flows, ns=(os.stat(self.flows).st_mtime_ns + 10**9,) * 2)


class Ui:
    """``kazeflow ui`` running in a subprocess; ``url`` is where it serves."""

    def __init__(self, project: Project, *args: str) -> None:
        self.process = subprocess.Popen(
            [_script(), "ui", "flows.py", "--port", "0", *args], cwd=project.folder,
            env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()))
        reader.start()
        reader.join(30)
        if not line or "http://" not in line[0]:
            self.stop()
            raise AssertionError(f"kazeflow ui did not start: {line} "
                                 f"{self.process.stderr.read()}")
        self.url = line[0].split(" at ")[1].split(";")[0]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30) as response:
            return json.loads(response.read())

    def error(self, path: str) -> tuple[int, str]:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30)
        with caught.value as response:
            return response.code, json.loads(response.read())["error"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def project(tmp_path) -> Project:
    """flows.py run once (all but ``gate``): ``boom`` failed, the rest fresh."""
    project = Project(tmp_path)
    project.kazeflow("run", "flows.py", "-s", "report", "-s", "boom", rc=1)
    return project


@pytest.fixture
def ui(project) -> Iterator[Ui]:
    server = Ui(project)
    yield server
    server.stop()


def _states(graph: dict[str, Any]) -> dict[str, str]:
    return {node["name"]: node["shown"] for node in graph["nodes"]}


def test_the_graph_has_every_asset_with_its_state_place_duration_and_size(ui):
    graph = ui.get("/api/graph")
    assert _states(graph) == {"raw_data": "fresh", "processed_data": "fresh",
                              "other": "fresh", "report": "fresh", "boom": "failed",
                              "gate": "missing"}
    nodes = {node["name"]: node for node in graph["nodes"]}
    assert nodes["raw_data"]["x"] < nodes["other"]["x"] < nodes["report"]["x"]
    assert nodes["other"]["duration"] >= 0.2 and nodes["report"]["size"] > 0
    assert nodes["report"]["deps"] == ["processed_data", "other"]
    assert nodes["boom"]["reasons"][-1].startswith("its last attempt failed: "
                                                   "ZeroDivisionError")
    assert graph["run"] is None  # nothing is running


def test_an_asset_has_its_history_a_preview_and_says_why(ui, project):
    report = ui.get("/api/asset/report")
    assert report["state"] == "fresh" and report["deps"] == ["processed_data", "other"]
    assert [m["status"] for m in report["history"]] == ["materialized"]
    assert report["preview"]["repr"] == "'total=11 n=5'"
    boom = ui.get("/api/asset/boom")
    assert boom["shown"] == "failed" and boom["preview"]["error"] == "no stored value"
    assert "ZeroDivisionError" in boom["history"][0]["error"]

    project.edit("x > 0", "x >= 2")  # the server re-imports the edited flow
    why = ui.get("/api/asset/report")["why"]
    upstream = why["reasons"][0]["upstream"]
    assert (why["state"], upstream["asset_name"]) == ("stale", "processed_data")
    code = upstream["reasons"][0]
    assert code["kind"] == "code_changed" and code["details"]["changed"] == ["clean"]
    assert "+    return [x for x in xs if x >= 2]" in code["diff"].splitlines()
    assert ui.get("/api/asset/report")["why_text"] == \
        project.kazeflow("why", "flows.py", "report").stdout.rstrip("\n")
    assert _states(ui.get("/api/graph"))["report"] == "stale"


def test_runs_and_a_run_with_each_assets_outcome_and_timing(ui):
    runs = ui.get("/api/runs")["runs"]
    assert [(r["status"], r["n_materialized"], r["n_failed"]) for r in runs] == [
        ("failed", 4, 1)]
    run = ui.get(f"/api/run/{runs[0]['run_id'][:8]}")
    outcomes = {a["asset_name"]: a["outcome"] for a in run["assets"]}
    assert outcomes == {"raw_data": "materialized", "processed_data": "materialized",
                        "other": "materialized", "report": "materialized",
                        "boom": "failed"}
    other = next(a for a in run["assets"] if a["asset_name"] == "other")
    assert other["started_at"] >= run["started_at"] and other["duration"] >= 0.2


def test_a_run_in_another_process_shows_live(ui, project):
    running = project.start_run("-s", "gate")
    try:
        graph = _wait(ui, lambda g: g["run"] is not None
                      and _states(g)["gate"] == "running")
        assert graph["run"]["total"] == 2 and graph["run"]["done"] == 1  # raw_data reused
        steps = {a["asset_name"]: a for a in ui.get(f"/api/run/{graph['run']['run_id']}")
                 ["assets"]}
        assert steps["gate"]["outcome"] == "running" and steps["gate"]["estimated"]
        project.gate.touch()
        assert running.wait(30) == 0
    finally:
        running.kill()
        running.communicate()
    graph = _wait(ui, lambda g: g["run"] is None)
    assert _states(graph)["gate"] == "fresh"


def _wait(ui: Ui, done: Any, timeout: float = 20) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        graph = ui.get("/api/graph")
        if done(graph):
            return graph
        assert time.monotonic() < deadline, graph
        time.sleep(0.1)


def test_unknown_assets_and_runs_are_404_and_the_page_is_served(ui):
    assert ui.error("/api/asset/nope") == (
        404, "no asset 'nope' in flows.py; its assets: raw_data, boom, gate, other, "
        "processed_data, report")
    code, message = ui.error("/api/run/ffff0000")
    assert code == 404 and message.startswith("no run with id 'ffff0000'")
    assert ui.error("/nothing")[0] == 404
    for path, kind, text in (("", "text/html", "<svg id=\"graph\""),
                             ("app.js", "text/javascript", "function drawGraph"),
                             ("app.css", "text/css", ".node rect")):
        with urllib.request.urlopen(ui.url + path, timeout=30) as response:
            assert response.headers["Content-Type"].startswith(kind)
            assert text in response.read().decode()


def test_another_host_name_is_refused(ui):
    """A page elsewhere cannot read the store by pointing its own name at 127.0.0.1."""
    request = urllib.request.Request(ui.url + "api/graph", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    with caught.value as response:
        assert response.code == 403
    localhost = urllib.request.Request(ui.url + "api/runs", headers={
        "Host": f"localhost:{ui.url.rsplit(':', 1)[1].strip('/')}"})
    with urllib.request.urlopen(localhost, timeout=30) as response:
        assert response.status == 200


def test_the_page_ships_in_the_package():
    """pyproject's package-data takes every file of kazeflow/ui/static into the wheel."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib", reason="reading pyproject needs Python 3.11+")
    repo = Path(__file__).resolve().parents[1]
    config = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "kazeflow.ui" in config["packages"]
    patterns = config["package-data"]["kazeflow.ui"]
    static = sorted((repo / "kazeflow" / "ui" / "static").iterdir())
    assert [p.name for p in static] == ["app.css", "app.js", "index.html"]
    for path in static:
        assert any(fnmatch.fnmatch(f"static/{path.name}", pattern) for pattern in patterns)


def test_the_server_writes_nothing_to_the_store(project):
    before = _snapshot(project.store)
    server = Ui(project)
    try:
        for path in ("/api/graph", "/api/asset/report", "/api/runs"):
            server.get(path)
    finally:
        server.stop()
    assert _snapshot(project.store) == before


def _snapshot(store: Path) -> dict[str, tuple[int, int]]:
    """Every file of the store but SQLite's shared-memory and log files, with its size
    and mtime."""
    return {str(p.relative_to(store)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in store.rglob("*") if p.is_file()
            and not p.name.endswith(("-wal", "-shm", "-journal")) and "locks" not in p.parts}


def test_no_store_and_a_port_in_use_are_one_clear_error(tmp_path):
    project = Project(tmp_path)
    done = project.kazeflow("ui", "flows.py", "--store", str(tmp_path / "typo"), rc=1)
    assert done.stderr.strip() == (
        f"Error: there is no kazeflow store at {tmp_path / 'typo'}; check the path "
        "(--store, $KAZEFLOW_HOME) or run a flow to create one")
    assert not (tmp_path / "typo").exists() and not project.store.exists()
    done = project.kazeflow("ui", "flows.py", rc=1)  # $KAZEFLOW_HOME: not there yet
    assert done.stderr.startswith(f"Error: there is no kazeflow store at {project.store};")
    assert not project.store.exists()
    project.kazeflow("run", "flows.py", "-s", "report")
    server = Ui(project)
    try:
        port = server.url.rsplit(":", 1)[1].strip("/")
        done = project.kazeflow("ui", "flows.py", "--port", port, rc=1)
        assert done.stderr.strip() == (f"Error: cannot serve on 127.0.0.1:{port}: the port "
                                       "is in use; pick another with --port, or --port 0 "
                                       "for any free one")
    finally:
        server.stop()


# ------------------------------------------------------------------ pure parts

def test_layers_follow_the_longest_path_and_rows_untangle_edges():
    deps = {"a": [], "b": [], "x": ["b"], "y": ["a"], "z": ["a", "y"]}
    assert _layout.layers(deps) == {"a": 0, "b": 0, "x": 1, "y": 1, "z": 2}
    columns = _layout.ordered(deps)
    assert columns[0] == ["a", "b"] and columns[1] == ["y", "x"]  # no crossing a-y / b-x
    drawing = _layout.layout(deps)
    assert drawing.positions["a"][0] == drawing.positions["b"][0] < drawing.positions["y"][0]
    assert drawing.width == 2 * _layout.MARGIN + 3 * _layout.NODE_WIDTH + \
        2 * _layout.COLUMN_GAP
    assert _layout.layout({}).positions == {}


def _record(name: str, run_id: str, start: float, end: float, status: str = "materialized"
            ) -> Materialization:
    return Materialization(1, run_id, name, "k", "c", "h", {}, {}, "dv", 10, start, end,
                           end - start, status)


def test_a_live_runs_assets_are_done_running_or_waiting():
    deps = {"a": [], "b": ["a"], "c": ["b"], "d": []}
    run = Run("r1", "running", 100.0, None, 1, "h", ("c", "d"), 0, 0, 0)
    statuses = {"a": AssetStatus("a", "fresh"), "b": AssetStatus("b", "stale"),
                "c": AssetStatus("c", "missing"), "d": AssetStatus("d", "fresh")}
    steps = _progress.outcomes(run, [_record("b", "r1", 101.0, 103.0)], deps,
                               {**statuses, "b": AssetStatus("b", "fresh")}, now=110.0)
    assert [(s["asset_name"], s["outcome"]) for s in steps] == [
        ("a", "reused"), ("b", "materialized"), ("c", "running"), ("d", "reused")]
    assert steps[2]["started_at"] == 103.0 and steps[2]["duration"] == 7.0
    waiting = _progress.outcomes(run, [], deps, statuses, now=110.0)
    assert [s["outcome"] for s in waiting] == ["reused", "running", "waiting", "reused"]
    finished = _progress.outcomes(
        Run("r1", "failed", 100.0, 104.0, 1, "h", ("c", "d"), 0, 0, 1),
        [_record("b", "r1", 101.0, 103.0, "failed")], deps, statuses, now=110.0)
    assert [s["outcome"] for s in finished] == ["reused", "failed", "not run", "reused"]
