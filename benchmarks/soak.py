"""Soak: the crash and concurrency scenarios of the test suite, longer and repeated.

The test suite runs CI-sized versions (``tests/test_crash.py``, ``tests/test_concurrency.py``);
this script runs the same scenario functions with every kill point (each moment of a batch
once per asset in it), more processes and threads, and more gc races, ``--iterations``
times, and exits non-zero on the first broken promise::

    python benchmarks/soak.py                        # everything, 3 iterations (~10 min)
    python benchmarks/soak.py --only crash,gc --iterations 10 --processes 12
    python benchmarks/soak.py --only processes --processes 16 --iterations 20

Scenarios: ``crash`` (SIGKILL at every moment of a fresh and of an incremental run),
``processes`` (N processes run one flow together), ``bound`` (a run that decided before
another committed), ``threads`` (N threads share one Flow): all succeed alike, each asset
at most once per run, duplicate executions reported (the goal is none); ``gc`` (gc loops
in two processes while this process and two more run with changing config: every value
of every run loads).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _flows  # noqa: E402
import test_concurrency  # noqa: E402
import test_crash  # noqa: E402


def crash(tmp: Path, args: argparse.Namespace) -> str:
    fresh = test_crash.kill_sweep(tmp / "fresh", config=_flows.DIAMOND_CONFIG,
                                  every_asset=True, parallel=args.parallel)
    test_crash.assert_sweep_covers(fresh, minimum=40)
    incremental = test_crash.kill_sweep(
        tmp / "incremental", config=test_crash.CHANGED_CONFIG,
        base_config=_flows.DIAMOND_CONFIG, every_asset=True, parallel=args.parallel)
    return f"{len(fresh.labels)} + {len(incremental.labels)} kill points"


def _checked(together: Any, runs: int, what: str) -> str:
    """Assert that ``runs`` concurrent runs all succeeded alike; describe them."""
    test_concurrency.assert_all_succeeded_alike(together, runs=runs)
    return f"{what}{together.duplicates} duplicate execution(s)"


def processes(tmp: Path, args: argparse.Namespace) -> str:
    return _checked(test_concurrency.processes_scenario(tmp, args.processes),
                    args.processes, f"{args.processes} processes, ")


def bound(tmp: Path, args: argparse.Namespace) -> str:
    return _checked(test_concurrency.late_decider_scenario(tmp), 2, "")


def threads(tmp: Path, args: argparse.Namespace) -> str:
    return _checked(test_concurrency.threads_scenario(tmp, args.processes),
                    args.processes, f"{args.processes} threads, ")


def gc(tmp: Path, args: argparse.Namespace) -> str:
    test_concurrency.gc_scenario(tmp, runs=args.gc_runs, runner_processes=2, collectors=2)
    return f"3 runners x {args.gc_runs} runs, 2 collectors"


SCENARIOS: dict[str, Callable[[Path, argparse.Namespace], str]] = {
    "crash": crash, "processes": processes, "bound": bound, "threads": threads, "gc": gc}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help="comma-separated scenarios (default: all)")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--processes", type=int, default=8,
                        help="processes / threads sharing one store")
    parser.add_argument("--parallel", type=int, default=2,
                        help="children being killed at the same time")
    parser.add_argument("--gc-runs", type=int, default=60)
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")

    failures: Counter[str] = Counter()
    for iteration in range(1, args.iterations + 1):
        for name in chosen:
            with tempfile.TemporaryDirectory(prefix=f"kazeflow-soak-{name}-") as tmp:
                started = time.perf_counter()
                try:
                    what = SCENARIOS[name](Path(tmp), args)
                except Exception:  # one broken promise: report it, keep soaking
                    failures[name] += 1
                    print(f"[{iteration}] {name}: FAILED", flush=True)
                    traceback.print_exc()
                    continue
                print(f"[{iteration}] {name}: ok, {what} "
                      f"({time.perf_counter() - started:.1f}s)", flush=True)
    if failures:
        print(f"FAILED: {dict(failures)}")
        return 1
    print("all scenarios held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
