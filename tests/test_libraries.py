"""The versions of the libraries an asset's code imports are recorded with each
materialization; an asset that tracks them (or a flow that does) re-runs when one is
upgraded, and status and why say which library changed. Fresh processes, a library
installed in a site-packages folder of its own, upgraded by renaming its dist-info."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PIPELINE = textwrap.dedent('''
    import json, sys
    import fakelib
    from othername import triple
    from kazeflow import Flow, asset


    @asset
    def uses():
        return fakelib.double(2)


    @asset(track_libraries=True)
    def tracked():
        return triple(fakelib.double(1))


    @asset
    def plain():
        return 1


    flow = Flow(["uses", "tracked", "plain"], track_libraries="--all" in sys.argv)

    if __name__ == "__main__":
        print(json.dumps(sorted(flow.run().materialized)))
''')


def install(site: Path, name: str, version: str, modules: dict[str, str],
            top_level: bool = False) -> None:
    """A distribution as pip leaves it: its modules and a ``name-version.dist-info``."""
    for path, text in modules.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{p},,\n" for p in modules))
    if top_level:
        (info / "top_level.txt").write_text("\n".join(
            {p.split("/")[0].removesuffix(".py") for p in modules}))


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "libs" / "site-packages"  # library code: not hashed
        self.site.mkdir(parents=True)
        install(self.site, "fakelib", "1.0", {"fakelib/__init__.py": "def double(x):\n"
                                                                     "    return 2 * x\n"})
        install(self.site, "other_dist", "2.0", {"othername.py": "def triple(x):\n"
                                                                 "    return 3 * x\n"},
                top_level=True)
        (root / "pipeline.py").write_text(PIPELINE)
        self.env = {**os.environ, "PYTHONPATH": str(self.site),
                    "KAZEFLOW_HOME": str(root / "store")}

    def python(self, *args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def run(self, *flags: str) -> list[str]:
        return json.loads(self.python("pipeline.py", *flags))

    def upgrade_fakelib(self, old: str, new: str) -> None:
        info = self.site / f"fakelib-{old}.dist-info"
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakelib\n"
                                       f"Version: {new}\n")
        info.rename(self.site / f"fakelib-{new}.dist-info")


@pytest.mark.slow
def test_library_versions_are_recorded_and_tracked_ones_rerun_on_upgrade(tmp_path):
    project = Project(tmp_path)
    assert project.run() == ["plain", "tracked", "uses"]
    history = json.loads(project.python("-m", "kazeflow", "history", "--json"))
    libraries = {r["asset_name"]: r["libraries"] for r in history}
    assert libraries == {"uses": {"fakelib": "1.0"}, "plain": {},
                         "tracked": {"fakelib": "1.0", "other_dist": "2.0"}}
    assert "libraries       fakelib 1.0" in project.python("-m", "kazeflow", "show", "uses")
    assert project.run() == []

    project.upgrade_fakelib("1.0", "1.1")
    why = project.python("-m", "kazeflow", "why", "pipeline.py:flow", "tracked")
    assert "library 'fakelib' 1.0 -> 1.1" in why
    status = json.loads(project.python("-m", "kazeflow", "status", "pipeline.py:flow",
                                       "--json"))
    assert {s["asset_name"]: s["state"] for s in status} == {
        "uses": "fresh", "tracked": "stale", "plain": "fresh"}  # uses does not track
    uses = next(s for s in status if s["asset_name"] == "uses")
    assert [r["message"] for r in uses["reasons"]] == [  # but it is told
        "library 'fakelib' 1.0 -> 1.1 since it ran (not in its key: track_libraries=True "
        "would re-run it)"]
    assert project.run() == ["tracked"]
    assert project.run("--all") == ["uses"]  # the flow-wide switch: uses tracks them too
    assert project.run("--all") == []
