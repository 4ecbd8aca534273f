"""A distribution installed from a local path (``pip install .``, ``pip install -e .``,
``pip install dist/x.whl``: PEP 610 ``direct_url.json`` with a ``file://`` URL) is the
user's code and is hashed, though it lives in site-packages; one from an index or a
remote URL stays library code."""

from __future__ import annotations

import json
import os
import site
import subprocess
import textwrap
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from kazeflow.fingerprint import _user


def _dist(root: Path, name: str, direct_url: dict[str, object] | None,
          files: list[str]) -> None:
    """A distribution ``name`` in the site folder ``root`` owning ``files``."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    for file in files:
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).write_text("X = 1\n")
    rows = [*(f'"{f}",sha256=abc,6' for f in files), f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))


@pytest.fixture
def site_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder that kazeflow takes for a site-packages folder."""
    root = tmp_path / "site-packages"
    root.mkdir()
    prefix = os.path.realpath(root) + os.sep
    monkeypatch.setattr(_user, "_SITE_ROOTS", {*_user._SITE_ROOTS, prefix})
    monkeypatch.setattr(_user, "_LIBRARY_ROOTS", (*_user._LIBRARY_ROOTS, prefix))
    _user.clear()
    yield root
    _user.clear()


def test_only_distributions_installed_from_a_local_path_are_user_code(
        site_root: Path) -> None:
    _dist(site_root, "mine", {"url": "file:///src/mine", "dir_info": {}},
          ["mine/__init__.py", "mine/core.py", "mine_extra.py"])
    _dist(site_root, "mine_editable", {"url": "file:///src/e",
                                       "dir_info": {"editable": True}}, ["e_shim.py"])
    _dist(site_root, "from_index", None, ["from_index/__init__.py"])
    _dist(site_root, "from_git", {"url": "https://example.org/x.git",
                                  "vcs_info": {"vcs": "git", "commit_id": "abc"}},
          ["from_git.py"])
    _dist(site_root, "from_wheel_file", {"url": "file:///wheels/w-1.0-py3-none-any.whl",
                                         "archive_info": {}}, ["from_wheel_file.py"])
    _dist(site_root, "from_local_git", {"url": "file:///src/repo",
                                        "vcs_info": {"vcs": "git", "commit_id": "abc"}},
          ["from_local_git.py"])
    _dist(site_root, "from_remote_wheel", {"url": "https://example.org/r-1.0.whl",
                                           "archive_info": {}}, ["from_remote_wheel.py"])
    _dist(site_root, "damaged", None, ["damaged.py"])
    (site_root / "damaged-1.0.dist-info" / "direct_url.json").write_text("{not json")

    def user(file: str) -> bool:
        return _user.is_user_file(str(site_root / file))

    assert user("mine/__init__.py") and user("mine/core.py") and user("mine_extra.py")
    assert user("e_shim.py")
    assert not user("from_index/__init__.py")
    assert not user("from_git.py")
    assert user("from_wheel_file.py") and user("from_local_git.py")
    assert not user("from_remote_wheel.py")
    assert not user("damaged.py")
    assert not user("unowned.py")


