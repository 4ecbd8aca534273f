"""Whole processes, as users run them: ``python pipeline.py`` for dag-N cold, warm and
change runs and ``status()``, ``kazeflow status`` and ``kazeflow --help``, ``import
kazeflow``, and the big array, each a fresh interpreter, side by side with plain Python
(the same functions undecorated) and joblib.Memory (the same functions cached) measured
in the same run.

Run from a checkout (joblib and numpy come with the ``test`` extra)::

    python benchmarks/process.py                       # dag-100/1,000/10,000, 256 MiB
    python benchmarks/process.py --sizes 1000 --repeats 5 --array-mib 64
    python benchmarks/process.py --markdown figures.md --json figures.json

Each figure is the median of ``--repeats`` fresh processes, with the min–max; the
contenders are interleaved, so a busy neighbour slows them alike. Nothing here asserts a
timing: the exit status is 1 only when kazeflow does something wrong.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _bigproc import big_rows  # noqa: E402
from _common import write_aged  # noqa: E402
from _dag import dag_source, deps_of, downstream_of  # noqa: E402
from _procs import (  # noqa: E402
    PYTHON,
    Limit,
    ProcessRow,
    kazeflow_command,
    rotated,
    seconds,
    table,
)

#: The dag module's ``asset`` and ``Config`` as do-nothing stand-ins (plain and joblib).
_STAND_INS = '''
def asset(fn=None, **options):
    return fn if fn is not None else (lambda f: f)


class Config:
    def __init__(self, values=None):
        self.offset = (values or {}).get("offset", 0)
'''
#: Call every function in order, passing values by hand (``CALL`` decides how).
_CALLS = '''
values = {{}}
for i in range({size}):
    fn = getattr(dag, f"a{{i}}")
    kwargs = {{f"a{{d}}": values[d] for d in DEPS[i]}}
    if i == {mid}:
        kwargs["config"] = dag.MidConfig({{"offset": offset}})
    values[i] = CALL(fn, **kwargs)
print(values[{last}])
'''
_PLAIN = '''import sys
import {plain} as dag
offset = int(sys.argv[2]) if sys.argv[2:] else 0
DEPS = {deps!r}
CALL = lambda fn, **kwargs: fn(**kwargs)
''' + _CALLS
_JOBLIB = '''import sys
import joblib
import {plain} as dag
offset = int(sys.argv[2]) if sys.argv[2:] else 0
DEPS = {deps!r}
memory = joblib.Memory(sys.argv[1], verbose=0)
CACHED = {{}}
def CALL(fn, **kwargs):
    if fn not in CACHED:
        CACHED[fn] = memory.cache(fn)
    return CACHED[fn](**kwargs)
''' + _CALLS
_KAZEFLOW = '''import sys
from kazeflow import Flow
flow = Flow(["a{last}"], store=sys.argv[1] if __name__ == "__main__" else None)
if __name__ == "__main__":
    offset = int(sys.argv[2])
    config = {{"a{mid}": {{"offset": offset}}}} if offset else None
    if sys.argv[3] == "status":
        assert all(s.fresh for s in flow.status(config=config).values())
    else:
        result = flow.run(config=config)
        assert len(result.materialized) == int(sys.argv[4]), result.summary()
        print(result["a{last}"])
'''

WARM_LIMIT = 1.25  # x the process that only imports the undecorated module
COLD_LIMIT = CHANGE_LIMIT = 0.8  # x joblib.Memory's process
HELP_LIMIT, IMPORT_LIMIT = 0.150, 0.060  # seconds; import: added to `python -c pass`


def write_scripts(size: int, folder: Path) -> dict[str, Path]:
    """dag-``size``'s modules (decorated, undecorated) and the three runner scripts."""
    folder.mkdir(parents=True, exist_ok=True)
    source = dag_source(size)
    write_aged(folder / f"dag{size}.py", source)
    write_aged(folder / f"dag{size}_plain.py",
                 source.replace("from kazeflow import Config, asset\n", _STAND_INS))
    fields = {"size": size, "mid": size // 2, "last": size - 1, "plain": f"dag{size}_plain",
              "deps": {i: deps_of(i) for i in range(size)}}
    scripts = {"plain": _PLAIN.format(**fields), "joblib": _JOBLIB.format(**fields),
               "kazeflow": f"from dag{size} import *\n" + _KAZEFLOW.format(**fields)}
    paths = {}
    for name, text in scripts.items():
        paths[name] = folder / f"run_{name}.py"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def command(name: str, script: Path, store: Path, phase: str, size: int) -> list[str]:
    """The process of ``phase`` for contender ``name``: plain and joblib scripts take
    ``STORE OFFSET``; kazeflow's take ``STORE OFFSET run EXPECTED`` (how many assets
    must re-run) or ``STORE 0 status``. Phase ``import`` only imports the undecorated
    module (from ``python -c``: a runner script would also compile its own code)."""
    if phase == "import":
        return [PYTHON, "-c", f"import dag{size}_plain"]
    if phase == "kazeflow status":
        return [*kazeflow_command(), "status", "--store", str(store), f"{script}:flow"]
    argv = [PYTHON, str(script), str(store), "1" if phase == "change" else "0"]
    if name != "kazeflow":
        return argv
    if phase == "status()":
        return [*argv, "status"]
    rerun = {"cold": size, "warm": 0,
             "change": len(downstream_of(size // 2, size))}[phase]
    return [*argv, "run", str(rerun)]


#: Per phase of a dag row: what each contender runs (None: not measured).
_PHASES = {"cold": ("cold", "cold", "cold"),
           "warm": ("import", "warm", "warm"),
           "status()": ("import", None, "status()"),
           "kazeflow status": ("import", None, "kazeflow status"),
           "change": ("change", "change", "change")}


def dag_rows(size: int, workdir: Path, repeats: int) -> list[ProcessRow]:
    """cold / warm / status() / ``kazeflow status`` / change of dag-``size``, phases in
    that order on one store per contender and repeat."""
    folder = workdir / f"dag{size}"
    scripts = write_scripts(size, folder)
    rows = {phase: ProcessRow(f"dag-{size} {phase}") for phase in _PHASES}
    for phase in ("warm", "status()", "kazeflow status"):
        rows[phase].note = "plain: a process that only imports the undecorated module"
        if size == 1000:
            rows[phase].target = Limit(f"≤ {WARM_LIMIT}x plain", WARM_LIMIT, "plain")
    if size == 1000:
        rows["cold"].target = Limit(f"≤ {COLD_LIMIT}x joblib", COLD_LIMIT, "joblib")
        rows["change"].target = Limit(f"≤ {CHANGE_LIMIT}x joblib", CHANGE_LIMIT,
                                     "joblib")
    rows["change"].note = f"{len(downstream_of(size // 2, size))} of {size} re-run"
    for name, script in scripts.items():  # once, untimed: bytecode and disk caches warm
        seconds(command(name, script, folder / "warm-up", "cold", size), folder)
        shutil.rmtree(folder / "warm-up", ignore_errors=True)
    for run in range(repeats):
        for i, (name, script) in rotated(list(enumerate(scripts.items())), run):
            store = folder / f"store-{name}-{run}"
            shutil.rmtree(store, ignore_errors=True)
            for row_phase, phases in _PHASES.items():
                if phases[i] is not None:
                    rows[row_phase].add(name, seconds(
                        command(name, script, store, phases[i], size), folder))
            shutil.rmtree(store, ignore_errors=True)
    return list(rows.values())


def startup_rows(workdir: Path, repeats: int) -> list[ProcessRow]:
    """``import kazeflow`` against ``python -c pass``; ``kazeflow --help``."""
    imported = ProcessRow("import kazeflow", target=Limit(
        f"adds ≤ {IMPORT_LIMIT * 1e3:.0f} ms", IMPORT_LIMIT, "plain", add=True),
        note="plain: python -c pass")
    helped = ProcessRow("kazeflow --help", target=Limit(f"≤ {HELP_LIMIT * 1e3:.0f} ms",
                                                         HELP_LIMIT),
                        note="plain: python -c pass")
    for _ in range(repeats):
        bare = seconds([PYTHON, "-c", "pass"], workdir)
        imported.add("plain", bare)
        helped.add("plain", bare)
        imported.add("kazeflow", seconds([PYTHON, "-c", "import kazeflow"], workdir))
        helped.add("kazeflow", seconds([*kazeflow_command(), "--help"], workdir))
    return [imported, helped]


def growth_row(rows: list[ProcessRow], sizes: list[int]) -> ProcessRow | None:
    """dag-10,000 warm over dag-1,000 warm, less the interpreter's start (linear: ≤ ~11x)."""
    if not {1000, 10000} <= set(sizes):
        return None
    warm = {r.workload: r for r in rows if r.workload.endswith(" warm")}
    small, large = warm["dag-1000 warm"], warm["dag-10000 warm"]
    bare = [r for r in rows if r.workload == "import kazeflow"][0].series["plain"].median
    assert bare is not None
    ratio = ((large.series["kazeflow"].median or 0) - bare) / \
        ((small.series["kazeflow"].median or 0) - bare)
    row = ProcessRow("dag warm growth 1000→10000", unit="x", target=Limit("≤ 11x", 11.0),
                     note="kazeflow's warm process less python -c pass, 10,000 over 1,000")
    row.add("kazeflow", ratio)
    return row


def machine() -> str:
    """What the figures were measured on."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip() or "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now}, commit {commit}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {load}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="dag sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes each")
    parser.add_argument("--array-mib", type=int, default=256, help="0: no big-array rows")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also save the figures")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kazeflow-process-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    header = machine()
    print(f"whole processes, median of {args.repeats} (min–max); {header}", file=sys.stderr)
    rows = startup_rows(workdir, max(args.repeats, 5))
    for size in sizes:
        rows += dag_rows(size, workdir, args.repeats if size < 10_000 else
                         max(1, args.repeats // 2))
        print(f"dag-{size} done", file=sys.stderr)
    if (growth := growth_row(rows, sizes)) is not None:
        rows.append(growth)
    if args.array_mib:
        rows += big_rows(args.array_mib, workdir, max(args.repeats, 5))  # first touch of
        # fresh memory varies most on a VM: more runs
    print(f"Whole processes, median of {args.repeats} (min–max), measured {header}.\n")
    print(table(rows))
    missed = [r.workload for r in rows if r.met() is False]
    print(f"\n{sum(r.met() is True for r in rows)} targets met, {len(missed)} not met"
          + (f": {', '.join(missed)}" if missed else ""))
    if args.json:
        args.json.write_text(json.dumps({"machine": header, "repeats": args.repeats,
                                         "rows": [r.to_json() for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
