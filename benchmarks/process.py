"""Whole processes, as users run them: ``python pipeline.py`` for dag-N cold, warm and
change runs and ``status()``, ``kazeflow status`` and ``kazeflow --help``, each a fresh
interpreter, side by side with plain Python (the same functions undecorated) and
joblib.Memory (the same functions cached) measured in the same run.

Run from a checkout (joblib: ``pip install joblib``)::

    python benchmarks/process.py                     # dag-100 and dag-1000, 5 runs each
    python benchmarks/process.py --sizes 1000,10000 --repeats 3

Each figure is the median of ``--repeats`` fresh processes, with the min–max; runs of
the three contenders are interleaved, so a busy neighbour slows them alike. This is a
benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _dag import dag_source, deps_of  # noqa: E402

#: Plain Python: the dag module with ``asset`` and ``Config`` as do-nothing stand-ins.
_PLAIN_PRELUDE = '''
def asset(fn=None, **options):
    return fn if fn is not None else (lambda f: f)


class Config:
    def __init__(self, values=None):
        self.offset = (values or {}).get("offset", 0)
'''

_CALLS = '''
import sys
offset = int(sys.argv[2]) if sys.argv[2:] else 0
values = {{}}
for i in range({size}):
    fn = globals()[f"a{{i}}"]
    kwargs = {{f"a{{d}}": values[d] for d in DEPS[i]}}
    if i == {mid}:
        kwargs["config"] = MidConfig({{"offset": offset}})
    values[i] = CALL(fn, **kwargs)
print(values[{size} - 1])
'''

_KAZEFLOW = '''
import sys
from kazeflow import Flow
flow = Flow(["a{last}"], store=sys.argv[1])
if __name__ == "__main__":
    offset = int(sys.argv[2]) if sys.argv[2:] else 0
    config = {{"a{mid}": {{"offset": offset}}}} if offset else None
    if sys.argv[3:] == ["status"]:
        flow.status(config=config)
    else:
        print(flow.run(config=config)["a{last}"])
'''


def write_scripts(size: int, folder: Path) -> dict[str, Path]:
    """The three scripts of dag-``size``: plain, joblib and kazeflow."""
    folder.mkdir(parents=True, exist_ok=True)
    source = dag_source(size)
    mid, deps = size // 2, {i: deps_of(i) for i in range(size)}
    body = source.replace("from kazeflow import Config, asset\n", "")
    calls = _CALLS.format(size=size, mid=mid)
    scripts = {
        "plain": f"{_PLAIN_PRELUDE}\n{body}\nDEPS = {deps!r}\n\n"
                 f"def CALL(fn, **kwargs):\n    return fn(**kwargs)\n{calls}",
        "joblib": f"{_PLAIN_PRELUDE}\n{body}\nDEPS = {deps!r}\n"
                  "import joblib, sys\nmemory = joblib.Memory(sys.argv[1], verbose=0)\n"
                  "CACHED = {}\n"
                  "def CALL(fn, **kwargs):\n"
                  "    if fn not in CACHED:\n"
                  "        CACHED[fn] = memory.cache(fn)\n"
                  "    return CACHED[fn](**kwargs)\n" + calls,
        "kazeflow": source + _KAZEFLOW.format(last=size - 1, mid=mid),
    }
    paths = {}
    for name, text in scripts.items():
        paths[name] = folder / f"dag{size}_{name}.py"
        paths[name].write_text(text)
    return paths


def seconds(cmd: list[str], cwd: Path) -> float:
    """Wall-clock seconds of one process."""
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def figure(times: list[float]) -> str:
    return (f"{statistics.median(times):7.3f} s ({min(times):.3f}–{max(times):.3f})"
            if times else "—")


def measure(size: int, workdir: Path, repeats: int) -> list[tuple[str, dict[str, list[float]]]]:
    """Per phase: contender → seconds of each fresh process."""
    scripts = write_scripts(size, workdir / f"dag{size}")
    python = sys.executable
    phases: dict[str, dict[str, list[float]]] = {
        p: {"plain": [], "joblib": [], "kazeflow": []}
        for p in ("cold", "warm", "change", "status()", "kazeflow status")}
    help_times: list[float] = []
    for run in range(repeats):  # interleaved
        for name in ("plain", "joblib", "kazeflow"):
            place = workdir / f"dag{size}-{name}-{run}"
            shutil.rmtree(place, ignore_errors=True)
            argv = [python, str(scripts[name]), str(place)]
            phases["cold"][name].append(seconds(argv, workdir))
            phases["warm"][name].append(seconds(argv, workdir))
            phases["change"][name].append(seconds([*argv, "1"], workdir))
            if name == "kazeflow":
                phases["status()"][name].append(seconds([*argv, "1", "status"], workdir))
                phases["kazeflow status"][name].append(seconds(
                    [python, "-m", "kazeflow", "status", "--store", str(place),
                     f"{scripts[name]}:flow"], workdir))
            shutil.rmtree(place, ignore_errors=True)
        help_times.append(seconds([python, "-m", "kazeflow", "--help"], workdir))
    phases["status()"]["plain"] = phases["warm"]["plain"]
    phases["kazeflow status"]["plain"] = phases["warm"]["plain"]
    phases["kazeflow --help"] = {"plain": [seconds([python, "-c", "pass"], workdir)
                                           for _ in range(repeats)],
                                 "joblib": [], "kazeflow": help_times}
    return list(phases.items())


def ratio(times: list[float], baseline: list[float]) -> str:
    if not times or not baseline:
        return "—"
    return f"{statistics.median(times) / statistics.median(baseline):.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="dag sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes each")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kazeflow-process-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"whole processes, median of {args.repeats} (min–max); plain = the same "
         "functions undecorated (status: its warm run); ratios of medians")
    print(f"{'workload':<26} {'plain Python':<28} {'joblib.Memory':<28} "
         f"{'kazeflow':<28} {'vs plain':>9} {'vs joblib':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        for phase, times in measure(size, workdir, args.repeats):
            label = phase if phase == "kazeflow --help" else f"dag-{size} {phase}"
            print(f"{label:<26} {figure(times['plain']):<28} {figure(times['joblib']):<28} "
                 f"{figure(times['kazeflow']):<28} "
                 f"{ratio(times['kazeflow'], times['plain']):>9} "
                 f"{ratio(times['kazeflow'], times['joblib']):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