def test_site_packages_are_read_once_per_process(site_root: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(site_root, "mine", {"url": "file:///src/mine", "dir_info": {}}, ["a.py", "b.py"])
    _dist(site_root, "other", None, ["c.py"])
    opened: list[str] = []
    real_open = open

    def counting_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    assert _user.is_user_file(str(site_root / "a.py"))
    # one direct_url.json looked for per distribution, the RECORD of the local one only
    assert sorted(Path(f).parent.name + "/" + Path(f).name for f in opened) == [
        "mine-1.0.dist-info/RECORD", "mine-1.0.dist-info/direct_url.json",
        "other-1.0.dist-info/direct_url.json"]
    opened.clear()
    assert [_user.is_user_file(str(site_root / f)) for f in ("b.py", "c.py")] == [
        True, False]
    assert opened == []


# ------------------------------------------------------------------ for real, with pip

PACKAGE = """\
def weight(x):
    return x * 2


def unused(x):
    return x
"""

FLOWS = """\
from kazeflow import asset

import {mine}
import {theirs}
import {wheel}


@asset
def uses_mine():
    return {mine}.weight(3)


@asset
def uses_wheel():
    return {wheel}.weight(3)


@asset
def uses_theirs():
    return {theirs}.weight(3)


@asset
def unrelated():
    return 1
"""

RUNNER = """\
import json, sys
import flows
from kazeflow import Flow, Store
with Store(sys.argv[1]) as store:
    result = Flow(store=store).run()
    print(json.dumps({"materialized": sorted(result.materialized),
                      "values": {name: result[name] for name in result},
                      "file": flows.{mine}.__file__}))
"""


def _clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "KAZEFLOW_HOME", "KAZEFLOW_METADATA_URL",
            "KAZEFLOW_OBJECTS_URL")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(args: list[str | Path], **kwargs) -> str:  # type: ignore[no-untyped-def]
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=300, env=_clean_env(), **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _venv(env_dir: Path) -> Path:
    """A virtualenv that sees this interpreter's packages (pip, setuptools, kazeflow
    itself, also an editable kazeflow: their own .pth files run)."""
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    inner = _run([python, "-c", "import site; print(site.getsitepackages()[0])"]).strip()
    Path(inner, "_outer_site.pth").write_text("".join(
        f"import site; site.addsitedir({folder!r})\n" for folder in site.getsitepackages()))
    return python


def _package(folder: Path, name: str) -> Path:
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(PACKAGE)
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "1.0"

        [tool.setuptools]
        packages = ["{name}"]
        """))
    return folder


@pytest.mark.slow
def test_editing_and_reinstalling_a_locally_installed_package_reruns_its_users(
        tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    mine = _package(tmp_path / "src" / "mine", "kzmine")
    theirs = _package(tmp_path / "src" / "theirs", "kztheirs")
    wheel = _package(tmp_path / "src" / "wheel", "kzwheel")
    project = tmp_path / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOWS.format(mine="kzmine", theirs="kztheirs",
                                                   wheel="kzwheel"))
    runner = RUNNER.replace("{mine}", "kzmine")
    site_dir = Path(_run([python, "-c", "import site; print(site.getsitepackages()[0])"])
                    .strip())

    def install() -> None:
        dist = tmp_path / "dist"
        _run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--no-index", "--wheel-dir", dist, wheel], cwd=tmp_path)
        _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
              "--no-index", "--force-reinstall", "--no-compile", mine, theirs,
              dist / "kzwheel-1.0-py3-none-any.whl"], cwd=tmp_path)
        # as if from an index: pip writes no direct_url.json then
        (site_dir / "kztheirs-1.0.dist-info" / "direct_url.json").unlink()

    def run(store: str = "store") -> dict[str, object]:
        out = _run([python, "-c", runner, tmp_path / store], cwd=project)
        return json.loads(out)  # type: ignore[no-any-return]

    install()
    first = run()
    assert Path(str(first["file"])).is_relative_to(site_dir)  # installed, not the source
    assert first["materialized"] == ["unrelated", "uses_mine", "uses_theirs",
                                     "uses_wheel"]
    assert run()["materialized"] == []

    for folder, name in ((mine, "kzmine"), (theirs, "kztheirs"), (wheel, "kzwheel")):
        init = folder / name / "__init__.py"
        init.write_text(init.read_text().replace("x * 2", "x * 3"))
    install()
    after = run()

    # kzmine and kzwheel are the user's own code; kztheirs is library code, so (as
    # documented) its change is not seen: the fresh store differs exactly there
    assert after["materialized"] == ["uses_mine", "uses_wheel"]
    fresh = run("fresh")
    assert after["values"] == {**fresh["values"], "uses_theirs": 6}  # type: ignore[dict-item]
    assert fresh["values"] == {"uses_mine": 9, "uses_theirs": 9, "uses_wheel": 9,
                               "unrelated": 1}
