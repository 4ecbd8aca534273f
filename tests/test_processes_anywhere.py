"""executor="processes" from wherever the flow starts: stdin, ``python -c``, a script
without a ``__main__`` guard, a guarded script; each in a fresh ``python`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kazeflow import Flow, FlowRunError, Store, asset
from kazeflow.executors import _worker

#: A flow whose assets report the pid they ran in; {store} and {log} are filled in. Its
#: module-level code appends to {log}, so a worker that re-ran the main module shows.
BODY = """\
import json, os
from kazeflow import Flow, Store, asset

with open({log!r}, "a") as log:
    log.write(f"main module ran in {{os.getpid()}}\\n")

SCALE = 10

class Point:
    def __init__(self, x):
        self.x = x

def helper(n):
    return n * SCALE

@asset
def left():
    return {{"pid": os.getpid(), "value": helper(1)}}

@asset
def right():
    return {{"pid": os.getpid(), "value": Point(helper(2)).x}}

@asset
def total(left, right):
    return {{"pid": os.getpid(), "value": left["value"] + right["value"]}}

def main():
    result = Flow(assets=[left, right, total], store=Store({store!r})).run(
        executor="processes", max_workers=2)
    print(json.dumps({{"parent": os.getpid(), "result": dict(result)}}))
"""

GUARDED = BODY + """
if __name__ == "__main__":
    main()
"""

UNGUARDED = BODY + """
main()
"""


def _run(tmp_path: Path, how: str) -> tuple[dict, list[str]]:
    """Run the flow in a fresh ``python`` the way ``how`` says; its report and the
    lines the main module logged."""
    log = tmp_path / "main.log"
    fill = {"store": str(tmp_path / "store"), "log": str(log)}
    script = (GUARDED if how == "guarded file" else UNGUARDED).format(**fill)
    path = tmp_path / "flow.py"
    path.write_text(script)
    command = {"stdin": [sys.executable, "-"], "-c": [sys.executable, "-c", script],
               "unguarded file": [sys.executable, str(path)],
               "guarded file": [sys.executable, str(path)]}[how]
    done = subprocess.run(command, input=script if how == "stdin" else None,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), log.read_text().splitlines()


@pytest.mark.parametrize("how", ["stdin", "-c", "unguarded file", "guarded file"])
def test_process_workers_run_a_flow_started_from_anywhere(tmp_path, how):
    report, logged = _run(tmp_path, how)
    parent, result = report["parent"], report["result"]
    assert {k: v["value"] for k, v in result.items()} == {"left": 10, "right": 20,
                                                           "total": 30}
    pids = {v["pid"] for v in result.values()}
    assert parent not in pids  # every asset ran in a worker process
    assert logged == [f"main module ran in {parent}"]  # no worker re-ran the main module


def test_a_second_run_from_stdin_reuses_everything(tmp_path):
    first, _ = _run(tmp_path, "stdin")
    second, logged = _run(tmp_path, "stdin")
    assert second["result"] == first["result"]  # reused: the first run's pids
    assert len(logged) == 2


def test_a_worker_that_cannot_import_kazeflow_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(_worker, "BOOT", _worker.BOOT.replace(
        "from kazeflow.executors._worker import serve", "import kazeflow_not_here"))

    @asset
    def one():
        return 1

    flow = Flow(assets=[one], store=Store(tmp_path / "s"))
    with pytest.raises(FlowRunError) as info:
        flow.run(executor="processes", max_workers=1)
    message = info.value.result.failed["one"]
    assert "a worker process could not start (ModuleNotFoundError: No module named " \
           "'kazeflow_not_here')" in message
    assert "install kazeflow into that environment, or run with executor='threads'" \
        in message
    assert "worker process died" not in message


def test_workers_get_the_parents_sys_path_and_argv(tmp_path, monkeypatch):
    package = tmp_path / "extra"
    package.mkdir()
    (package / "kz_extra_helpers.py").write_text("def triple(n):\n    return 3 * n\n")
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setattr(sys, "argv", ["flow-under-test", "--flag"])
    import kz_extra_helpers  # importable by reference: cloudpickle does not copy it

    @asset
    def seen():
        return {"argv": sys.argv, "tripled": kz_extra_helpers.triple(2),
                "pid": os.getpid()}

    result = Flow(assets=[seen], store=Store(tmp_path / "s")).run(executor="processes")
    assert result["seen"]["argv"] == ["flow-under-test", "--flag"]
    assert result["seen"]["tripled"] == 6 and result["seen"]["pid"] != os.getpid()
