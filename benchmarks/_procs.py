"""Whole processes, as users start them: one fresh interpreter per measurement.

Children run without ``PYTHONDONTWRITEBYTECODE`` and without ``KAZEFLOW_*`` settings,
so they use cached bytecode and the default store, as a user's ``python pipeline.py``
does. Peak memory is read in the child itself (``ru_maxrss``), started through a tiny
launcher: ``ru_maxrss`` survives ``exec``, so a child forked straight from this process
would report this process's peak if it were larger.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PYTHON = sys.executable
#: Appended to a measured script: print its peak RSS (MiB) as its last line.
PEAK_FOOTER = '''
import json as _json, resource as _resource, sys as _sys
_peak = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
print(_json.dumps({"peak_mib": _peak / (1 << 20) if _sys.platform == "darwin" else _peak / 1024}))
'''
_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def child_env() -> dict[str, str]:
    """This environment without what would make a child unlike a user's process."""
    return {k: v for k, v in os.environ.items()
            if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("KAZEFLOW_")}


def seconds(cmd: list[str], cwd: Path) -> float:
    """Wall-clock seconds of one process (which must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return took


def peak_mib(cmd: list[str], cwd: Path) -> float:
    """The peak RSS that the process ``cmd`` (a script ending in :data:`PEAK_FOOTER`)
    prints, started through the launcher."""
    done = subprocess.run([PYTHON, "-c", _LAUNCHER, *cmd], cwd=cwd, env=child_env(),
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"])


def rotated(items: list[T], by: int) -> list[T]:
    """``items`` rotated by ``by``: over the repeats, each contender runs in each position
    (on a VM, fresh memory and the file system cost what the process before left behind)."""
    by %= len(items)
    return items[by:] + items[:by]


def kazeflow_command() -> list[str]:
    """The ``kazeflow`` console script beside this interpreter (else ``-m kazeflow``)."""
    script = Path(PYTHON).with_name("kazeflow")
    return [str(script)] if script.exists() else [PYTHON, "-m", "kazeflow"]


@dataclass
class Series:
    """The measurements of one contender in one row."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def text(self, unit: str = "s") -> str:
        if not self.values:
            return "—"
        low, high = min(self.values), max(self.values)
        if unit == "MiB":
            return f"{self.median:.0f} MiB"
        if unit == "x":
            return f"{self.median:.2f}x"
        return f"{self.median:.3f} s ({low:.3f}–{high:.3f})"


CONTENDERS = ("plain", "joblib", "kazeflow")


@dataclass(frozen=True)
class Limit:
    """A target for kazeflow's median: at most ``value`` times ``against``'s median
    (``add``: plus ``value`` instead), or ``value`` itself in the row's unit when there is
    no ``against``."""

    text: str
    value: float
    against: str | None = None
    add: bool = False

    def met(self, row: ProcessRow) -> bool | None:
        ours = row.series["kazeflow"].median
        if ours is None:
            return None
        if self.against is None:
            return ours <= self.value
        base = row.series[self.against].median
        if base is None:
            return None
        return ours <= (base + self.value if self.add else base * self.value)


@dataclass(eq=False)
class ProcessRow:
    """One workload: each contender's series, and the target kazeflow's median has."""

    workload: str
    series: dict[str, Series] = field(default_factory=lambda: {c: Series()
                                                               for c in CONTENDERS})
    unit: str = "s"
    target: Limit | None = None
    note: str = ""

    def add(self, contender: str, value: float) -> None:
        self.series[contender].values.append(value)

    def ratio(self, against: str) -> float | None:
        ours, theirs = self.series["kazeflow"].median, self.series[against].median
        return ours / theirs if ours is not None and theirs else None

    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self)

    def to_json(self) -> dict[str, object]:
        return {"workload": self.workload, "unit": self.unit, "note": self.note,
                **{c: s.values for c, s in self.series.items()},
                "target": self.target.text if self.target else None, "met": self.met()}


def table(rows: list[ProcessRow]) -> str:
    """The rows as a Markdown table: each contender's median (min–max), kazeflow's
    ratios to plain Python and to joblib.Memory, its target and whether it is met."""
    lines = ["| workload | plain Python | joblib.Memory | kazeflow | vs plain | vs joblib "
             "| target | met |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ratios = [f"{r:.2f}x" if (r := row.ratio(c)) is not None else "—"
                  for c in ("plain", "joblib")]
        met = {None: "—", True: "met", False: "**NOT MET**"}[row.met()]
        target = row.target.text if row.target else "—"
        cells = [row.series[c].text(row.unit) for c in CONTENDERS]
        lines.append(f"| {row.workload} | {' | '.join(cells)} | {' | '.join(ratios)} "
                     f"| {target} | {met} |")
    return "\n".join(lines)
