"""kazeflow benchmark: dag-N, big-array and import time, each against baselines from the
same run. No timing is asserted anywhere; the table says which targets are met.

Usage::

    python benchmarks/bench.py [--sizes 100,1000,10000] [--array-mib 256] [--quick]
                               [--json PATH] [--workdir DIR]

See benchmarks/README.md for what each workload measures and the targets.
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
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _bigarray import run_big_array
from _common import Row, best_of, fmt, timed
from _dag import growth_rows, run_dag
from _startup import run_startup

import kazeflow

COLUMNS = ("workload", "value", "baseline", "ratio", "target", "met", "note")


def parse_sizes(text: str) -> list[int]:
    """``"100,1000"`` → ``[100, 1000]``."""
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"sizes must be integers ≥ 2, got {text!r}")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark kazeflow against plain-Python baselines.")
    parser.add_argument("--sizes", type=parse_sizes, default=[100, 1_000, 10_000],
                        help="dag sizes, comma-separated (default 100,1000,10000)")
    parser.add_argument("--array-mib", type=int, default=256,
                        help="size of the big-array asset in MiB (default 256)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions (for CI smoke runs)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also save the figures as JSON")
    parser.add_argument("--workdir", type=Path,
                        help="where stores and baseline files go (default: a temp dir); "
                             "it decides the disk being measured")
    return parser.parse_args(argv)


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned plain-text table."""
    cells = [COLUMNS] + [
        (r.workload, fmt(r.value, r.unit), fmt(r.baseline, r.unit), fmt(r.ratio, "x"),
         r.target.text, {True: "met", False: "NOT MET", None: "—"}[r.target.met], r.note)
        for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Facts about where the figures come from."""
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "kazeflow": kazeflow.__version__, "commit": commit,
            "load_average_1min": round(load, 2) if load is not None else None}


def probes(workdir: Path) -> dict[str, float]:
    """How fast this machine is right now, to compare runs made at other times (shared
    VMs drift by tens of percent within an hour): a plain Python loop, and creating a
    small file (on ext4 this swings several-fold after many files were deleted)."""
    loop = best_of(20, lambda: timed(lambda: sum(range(100_000)))[0])
    folder = workdir / "probe"
    folder.mkdir()

    def create_files() -> float:
        start = time.perf_counter()
        for i in range(200):
            (folder / f"{i}-{time.perf_counter_ns()}").write_bytes(b"x" * 100)
        return (time.perf_counter() - start) / 200

    return {"python_loop_ms": round(loop * 1000, 2),
            "file_create_us": round(best_of(3, create_files) * 1e6, 1)}


def run_all(args: argparse.Namespace, workdir: Path) -> tuple[list[Row], list[str]]:
    """Every workload in turn, announcing each on stderr; returns rows and failures."""
    rows: list[Row] = []
    failures: list[str] = []
    steps: list[tuple[str, Callable[[], list[Row]]]] = [
        ("startup", lambda: run_startup(workdir, args.quick))]
    steps += [(f"dag-{n}", lambda n=n: run_dag(n, workdir, args.quick)) for n in args.sizes]
    steps.append((f"big-array {args.array_mib} MiB",
                  lambda: run_big_array(args.array_mib, workdir, args.quick)))
    for label, step in steps:
        print(f"running {label} ...", file=sys.stderr, flush=True)
        try:
            new = step()
        except Exception:  # one broken workload must not hide the others' figures
            failures.append(f"{label}:\n{traceback.format_exc()}")
            print(failures[-1], file=sys.stderr, flush=True)
            continue
        rows.extend(new)
        print(format_table(new), file=sys.stderr, flush=True)
    if 1_000 in args.sizes and 10_000 in args.sizes:
        rows.extend(growth_rows(rows, 1_000, 10_000))
    return rows, failures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kzbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        speed = probes(workdir)
        rows, failures = run_all(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    facts = {**machine(), **speed}
    print(f"kazeflow {facts['kazeflow']} ({facts['commit']}), Python {facts['python']}, "
          f"{facts['cpus']} CPUs (load {facts['load_average_1min']}), {facts['platform']}, "
          f"{started:%Y-%m-%d %H:%M} UTC; probes: sum(range(100_000)) "
          f"{speed['python_loop_ms']} ms, creating a small file {speed['file_create_us']} µs")
    print(format_table(rows))
    met = [r.target.met for r in rows if r.target.met is not None]
    print(f"\n{sum(met)} of {len(met)} targets met")
    if args.json:
        args.json.write_text(json.dumps({
            "date": started.isoformat(timespec="seconds"), "machine": facts,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "rows": [r.to_json() for r in rows], "failures": failures}, indent=2) + "\n",
            encoding="utf-8")
    if failures:
        print(f"{len(failures)} workload(s) failed: see the tracebacks above", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
