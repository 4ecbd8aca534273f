"""The built wheel is complete: it installs into a clean environment and migrates there."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Not part of a source tree to build from (junk of earlier builds would leak into it).
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".kazeflow", ".venv",
    ".pytest_cache", ".ruff_cache", ".mypy_cache", ".benchmarks")

FIRST_RUN = ["Flow results: {'raw_data': [1, 2, 3, 4, 5], 'processed_data': 30}",
             "0 reused, 2 materialized"]
SECOND_RUN = ["Flow results: {'raw_data': [1, 2, 3, 4, 5], 'processed_data': 30}",
              "2 reused, 0 materialized"]


def _run(args: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=120, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def _clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "KAZEFLOW_HOME", "KAZEFLOW_METADATA_URL",
            "KAZEFLOW_OBJECTS_URL")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _expected_files() -> set[str]:
    """Every module and data file of the source tree, named as it must be in the wheel."""
    def files(folder: Path, package: str, patterns: tuple[str, ...]) -> set[str]:
        return {f"{package}/{p.relative_to(folder).as_posix()}"
                for pattern in patterns for p in folder.rglob(pattern)
                if "__pycache__" not in p.parts}

    return (files(REPO / "kazeflow", "kazeflow", ("*.py", "py.typed"))
            | files(REPO / "migrations", "kazeflow/migrations", ("*.py", "*.mako")))


def _build_wheel(tmp_path: Path) -> Path:
    source, out = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", out, source], env=_clean_env())
    (wheel,) = out.glob("kazeflow-*.whl")
    return wheel


def _install(wheel: Path, env_dir: Path) -> Path:
    """A virtualenv that sees the packages of the interpreter running the tests (itself
    perhaps a virtualenv) but gets kazeflow only from ``wheel``."""
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    inner = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    # Listed in a .pth, these folders' own .pth files (an editable kazeflow) do not run.
    Path(inner, "_outer_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
          wheel], env=_clean_env())
    return python


@pytest.mark.slow
def test_the_wheel_ships_every_module_and_migration_and_runs_the_quickstart(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = _expected_files() - names
    assert not missing, f"add their packages to [tool.setuptools] in pyproject: {missing}"
    assert {"kazeflow/migrations/env.py", "kazeflow/migrations/script.py.mako",
            "kazeflow/migrations/versions/0001_initial.py"} <= names
    assert all(n.startswith(("kazeflow/", "kazeflow-")) for n in names), names

    env_dir = tmp_path / "venv"
    python = _install(wheel, env_dir)
    where = _run([python, "-c", "import kazeflow, kazeflow.migrations as m; "
                  "print(kazeflow.__file__); print(m.__file__)"],
                 cwd=tmp_path, env=_clean_env()).stdout.split()
    assert all(Path(p).is_relative_to(env_dir) for p in where), where

    script = shutil.copy(REPO / "examples" / "quickstart.py", tmp_path / "quickstart.py")
    empty = tmp_path / "empty"
    empty.mkdir()
    runs = [_run([python, script], cwd=empty, env=_clean_env()).stdout.splitlines()
            for _ in range(2)]
    assert runs == [FIRST_RUN, SECOND_RUN]
    assert (empty / ".kazeflow" / "kazeflow.db").is_file()
