"""A run's progress in a notebook: refreshed while an asset runs, final tallies at the end;
outside a notebook nothing of it is loaded."""

import subprocess
import sys
import textwrap
import time

import pytest

from kazeflow import Flow, FlowRunError, asset
from kazeflow.ui import _notebook


class Output:
    """Where the progress goes: the HTML shown, then each replacement (a notebook cell's
    output as IPython's display handle would hold it)."""

    def __init__(self):
        self.shown: list[str] = []

    def show(self, html):
        self.shown.append(html)
        return self.shown.append

    def wait_for(self, *parts, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(all(p in html for p in parts) for html in self.shown):
                return
            time.sleep(0.01)
        raise AssertionError(f"no update with {parts}: {self.shown[-3:]}")


@pytest.fixture
def output(monkeypatch):
    out = Output()
    monkeypatch.setattr(_notebook, "ipython_show", out.show)  # the cell, without Jupyter
    return out


def pipeline(output, fail=False):
    @asset
    def first():
        return 1

    @asset
    def slow(first):
        # the display refreshes while this asset runs: it waits to be seen under way
        output.wait_for("running: 1 of 3 assets (1 materialized)", "under way: slow")
        if fail:
            raise ValueError("no")
        return first + 1

    @asset
    def last(slow):
        return slow + 1


def test_the_progress_refreshes_while_an_asset_runs_and_ends_with_the_tallies(
        tmp_path, output):
    pipeline(output)
    flow = Flow(["last"], store=tmp_path)
    assert flow.run(progress=True)["last"] == 3
    assert output.shown[0].count("running: 0 of 3 assets") == 1
    assert "finished: 3 of 3 assets (3 materialized)" in output.shown[-1]
    assert 'data-done="3" data-total="3"' in output.shown[-1]

    output.shown.clear()
    flow.run(progress=True)
    assert "finished: 3 of 3 assets (3 reused)" in output.shown[-1]


def test_a_failure_shows_in_the_tallies(tmp_path, output):
    pipeline(output, fail=True)
    with pytest.raises(FlowRunError):
        Flow(["last"], store=tmp_path).run(progress=True)
    final = output.shown[-1]
    assert "finished: 3 of 3 assets (1 materialized, 1 failed, 1 not run)" in final
    assert "#c92a2a" in final  # the bar turns red


def test_outside_a_notebook_nothing_of_it_loads(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from kazeflow import Flow, asset

        @asset
        def one():
            return 1

        Flow(["one"], store={str(tmp_path)!r}).run()
        loaded = "kazeflow.ui._notebook" in sys.modules
        from kazeflow.ui import _notebook
        print(loaded, _notebook.in_notebook())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
