"""The ``kazeflow`` console script, run for real in a subprocess against a store in tmp_path.

Each invocation costs a Python start-up (~0.7 s with SQLAlchemy), so every scenario
batches its assertions per invocation.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kazeflow.cli import cli
from kazeflow.store import Store

README = Path(__file__).resolve().parent.parent / "README.md"

FLOW = '''
from kazeflow import Config, asset


def clean(xs):
    return [x for x in xs if x > 0]


@asset
def raw_data():
    return [1, 2, 3, -4, 5]


@asset(config_schema=Config)
def processed_data(config, raw_data):
    return sum(clean(raw_data)) * config.get("multiplier", 1)


@asset
def report(processed_data):
    return f"total={processed_data}"
'''

FAILING = '''
from kazeflow import asset


@asset
def source():
    return 1


@asset
def boom(source):
    return source / 0


@asset
def after_boom(boom):
    return boom


@asset
def sibling(source):
    return source + 1
'''

ANSI = re.compile(r"\x1b\[")


def _script() -> str:
    beside = Path(sys.executable).with_name("kazeflow")
    found = str(beside) if beside.exists() else shutil.which("kazeflow")
    if found is None:
        pytest.skip("the kazeflow console script is not installed (pip install -e .)")
    return found


class Kazeflow:
    """Runs ``kazeflow ARGS`` in a folder with its store in ``<folder>/store``."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("KAZEFLOW_") and k != "NO_COLOR"}
        self.env["KAZEFLOW_HOME"] = str(cwd / "store")

    def __call__(self, *args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        """One invocation; asserts its exit code."""
        done = subprocess.run([_script(), *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == rc, (args, done.stdout, done.stderr)
        return done

    def many(self, *calls: tuple[str, ...], rc: int = 0) -> list[subprocess.CompletedProcess[str]]:
        """Independent invocations at once (each start-up costs most of a second)."""
        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(lambda args: self(*args, rc=rc), calls))


@pytest.fixture
def kz(tmp_path) -> Kazeflow:
    """The real console script against a real store in tmp_path."""
    return Kazeflow(tmp_path)


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_run_status_history_runs_show_and_force(kz, tmp_path):
    _write(tmp_path / "flows.py", FLOW)
    _write(tmp_path / "config.json", '{"processed_data": {"multiplier": 2}}')

    before = json.loads(kz("status", "flows.py", "--json").stdout)
    assert {s["asset_name"]: s["state"] for s in before} == {
        "raw_data": "missing", "processed_data": "missing", "report": "missing"}
    assert before[1]["reasons"][0]["kind"] == "never_materialized"

    first = kz("run", "flows.py", "--config", "config.json")
    assert "3 materialized, 0 reused, 0 failed" in first.stderr
    assert re.search(r"processed_data\s+materialized", first.stdout)
    assert not ANSI.search(first.stdout + first.stderr) and "\r" not in first.stderr

    fresh = kz("status", "flows.py", "-c", "config.json").stdout
    assert re.search(r"report\s+fresh", fresh) and "stale" not in fresh

    forced = json.loads(kz("run", "flows.py", "-c", "config.json", "--json",
                           "--force-asset", "raw_data").stdout)
    assert forced["ok"] and forced["materialized"] == ["raw_data"]  # same bytes:
    assert forced["reused"] == ["processed_data", "report"]  # downstream stays fresh
    everything = json.loads(kz("run", "flows.py", "-c", "config.json", "--json",
                               "--force", "-s", "processed_data", "--executor", "threads",
                               "--max-workers", "2").stdout)
    assert everything["materialized"] == ["raw_data", "processed_data"]

    history, table, runs, shown = kz.many(  # the store alone, no TARGET
        ("history", "--json"), ("history", "report", "--limit", "1"), ("runs", "--json"),
        ("show", "processed_data"))
    records = json.loads(history.stdout)
    assert [m["asset_name"] for m in records[:2]] == ["processed_data", "raw_data"]
    assert len(records) == 6 and records[0]["config"] == {"multiplier": 2}
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "ASSET", "STATUS"] and len(lines) == 2
    assert re.match(r"3\s+report\s+materialized", lines[1])
    assert [r["n_materialized"] for r in json.loads(runs.stdout)] == [2, 1, 3]
    assert "x>=1" in kz("run", "flows.py", "--max-workers", "0", rc=2).stderr
    assert re.search(r"value\s+22\n", shown.stdout) and '"multiplier": 2' in shown.stdout
    by_prefix = kz("show", "raw_data", "--version", records[-1]["data_version"][:8], "--json")
    assert json.loads(by_prefix.stdout)["value_repr"] == "[1, 2, 3, -4, 5]"


def test_a_failing_asset_exits_1_naming_it_and_its_error(kz, tmp_path):
    _write(tmp_path / "bad.py", FAILING)
    failed = kz("run", "bad.py", rc=1)
    assert re.search(r"boom\s+failed\s+ZeroDivisionError: division by zero", failed.stdout)
    assert re.search(r"after_boom\s+not run", failed.stdout)
    assert re.search(r"sibling\s+materialized", failed.stdout)
    errors = [line for line in failed.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "'boom' failed: ZeroDivisionError" in errors[0]
    assert "Traceback" not in failed.stderr

    verbose = kz("-v", "run", "bad.py", "--json", rc=1)
    assert json.loads(verbose.stdout)["failed"] == {
        "boom": "ZeroDivisionError: division by zero"}
    assert "materializing 'boom'" in verbose.stderr  # DEBUG records with -v
    assert 'bad.py", line 12, in boom' in verbose.stderr  # the asset's traceback

    records = json.loads(kz("history", "boom", "--json").stdout)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert "ZeroDivisionError" in records[0]["error"]


def test_why_and_graph_show_what_changed_down_to_the_root_cause(kz, tmp_path):
    flows = _write(tmp_path / "flows.py", FLOW)
    _write(tmp_path / "config.json", '{"processed_data": {"multiplier": 2}}')
    _write(tmp_path / "triple.json", '{"processed_data": {"multiplier": 3}}')
    kz("run", "flows.py", "-c", "config.json")
    flows.write_text(flows.read_text().replace("x > 0", "x >= 2"))

    why, mermaid, dot = kz.many(
        ("why", "flows.py", "report", "-c", "triple.json"), ("graph", "flows.py"),
        ("graph", "flows.py", "--format", "dot", "-s", "processed_data"))
    why = why.stdout
    assert why.startswith("report is stale:\n  - upstream 'processed_data' is stale\n")
    assert "processed_data is stale:" in why and "code changed in clean" in why
    assert "-    return [x for x in xs if x > 0]" in why
    assert "+    return [x for x in xs if x >= 2]" in why
    assert '-  "multiplier": 2' in why and '+  "multiplier": 3' in why
    mermaid, dot = mermaid.stdout, dot.stdout
    assert mermaid.startswith("flowchart LR\n") and 'raw_data["raw_data<br/>fresh"]' in mermaid
    assert 'report["report<br/>stale"]' in mermaid
    assert "class processed_data,report stale" in mermaid
    assert "raw_data --> processed_data" in mermaid and "processed_data --> report" in mermaid
    assert dot.startswith("digraph kazeflow {") and '"raw_data" -> "processed_data";' in dot
    assert '"processed_data" [label="processed_data\\nstale"' in dot and "report" not in dot

    # raw_data changes and re-runs alone: processed_data now sees a changed upstream
    flows.write_text(flows.read_text().replace("-4, 5]", "-4, 6]"))
    kz("run", "flows.py", "-s", "raw_data")
    tree = json.loads(kz("why", "flows.py", "report", "-c", "config.json", "--json").stdout)
    processed = tree["reasons"][0]["upstream"]
    kinds = {r["kind"]: r for r in processed["reasons"]}
    assert set(kinds) == {"code_changed", "upstream_changed"}
    assert kinds["code_changed"]["details"]["changed"] == ["clean"]
    changed = kinds["upstream_changed"]
    assert changed["upstream"]["asset_name"] == "raw_data"
    assert changed["upstream"]["state"] == "fresh"  # the root cause: raw_data re-ran
    assert changed["details"]["new_data_version"] == changed["upstream"]["last"][
        "data_version"]


def test_verify_finds_a_flipped_byte_and_gc_dry_run_reports_bytes(kz, tmp_path):
    _write(tmp_path / "flows.py", FLOW)
    kz("run", "flows.py")
    kz("run", "flows.py", "--force")  # same bytes: nothing for gc but records
    ok, dry, text = kz.many(("verify",), ("gc", "--keep-last", "1", "--dry-run", "--json"),
                            ("gc", "--keep-last", "1", "--dry-run"))
    assert "checked 3 objects: 0 corrupt" in ok.stdout
    dry = json.loads(dry.stdout)
    assert dry["dry_run"] and dry["records_removed"] == 3 and dry["objects_removed"] == 0
    assert dry["bytes_before"] == dry["bytes_after"] > 0
    assert "gc would remove 3 records, 0 objects" in text.stdout
    assert re.search(r"objects: \d+ B before, \d+ B after", text.stdout)

    victim = next(p for p in (tmp_path / "store" / "objects").glob("*/*"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    bad = kz("verify", rc=1)
    assert "1 corrupt" in bad.stdout and victim.parent.name + victim.name in bad.stdout
    assert bad.stderr.strip().splitlines()[-1].startswith("Error: 1 corrupt and 0 missing")
    report = json.loads(kz("verify", "--json", rc=1).stdout)  # now quarantined: missing
    assert not report["ok"] and list(report["missing"]) == [victim.parent.name + victim.name]

    assert json.loads(kz("gc", "--keep-last", "1", "--json").stdout)["records_removed"] == 3


def test_errors_are_one_clean_line_and_debug_shows_the_traceback(kz, tmp_path):
    _write(tmp_path / "flows.py", FLOW)
    _write(tmp_path / "broken.py", "import no_such_module_here\n")
    _write(tmp_path / "bad.json", '{"processed_data": ')
    with Store(tmp_path / "store") as store:  # created here: no first-open message below
        store.metadata  # noqa: B018
    cases = {
        ("run", "missing.py"): "cannot load TARGET",
        ("status", "no_such.pkg"): "no module named 'no_such'",
        ("run", "flows.py", "-s", "reprot"): "unknown asset 'reprot'; did you mean 'report'?",
        ("run", "flows.py", "-c", "absent.json"): "cannot read config file 'absent.json'",
        ("run", "flows.py", "-c", "bad.json"): "is not valid JSON",
        ("status", "broken.py"): "No module named 'no_such_module_here'",
        ("show", "report"): "asset 'report' has no materialization",
    }
    debug, *done = kz.many(("--debug", "status", "broken.py"), *cases, rc=1)
    for args, message, result in zip(cases, cases.values(), done, strict=True):
        assert result.stderr.startswith("Error: ") and message in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, args
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("Error: importing TARGET")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib (or tomli)")
def test_toml_config_and_db_commands(kz, tmp_path):
    _write(tmp_path / "flows.py", FLOW)
    _write(tmp_path / "config.toml", "[processed_data]\nmultiplier = 10\n")
    assert "no schema yet" in kz("db", "current").stdout
    assert "upgraded from revision none to" in kz("db", "upgrade").stdout
    kz("run", "flows.py", "--config", "config.toml")
    current, upgrade, shown = kz.many(("db", "current"), ("db", "upgrade"),
                                      ("show", "processed_data", "--json"))
    assert "(head)" in current.stdout and "already at head" in upgrade.stdout
    assert json.loads(shown.stdout)["value_repr"] == "110"


def test_colour_when_asked_and_never_with_no_color(kz, tmp_path, kazeflow_logger):
    _write(tmp_path / "flows.py", FLOW)
    kz("run", "flows.py")  # a status creates no store: this one does
    assert ANSI.search(kz("--color", "status", "flows.py").stdout)  # piped: plain otherwise
    runner = CliRunner()
    store = str(tmp_path / "store")
    assert ANSI.search(runner.invoke(cli, ["runs", "--store", store], color=True).output)
    no_color = runner.invoke(cli, ["runs", "--store", store], color=True, env={"NO_COLOR": "1"})
    assert no_color.exit_code == 0 and "RUN" in no_color.output
    assert not ANSI.search(no_color.output)
    usage = runner.invoke(cli, ["run", "flows.py", "--force", "--force-asset", "report"])
    assert usage.exit_code == 2 and "not both" in usage.output


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_is_drawn_on_a_terminal(tmp_path):
    _write(tmp_path / "slow.py", '''
        import time
        from kazeflow import asset

        @asset
        def first():
            time.sleep(0.5)
            return 1

        @asset
        def second(first):
            time.sleep(0.5)
            return first + 1
    ''')
    leader, follower = os.openpty()
    env = {**os.environ, "KAZEFLOW_HOME": str(tmp_path / "store"), "TERM": "xterm"}
    proc = subprocess.Popen([_script(), "run", "slow.py"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    shown = b"".join(chunks).decode()
    assert "[0/2] materializing first" in shown and "[1/2] materializing second" in shown
    assert "2 materialized, 0 reused" in shown


def _commands(group: click.Group, prefix: str = "kazeflow") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        found[f"{prefix} {name}"] = command
        if isinstance(command, click.Group):
            found.update(_commands(command, f"{prefix} {name}"))
    return found


@pytest.fixture
def kazeflow_logger():
    """In-process invocations configure the ``kazeflow`` logger: restore it afterwards."""
    logger = logging.getLogger("kazeflow")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_every_command_has_help_and_is_documented_in_the_readme(kazeflow_logger):
    readme = README.read_text()
    section = readme[readme.index("\n## Command line"):]
    runner = CliRunner()
    assert "Usage: kazeflow" in runner.invoke(cli, ["--help"]).output
    for path, command in _commands(cli).items():
        assert command.help and command.help.strip(), path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts}"
        result = runner.invoke(cli, [*path.split()[1:], "--help"])
        assert result.exit_code == 0 and f"Usage: {path}" in result.output, path
        assert f"`{path}" in section, f"{path} is not in README's Command line section"


def test_commands_that_only_read_a_store_never_create_one(kz, tmp_path):
    missing = tmp_path / "typo"
    done = kz.many(*(("history", "--store", str(missing)), ("runs", "--store", str(missing)),
                     ("show", "report", "--store", str(missing)),
                     ("verify", "--store", str(missing)), ("gc", "--store", str(missing))),
                   rc=1)
    for result in done:
        assert result.stderr.strip() == (f"Error: there is no kazeflow store at {missing}; "
                                         "check the path (--store, $KAZEFLOW_HOME) or run a "
                                         "flow to create one")
    assert not missing.exists() and not (tmp_path / "store").exists()


POOLED = '''\
import os, time
from kazeflow import asset

def _span(name):
    start = time.time()
    time.sleep(0.3)
    with open(os.environ["POOL_LOG"], "a") as log:
        log.write(f"{name} {start} {time.time()}\\n")
    return name

@asset(pool="gpu")
def left():
    return _span("left")

@asset(pool="gpu")
def right():
    return _span("right")
'''


def test_run_pool_option_bounds_assets_of_a_pool(kz, tmp_path):
    _write(tmp_path / "pooled.py", POOLED)
    spans = {}
    for size in ("1", "2"):
        log = tmp_path / f"spans-{size}.log"
        kz.env["POOL_LOG"] = str(log)
        kz("run", "pooled.py", "--executor", "threads", "--pool", f"gpu={size}", "--force")
        (_, a0, a1), (_, b0, b1) = (line.split() for line in log.read_text().splitlines())
        spans[size] = float(a0) < float(b1) and float(b0) < float(a1)  # they overlapped
    assert spans == {"1": False, "2": True}
    bad = kz("run", "pooled.py", "--pool", "gpu=0", rc=2)
    assert "give NAME=SIZE with a whole number SIZE >= 1" in bad.stderr


BROKEN = '''
from kazeflow import asset


def parse(rows):
    for i, row in enumerate(rows):
        if row < 0:
            raise ValueError(f"bad row {i}: {row}")
    return rows


@asset
def rows():
    return [1, 2, -3]


@asset
def parsed(rows):
    return parse(rows)


if __name__ == "__main__":
    from kazeflow import Flow
    Flow(["parsed"]).run()
'''


def test_a_failure_reads_like_python_in_scripts_history_status_and_show(kz, tmp_path):
    script = _write(tmp_path / "flows.py", BROKEN)
    # An uncaught failure of a script shows the user's own frames, then FlowRunError.
    crashed = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=kz.env,
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 1
    err = crashed.stderr
    assert f'File "{script}"' in err and "in parse" in err
    assert "ValueError: bad row 2: -3" in err
    assert "direct cause of the following exception" in err
    assert err.rstrip().splitlines()[-1].startswith("kazeflow.errors.FlowRunError: asset "
                                                    "'parsed' failed: ValueError: bad row 2")

    history, status = kz.many(("history",), ("status", "flows.py", "--json"))
    failed_row = next(line for line in history.stdout.splitlines() if " failed " in line)
    assert "parsed" in failed_row and "ValueError: bad row 2: -3" in failed_row
    reasons = {s["asset_name"]: s["reasons"] for s in json.loads(status.stdout)}
    assert reasons["rows"] == []
    assert [r["kind"] for r in reasons["parsed"]] == ["never_materialized", "last_failed"]
    assert reasons["parsed"][1]["message"] == \
        "its last attempt failed: ValueError: bad row 2: -3"

    _write(script, BROKEN.replace("[1, 2, -3]", "[1, 2, 3]"))
    kz("run", "flows.py")
    history = kz("history", "parsed", "--json")
    newest = json.loads(history.stdout)[0]
    assert newest["status"] == "materialized"
    status = json.loads(kz("status", "flows.py", "--json").stdout)
    assert all(s["state"] == "fresh" and s["reasons"] == [] for s in status)
    shown = json.loads(kz("show", "parsed", "--version", str(newest["id"]), "--json").stdout)
    assert shown["materialization"]["id"] == newest["id"]
    assert shown["value_repr"] == "[1, 2, 3]"


FLOW_OBJECT = FLOW + '''

from kazeflow import Flow

flow = Flow(["report"], config={"processed_data": {"multiplier": 3}})
other = 42
'''


def test_a_flow_object_as_target_brings_its_selection_and_config(kz, tmp_path):
    _write(tmp_path / "flows.py", FLOW_OBJECT)
    ran = kz("run", "flows.py:flow")
    assert "3 materialized" in ran.stderr
    shown, mine, plain = kz.many(("show", "report", "--json"),
                                 ("status", "flows.py:flow", "--json"),
                                 ("status", "flows.py", "--json"))
    assert json.loads(shown.stdout)["value_repr"] == "'total=33'"  # multiplier 3
    assert {s["state"] for s in json.loads(mine.stdout)} == {"fresh"}
    states = {s["asset_name"]: s["state"] for s in json.loads(plain.stdout)}
    assert states["processed_data"] == "stale"  # without the flow's config: multiplier 1
    now, older = kz.many(("show", "report", "--target", "flows.py:flow", "--json"),
                         ("show", "report", "--target", "flows.py"))
    assert json.loads(now.stdout)["current"] is True
    assert "current         no: the asset is stale (upstream 'processed_data' is stale" \
        in older.stdout  # the plain file's default config is another multiplier
    bad = kz("status", "flows.py:other", rc=1)
    assert "'other' in module 'flows' is a int, not a Flow; its Flow objects: flow" in \
        bad.stderr


def test_read_only_commands_find_the_store_beside_the_target_or_say_where_they_looked(
        kz, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    _write(project / "flows.py", FLOW)
    env = {k: v for k, v in kz.env.items() if k != "KAZEFLOW_HOME"}

    def kazeflow(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([_script(), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    nowhere = kazeflow("status", "proj/flows.py", "--json")
    assert {s["state"] for s in json.loads(nowhere.stdout)} == {"missing"}
    assert (f"no kazeflow store at {tmp_path / '.kazeflow'} nor {project / '.kazeflow'} "
            "yet: every asset is missing") in nowhere.stderr
    assert "--store PATH or $KAZEFLOW_HOME" in nowhere.stderr
    assert not (tmp_path / ".kazeflow").exists() and not (project / ".kazeflow").exists()

    subprocess.run([_script(), "run", "flows.py"], cwd=project, env=env, check=True,
                   capture_output=True, timeout=60)  # the project's own store
    found = kazeflow("status", "proj/flows.py", "--json")
    assert {s["state"] for s in json.loads(found.stdout)} == {"fresh"}
    assert found.stderr == "" and not (tmp_path / ".kazeflow").exists()


def test_after_the_quickstart_the_readme_status_example_says_fresh(kz, tmp_path):
    examples = Path(__file__).resolve().parents[1] / "examples"
    script = shutil.copy(examples / "quickstart.py", tmp_path / "quickstart.py")
    subprocess.run([sys.executable, script], cwd=tmp_path, env=kz.env, check=True,
                   capture_output=True, timeout=60)
    status = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from quickstart import flow
        for name, st in flow.status().items():
            print(name, st.state, [str(r) for r in st.reasons])
        print(flow.load("processed_data"))
        """)], cwd=tmp_path, env=kz.env, capture_output=True, text=True, timeout=60)
    assert status.stdout.splitlines() == ["raw_data fresh []", "processed_data fresh []",
                                          "30"], status.stderr
    cli = json.loads(kz("status", "quickstart.py:flow", "--json").stdout)
    assert [(s["asset_name"], s["state"]) for s in cli] == [("raw_data", "fresh"),
                                                            ("processed_data", "fresh")]


def test_help_loads_no_engine_no_store_and_db_imports_sqlalchemy_only_when_it_runs(tmp_path):
    """``kazeflow --help`` loads neither SQLAlchemy nor Alembic, nor kazeflow's engine
    (running, fingerprinting, executors) or store; ``db current`` still works (it
    imports what it needs when it runs)."""
    code = ("import sys\n"
            "from kazeflow.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = {m for m in sys.modules}\n"
            "print(sorted({m.split('.')[0] for m in loaded} & {'sqlalchemy', 'alembic'}) + "
            "sorted(m for m in loaded if m.split('.')[:2] in (['kazeflow', 'flow'], "
            "['kazeflow', 'store'], ['kazeflow', 'running'], ['kazeflow', 'fingerprint'], "
            "['kazeflow', 'executors'])), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "[]", done.stderr
    current = subprocess.run([sys.executable, "-m", "kazeflow", "db", "current", "--store",
                              str(tmp_path / "s")], capture_output=True, text=True,
                             timeout=60)
    assert current.returncode == 0 and "no schema yet" in current.stdout, current.stderr
