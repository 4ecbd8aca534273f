"""A CI-sized run of benchmarks/bench.py: the script works end to end (no timings checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"

EXPECTED_ROWS = [
    "import kazeflow (new interpreter)",
    "new store (folders + schema)",
    "dag-20 cold run",
    "dag-20 warm run",
    "dag-20 change run",
    "dag-20 status()",
    "big-array 4 MiB cold run",
    "big-array 4 MiB warm run, no read",
    "big-array 4 MiB warm run + read",
    "big-array 4 MiB peak RSS, cold run",
    "big-array 4 MiB peak RSS, warm read",
]


def test_small_benchmark_run_prints_every_workload(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "20", "--array-mib", "4", "--quick",
         "--json", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name in EXPECTED_ROWS:
        assert any(line.startswith(name + "  ") for line in lines), (name, proc.stdout)
    figures = json.loads(out.read_text())
    assert [row["workload"] for row in figures["rows"]] == EXPECTED_ROWS
    assert all(row["value"] > 0 for row in figures["rows"])
