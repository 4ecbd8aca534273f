"""``status()`` and the read-only commands write nothing: not a record, not a lock file,
not the source cache (``run`` saves that). Each is a fresh process, as users run them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PIPELINE = textwrap.dedent('''
    from kazeflow import asset


    def scale(x):
        return x * {factor}


    @asset
    def raw():
        return [1, 2, 3]


    @asset
    def total(raw):
        return scale(sum(raw))
''')


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root``: its size, mtime and content hash."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def write(path: Path, text: str) -> None:
    """Write ``text`` dated a minute ago: old enough for the source cache to trust."""
    path.write_text(text)
    past = time.time() - 60
    os.utime(path, (past, past))


def kazeflow(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "kazeflow", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_status_and_read_only_commands_write_nothing(tmp_path):
    pipeline, root = tmp_path / "pipeline.py", tmp_path / "store"
    write(pipeline, PIPELINE.format(factor=2))
    kazeflow("run", pipeline, "--store", root, cwd=tmp_path)
    write(pipeline, PIPELINE.format(factor=3))  # an edit: status has news to tell
    before = snapshot(root)
    assert "cache/sources.marshal" in before

    status = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import runpy
        from kazeflow import Flow
        runpy.run_path({str(pipeline)!r})
        statuses = Flow(["total"], store={str(root)!r}).status()
        print(statuses["raw"].state, statuses["total"].state)
        """)], capture_output=True, text=True, timeout=120)
    assert status.stdout.split() == ["fresh", "stale"], status.stderr
    assert snapshot(root) == before, "Flow.status() wrote to the store"

    commands = [("status", pipeline), ("why", pipeline, "total"), ("graph", pipeline),
                ("history",), ("runs",), ("show", "total"), ("db", "current"),
                ("gc", "--keep-last", "1", "--dry-run")]
    for command in commands:
        kazeflow(*command, "--store", root, cwd=tmp_path)
        assert snapshot(root) == before, f"kazeflow {command[0]} wrote to the store"

    kazeflow("run", pipeline, "--store", root, cwd=tmp_path)  # run saves what it learnt
    after = snapshot(root)
    assert after["cache/sources.marshal"] != before["cache/sources.marshal"]


def test_status_of_a_store_that_does_not_exist_creates_nothing(tmp_path):
    from kazeflow import Flow, asset

    @asset
    def lonely():
        return 1

    root = tmp_path / "nowhere"
    statuses = Flow(["lonely"], store=root).status()
    assert statuses["lonely"].state == "missing"
    assert [r.kind for r in statuses["lonely"].reasons] == ["never_materialized"]
    assert not root.exists()
