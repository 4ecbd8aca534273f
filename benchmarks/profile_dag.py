"""Profile one dag-N phase with cProfile: where kazeflow spends a cold, warm or change run.

Usage::

    python benchmarks/profile_dag.py [--size 1000] [--phase cold|warm|change|status]
                                     [--top 15] [--save PATH.prof]

Prints the top kazeflow functions by cumulative time, then the top functions overall by
own time (fsync, SQLite, tokenize …).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import new_store
from _dag import Dag, load_dag, timed_run, timed_status

KAZEFLOW_FILES = r"[/\\]kazeflow[/\\]"


def phase_call(dag: Dag, store: Path, phase: str) -> Callable[[], Any]:
    """Prepare the store for ``phase`` and return the call to profile."""
    new_store(store)
    if phase == "cold":
        return lambda: timed_run(dag, store)
    timed_run(dag, store)
    if phase == "warm":
        return lambda: timed_run(dag, store)
    if phase == "change":
        return lambda: timed_run(dag, store, offset=1)
    return lambda: timed_status(dag, store)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000)
    parser.add_argument("--phase", choices=["cold", "warm", "change", "status"],
                        default="warm")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--save", type=Path, help="also save the raw profile here")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="kzbench-profile-"))
    try:
        dag = load_dag(args.size, workdir)
        call = phase_call(dag, workdir / "store", args.phase)
        profiler = cProfile.Profile()
        seconds, _ = profiler.runcall(call)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"dag-{args.size} {args.phase}: {seconds:.4f} s (unprofiled figures are lower)")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    if args.save:
        stats.dump_stats(args.save)
    stats.sort_stats("cumulative").print_stats(KAZEFLOW_FILES, args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
