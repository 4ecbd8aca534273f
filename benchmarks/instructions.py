"""Instructions a whole warm process executes (valgrind's callgrind), side by side with
the process that only imports the same module of undecorated functions.

Wall-clock medians on a shared VM swing by 30% within the hour; an instruction count is
the same to within a fraction of a percent for the same code and inputs, whatever the
machine is doing. It is the figure to compare two commits by (``--pythonpath`` runs the
kazeflow of another checkout, e.g. a ``git worktree`` of the commit before a change);
``process.py`` stays the figure users feel (it also counts system calls, the disk and
the memory a process first touches, which instructions do not)::

    python benchmarks/instructions.py                       # dag-1,000
    python benchmarks/instructions.py --size 1000 --pythonpath ../before

Each process runs once natively (its bytecode cached, as in a user's second process),
then once under callgrind (about 50x slower: dag-1,000 takes about half a minute), with
``PYTHONHASHSEED=0``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _procs import PYTHON, child_env  # noqa: E402
from process import command, write_scripts  # noqa: E402

#: The standard library every warm run imports whatever its design, under the house
#: rules: dataclasses (the Asset spec and the records are frozen dataclasses), sqlite3
#: (the default store), pickle (the result is loaded). The "floor" row is the
#: import-only process plus these: no warm run can cost less.
FLOOR_MODULES = ("dataclasses", "pickle", "sqlite3")

#: What is counted: (row, contender, phase of process.command, or "floor").
_ROWS = (("import only (baseline)", "plain", "import"),
         ("floor: + " + ", ".join(FLOOR_MODULES), "plain", "floor"),
         ("warm run", "kazeflow", "warm"), ("status()", "kazeflow", "status()"),
         ("kazeflow status", "kazeflow", "kazeflow status"))


def _env(pythonpath: str | None) -> dict[str, str]:
    env = {**child_env(), "PYTHONHASHSEED": "0"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def instructions(cmd: list[str], cwd: Path, pythonpath: str | None) -> int:
    """The instructions ``cmd`` executes, counted by callgrind, once it has run natively
    (so that its bytecode is cached, as in a user's second process)."""
    subprocess.run(cmd, cwd=cwd, env=_env(pythonpath), check=True, capture_output=True)
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           *cmd], cwd=cwd, env=_env(pythonpath), capture_output=True,
                          text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        raise RuntimeError(f"{' '.join(cmd)} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _command(name: str, script: Path, store: Path, phase: str, size: int) -> list[str]:
    """The process of a row: :func:`process.command`'s, or the floor's."""
    if phase == "floor":
        return [PYTHON, "-c", f"import dag{size}_plain, {', '.join(FLOOR_MODULES)}"]
    return command(name, script, store, phase, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="dag size")
    parser.add_argument("--pythonpath", default=None,
                        help="import kazeflow from this checkout instead")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kazeflow-instructions-") as folder:
        workdir = Path(folder)
        scripts = write_scripts(args.size, workdir)
        store = workdir / "store"
        cold = command("kazeflow", scripts["kazeflow"], store, "cold", args.size)
        subprocess.run(cold, cwd=workdir, env=_env(args.pythonpath), check=True,
                       capture_output=True)  # the store and its analysis cache
        counts = {row: instructions(_command(name, scripts[name], store, phase, args.size),
                                    workdir, args.pythonpath)
                  for row, name, phase in _ROWS}
    base = counts[_ROWS[0][0]]
    print(f"dag-{args.size}, instructions of one whole process (callgrind), "
          f"kazeflow from {args.pythonpath or 'this checkout'}:\n")
    print("| process | instructions | vs import only |\n|---|---|---|")
    for row, count in counts.items():
        print(f"| {row} | {count / 1e6:.1f} M | {count / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
