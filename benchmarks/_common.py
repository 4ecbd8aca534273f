"""Shared pieces of the benchmark: result rows, timing, targets and generated modules."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kazeflow import Store

MIB = 1 << 20


class BenchmarkError(RuntimeError):
    """kazeflow did something other than what the workload expects (a correctness bug)."""


@dataclass(frozen=True)
class Target:
    """What a figure should stay under, as text, and whether it does."""

    text: str = "—"
    met: bool | None = None


NO_TARGET = Target()


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    workload: str
    value: float
    unit: str = "s"
    baseline: float | None = None
    target: Target = NO_TARGET
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """``value / baseline``, or None without a baseline."""
        if self.baseline is None or self.baseline <= 0:
            return None
        return self.value / self.baseline

    def to_json(self) -> dict[str, Any]:
        """The row as plain data, ratio included."""
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def at_most(value: float, limit: float, unit: str = "s") -> Target:
    """Target ``value ≤ limit`` (an absolute figure)."""
    return Target(f"≤ {limit:g} {unit}", value <= limit)


def ratio_at_most(ratio: float | None, limit: float, what: str = "baseline") -> Target:
    """Target ``ratio ≤ limit`` (relative to the row's baseline)."""
    return Target(f"≤ {limit:g}x {what}", ratio is not None and ratio <= limit)


def relative(workload: str, value: float, baseline: float, limit: float, *,
             unit: str = "s", what: str = "baseline", note: str = "") -> Row:
    """A row whose target is ``value / baseline ≤ limit``."""
    ratio = value / baseline if baseline > 0 else None
    return Row(workload, value, unit, baseline, ratio_at_most(ratio, limit, what), note)


def fmt(value: float | None, unit: str = "s") -> str:
    """A figure with its unit: fixed-point seconds and MiB, ratios as ``12.3x``."""
    if value is None:
        return "—"
    if unit == "x":
        return f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"
    if value >= 10:
        return f"{value:,.1f} {unit}"
    return f"{value:.{6 if value < 0.01 else 4}f} {unit}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Call ``fn``; return (seconds it took, its result)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(repeats: int, measure: Callable[[], float]) -> float:
    """The smallest of ``repeats`` measurements (each call returns its own seconds)."""
    return min(measure() for _ in range(max(1, repeats)))


def write_aged(path: Path, source: str) -> None:
    """Write ``source`` to ``path`` with its mtime a minute back, as for a pipeline
    edited before it runs (kazeflow does not cache what it learns from a file modified
    in the last seconds)."""
    path.write_text(source, encoding="utf-8")
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))


def write_module(folder: Path, name: str, source: str) -> ModuleType:
    """Write ``source`` as ``folder/name.py`` (:func:`write_aged`) and import it (so
    inspect finds its source)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_aged(folder / f"{name}.py", source)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def forget_module(name: str) -> None:
    """Drop a generated module so that its assets and values can be freed."""
    sys.modules.pop(name, None)


def new_store(path: Path) -> Path:
    """An empty store at ``path`` whose schema already exists (creation is its own row)."""
    shutil.rmtree(path, ignore_errors=True)
    with Store(path) as store:
        store.metadata  # noqa: B018 - opening the metadata creates the schema
    return path
