"""Files an asset reads (``@asset(reads=...)``) are inputs: editing one re-runs exactly
what reads it (and its downstream only if the result changes), status and why say which
file changed and how, and a warm run only stats them.

Every step is a fresh process over real files, checked against a run into a fresh store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PIPELINE = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from kazeflow import Flow, asset

    HERE = Path(__file__).parent


    @asset(reads=["data/raw.csv"])
    def names():
        return [line.split(",")[0] for line in (HERE / "data/raw.csv").read_text().split()]


    @asset(reads=["params/*.json"])
    def weights():
        return {p.name: json.loads(p.read_text())["w"]
                for p in sorted((HERE / "params").glob("*.json"))}


    @asset
    def total(names, weights):
        return len(names) * sum(weights.values())


    @asset
    def plain():
        return "reads nothing"


    flow = Flow(["total", "plain"])

    if __name__ == "__main__":
        result = flow.run()
        print(json.dumps({"materialized": sorted(result.materialized),
                          "values": {name: result[name] for name in result}}))
''')


def write(path: Path, text: str) -> None:
    """Write ``text`` dated a minute ago (old enough for the hash cache to trust)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    past = time.time() - 60
    os.utime(path, (past, past))


class Project:
    """The pipeline and its data files in a folder; runs are new processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        write(root / "pipeline.py", PIPELINE)
        write(root / "data/raw.csv", "ann,1\nbob,2\n")
        write(root / "params/a.json", '{"w": 1}')
        write(root / "params/b.json", '{"w": 2}')
        self.fresh_stores = 0

    def python(self, *args: str, store: Path | None = None) -> str:
        env = {**os.environ, "KAZEFLOW_HOME": str(store or self.root / "store")}
        done = subprocess.run([sys.executable, *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def run(self) -> list[str]:
        """Run incrementally; check the values against a run into a fresh store."""
        out = json.loads(self.python("pipeline.py"))
        self.fresh_stores += 1
        fresh = json.loads(self.python("pipeline.py",
                                       store=self.root / f"fresh-{self.fresh_stores}"))
        assert out["values"] == fresh["values"]
        return out["materialized"]

    def kazeflow(self, *args: str) -> str:
        return self.python("-m", "kazeflow", *args, "--store", str(self.root / "store"))


@pytest.mark.slow
def test_editing_a_file_an_asset_reads_reruns_it_and_says_why(tmp_path):
    project = Project(tmp_path)
    assert project.run() == ["names", "plain", "total", "weights"]
    assert project.run() == []

    write(tmp_path / "data/raw.csv", "ann,1\nbob,3\n")  # a column `names` ignores
    assert project.run() == ["names"]  # same names: total is spared (early cut-off)

    write(tmp_path / "params/a.json", '{"w": 5}')
    why = project.kazeflow("why", "pipeline.py:flow", "weights")
    assert "input file 'params/a.json' changed" in why
    assert '-{"w": 1}' in why and '+{"w": 5}' in why  # the diff of a small text file
    status = json.loads(project.kazeflow("status", "pipeline.py:flow", "--json"))
    reads = {s["asset_name"]: s["reads"] for s in status}
    assert reads["weights"] == ["params/a.json", "params/b.json"]
    assert reads["names"] == ["data/raw.csv"] and reads["plain"] == []
    assert project.run() == ["total", "weights"]

    write(tmp_path / "params/c.json", '{"w": 10}')  # a new file the glob matches
    status = json.loads(project.kazeflow("status", "pipeline.py:flow", "--json"))
    weights = next(s for s in status if s["asset_name"] == "weights")
    assert [r["message"] for r in weights["reasons"]] == ["input file 'params/c.json' is new"]
    assert project.run() == ["total", "weights"]
    (tmp_path / "params/b.json").unlink()
    assert project.run() == ["total", "weights"]

    write(tmp_path / "params/a.json", '{"w": 1}')  # back to an earlier state: reused
    write(tmp_path / "params/b.json", '{"w": 2}')
    (tmp_path / "params/c.json").unlink()
    assert project.run() == []


AUDIT = textwrap.dedent('''
    import sys
    opened = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0]))
                     if event == "open" and args and isinstance(args[0], str) else None)
    import runpy
    runpy.run_path("pipeline.py", run_name="__main__")["flow"].{call}  # runs, then {call}
    print("\\n".join(opened))
''')


def test_an_unchanged_input_file_is_only_stated_not_read(tmp_path):
    project = Project(tmp_path)
    project.python("pipeline.py")
    for call in ("run()", "status()"):
        opened = project.python("-c", AUDIT.format(call=call)).splitlines()
        assert not [p for p in opened if p.endswith((".csv", ".json"))], call


def test_a_declared_file_that_does_not_exist_is_a_clear_error(tmp_path):
    Project(tmp_path)  # writes the pipeline and its files
    (tmp_path / "data/raw.csv").unlink()
    env = {**os.environ, "KAZEFLOW_HOME": str(tmp_path / "store")}
    done = subprocess.run([sys.executable, "pipeline.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert (f"DefinitionError: asset 'names' reads 'data/raw.csv', which does not exist "
            f"(looked at {tmp_path / 'data/raw.csv'})") in done.stderr


def test_reads_takes_a_list_of_paths():
    from kazeflow import DefinitionError, asset

    with pytest.raises(DefinitionError, match=r"write reads=\['data.csv'\]"):
        @asset(reads="data.csv")
        def one():
            return 1
    with pytest.raises(DefinitionError, match="reads takes file, folder or glob paths"):
        @asset(reads=[3])
        def two():
            return 2


COMPUTED = textwrap.dedent('''
    import json
    from pathlib import Path
    from kazeflow import Flow, asset

    HERE = Path(__file__).parent
    PARAMS = json.loads((HERE / "params.json").read_text())
    LIMITS = {{"low": 1, "high": 9}}


    @asset{options}
    def scored():
        return PARAMS["w"] * LIMITS["high"]


    if __name__ == "__main__":
        print(Flow(["scored"]).run()["scored"])
''')


@pytest.mark.parametrize("options, warned", [("", True), ('(reads=["params.json"])', False),
                                             ("(reads=[])", False)])
def test_a_module_level_value_computed_by_a_call_is_named_in_a_warning(tmp_path, options,
                                                                       warned):
    write(tmp_path / "pipeline.py", COMPUTED.format(options=options))
    write(tmp_path / "params.json", '{"w": 2}')
    env = {**os.environ, "KAZEFLOW_HOME": str(tmp_path / "store")}

    def run() -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "pipeline.py"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    first = run()
    assert first.stdout.strip() == "18"
    said = ("asset 'scored' reads module-level values computed by a call: "
            "__main__.PARAMS (`PARAMS = json.loads((HERE / 'params.json').read_text())`)")
    assert (said in first.stderr) is warned, first.stderr
    assert "LIMITS" not in first.stderr  # a literal: its statement is its value
    assert "@asset(reads=[" in first.stderr or not warned
    if options == '(reads=["params.json"])':  # declared: an edit of the file re-runs it
        write(tmp_path / "params.json", '{"w": 3}')
        assert run().stdout.strip() == "27"
