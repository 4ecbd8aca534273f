"""The big array as whole processes: an asset returning a float64 array of ``MIB`` MiB
and one summing it, against the same work done with numpy alone and with joblib.Memory.

Rows: the cold run (kazeflow: pickle, hash, fsync into a store that exists, and in a row
of its own into a new one, schema included; plain: ``np.save`` + fsync of a new file;
joblib: its first call), the warm run without reading the value
(plain: the interpreter's start), the warm run that reads it back (plain: ``np.load`` +
one SHA-256 pass, which is what a verified read costs; joblib: its cache hit), and the
peak RSS of the cold run and of the warm read above a process that only imports what it
uses. numpy is imported inside the asset, as kazeflow's warm run never needs it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from _common import write_aged
from _procs import PEAK_FOOTER, PYTHON, Limit, ProcessRow, peak_mib, rotated, seconds

_ARRAY = "np.arange({mib} * (1 << 20) // 8, dtype=np.float64)"
_ASSETS = '''from kazeflow import asset


@asset
def big():
    import numpy as np
    return {array}


@asset
def total(big):
    return float(big.sum())
'''
_KAZEFLOW = '''import sys
from kazeflow import Flow
import bigassets
store, mode = sys.argv[1:3]
if mode == "schema":  # a store that exists already (its schema created)
    from kazeflow import Store
    Store(store).metadata
elif mode == "baseline":
    import numpy  # what the run will use
else:
    result = Flow(["total"], store=store).run()
    want = ("big", "total") if mode in ("cold", "new") else ()
    assert result.materialized == want, result.summary()
    if mode == "read":
        assert result["big"].nbytes == {mib} << 20
'''
_PLAIN = '''import hashlib, os, sys
path, mode = sys.argv[1:3]
if mode != "start":
    import numpy as np
if mode == "cold":
    array = {array}
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    folder = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    os.fsync(folder)
    os.close(folder)
    float(array.sum())
elif mode == "read":
    with open(path, "rb") as f:
        digest = hashlib.sha256()
        while chunk := f.read(1 << 21):
            digest.update(chunk)
    assert np.load(path).nbytes == {mib} << 20
'''
_JOBLIB = '''import sys
import joblib
import numpy as np
memory = joblib.Memory(sys.argv[1], verbose=0)
@memory.cache
def big():
    return {array}
if sys.argv[2] != "baseline":  # cold: the first call; read: its cache hit
    assert big().nbytes == {mib} << 20
'''


def write_scripts(mib: int, folder: Path) -> dict[str, Path]:
    """The assets module and the three scripts, each printing its peak RSS last."""
    folder.mkdir(parents=True, exist_ok=True)
    array = _ARRAY.format(mib=mib)
    write_aged(folder / "bigassets.py", _ASSETS.format(array=array))
    paths = {}
    for name, text in (("plain", _PLAIN), ("joblib", _JOBLIB), ("kazeflow", _KAZEFLOW)):
        paths[name] = folder / f"big_{name}.py"
        paths[name].write_text(text.format(mib=mib, array=array) + PEAK_FOOTER,
                               encoding="utf-8")
    return paths


def big_rows(mib: int, workdir: Path, repeats: int) -> list[ProcessRow]:
    """Cold, warm without and with reading, and peak RSS of the ``mib`` MiB array."""
    folder = workdir / "big"
    scripts = write_scripts(mib, folder)
    label = f"big-array {mib} MiB"
    cold = ProcessRow(f"{label} cold", target=Limit("≤ 1.3x plain", 1.3, "plain"),
                      note="plain: np.save + fsync of a new file; kazeflow: into a store "
                           "that exists")
    new = ProcessRow(f"{label} cold, new store",
                     note="kazeflow: also creates the store (schema through Alembic)")
    warm = ProcessRow(f"{label} warm, no read",
                      target=Limit("≤ plain + 60 ms", 0.060, "plain", add=True),
                      note="plain: the interpreter's start")
    read = ProcessRow(f"{label} warm + read",
                      note="plain: np.load + one SHA-256 pass; joblib: its cache hit")

    def run(name: str, place: Path, mode: str) -> float:
        return seconds([PYTHON, str(scripts[name]), str(place), mode], folder)

    for i in range(repeats + 1):  # the first, untimed: bytecode and disk caches warm
        places = {"plain": folder / f"array-{i}.npy", "joblib": folder / f"joblib-{i}",
                  "kazeflow": folder / f"store-{i}"}
        figures = {"kazeflow": {new: run("kazeflow", folder / f"new-{i}", "new")}}
        run("kazeflow", places["kazeflow"], "schema")
        for name in rotated(list(places), i):
            place, mine = places[name], figures.setdefault(name, {})
            mine[cold] = run(name, place, "cold")
            if name != "joblib":  # joblib cannot tell a value is there without loading it
                mine[warm] = run(name, place, "start" if name == "plain" else "warm")
            mine[read] = run(name, place, "read")
        for name, mine in figures.items():
            for row, took in mine.items():
                if i:
                    row.add(name, took)
        for place in [*places.values(), folder / f"new-{i}"]:
            _remove(place)
    return [cold, new, warm, read, *peak_rows(mib, folder, scripts, label)]


def peak_rows(mib: int, folder: Path, scripts: dict[str, Path], label: str
              ) -> list[ProcessRow]:
    """Peak RSS of the cold run and the warm read, less a process that only imports what
    it uses (kazeflow, the assets; numpy for plain and joblib)."""
    rows = [ProcessRow(f"{label} peak RSS, {what}", unit="MiB",
                       target=Limit(f"≤ 1.1x the array ({1.1 * mib:.0f} MiB)", 1.1 * mib),
                       note="above a process that only imports") for what in ("cold", "read")]
    for name, script in scripts.items():
        place = folder / f"rss-{name}"
        base = peak_mib([PYTHON, str(script), str(place), "baseline"], folder)
        if name == "kazeflow":
            seconds([PYTHON, str(script), str(place), "schema"], folder)
        for row, mode in zip(rows, ("cold", "read"), strict=True):
            row.add(name, peak_mib([PYTHON, str(script), str(place), mode], folder) - base)
        _remove(place)
    return rows


def _remove(place: Path) -> None:
    if place.is_dir():
        shutil.rmtree(place, ignore_errors=True)
    else:
        place.unlink(missing_ok=True)
