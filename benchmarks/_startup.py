"""Fixed costs: ``import kazeflow`` in a new interpreter, and creating a new store."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from _common import Row, Target, best_of, timed

from kazeflow import Store

IMPORT_BUDGET_S = 0.150


def python_seconds(code: str, repeats: int) -> float:
    """Best wall-clock seconds of ``python -c code`` in a new interpreter."""
    cmd = [sys.executable, "-c", code]
    return best_of(repeats, lambda: timed(lambda: subprocess.run(cmd, check=True))[0])


def store_creation_seconds(workdir: Path, repeats: int) -> tuple[float, float]:
    """Seconds to open a new store (folders plus schema): the first time, and the best."""
    times = []
    for i in range(max(2, min(repeats, 5))):
        path = workdir / f"store-new{i}"

        def create(path: Path = path) -> None:
            with Store(path) as store:
                store.metadata  # noqa: B018 - opening the metadata creates the schema

        times.append(timed(create)[0])
        shutil.rmtree(path, ignore_errors=True)
    return times[0], min(times)


def run_startup(workdir: Path, quick: bool) -> list[Row]:
    """Rows for ``import kazeflow`` against ``pass``, and for creating a store."""
    repeats = 1 if quick else 10
    bare = python_seconds("pass", repeats)
    imported = python_seconds("import kazeflow", repeats)
    added = imported - bare
    first, best = store_creation_seconds(workdir, repeats)
    return [
        Row("import kazeflow (new interpreter)", imported, baseline=bare,
            target=Target(f"adds ≤ {IMPORT_BUDGET_S * 1e3:.0f} ms", added <= IMPORT_BUDGET_S),
            note=f"adds {added * 1e3:.0f} ms; baseline: python -c pass"),
        Row("new store (folders + schema)", best,
            note=f"first in this process {first:.3f} s (imports Alembic)"),
    ]
