"""A store is a metadata URL plus an objects location: given as arguments, from the
environment or on the command line; two working folders on the same locations share
one store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kazeflow import Flow, Store, StoreError, asset
from kazeflow.store import _locations

FLOW = textwrap.dedent("""
    import sys
    from kazeflow import Flow, asset

    @asset
    def numbers():
        print("numbers ran", file=sys.stderr)
        return list(range(10))

    @asset
    def total(numbers):
        print("total ran", file=sys.stderr)
        return sum(numbers)

    flow = Flow(["total"])
    if __name__ == "__main__":
        print(flow.run()["total"])
""")


def test_two_working_folders_on_the_same_locations_share_results(tmp_path):
    """A second "machine": another process, its own working folder, the same URLs
    (here from the environment) sees the first one's results as fresh."""
    script = tmp_path / "pipeline.py"
    script.write_text(FLOW)
    env = {**os.environ, "KAZEFLOW_METADATA_URL": f"sqlite:///{tmp_path / 'shared.db'}",
           "KAZEFLOW_OBJECTS_URL": str(tmp_path / "shared-objects")}
    runs = []
    for machine in ("one", "two"):
        work = tmp_path / machine
        work.mkdir()
        runs.append(subprocess.run([sys.executable, str(script)], cwd=work, env=env,
                                   capture_output=True, text=True, timeout=120))
        assert runs[-1].returncode == 0, runs[-1].stderr
        assert runs[-1].stdout.strip() == "45"
        assert (work / ".kazeflow").is_dir() and not (work / ".kazeflow" / "objects").exists()
    assert "total ran" in runs[0].stderr and "ran" not in runs[1].stderr
    status = subprocess.run([sys.executable, "-m", "kazeflow", "status", f"{script}:flow"],
                            cwd=tmp_path / "two", env=env, capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.count("fresh") == 2, status.stdout


def test_arguments_name_the_locations(tmp_path):
    @asset
    def one():
        return 1

    store = Store(tmp_path / "work", metadata=f"sqlite:///{tmp_path / 'meta.db'}",
                  objects=f"file://{tmp_path / 'objs'}")
    assert store.objects_url == str(tmp_path / "objs")
    assert Flow(["one"], store=store).run()["one"] == 1
    assert (tmp_path / "meta.db").exists() and (tmp_path / "objs" / "folder_id").exists()
    again = Store(tmp_path / "elsewhere", metadata=f"sqlite:///{tmp_path / 'meta.db'}",
                  objects=tmp_path / "objs")
    assert again.folder_id == store.folder_id
    assert Flow(["one"], store=again).status()["one"].state == "fresh"
    assert again.verify().ok
    store.close()
    again.close()


def test_an_objects_url_without_its_filesystem_says_which_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kazeflow.store._remote", None)  # as if not installed
    with pytest.raises(StoreError, match=r'kazeflow\[s3\]'):
        Store(tmp_path, objects="s3://bucket/prefix").objects  # noqa: B018


def test_locations_are_normalized():
    assert _locations.is_url("s3://b/p") and _locations.is_url("gcs://b")
    assert not _locations.is_url("/data/objects") and not _locations.is_url("file:///x")
    assert not _locations.is_url("C:\\data")
    assert _locations.normalized("s3://b/p/") == "s3://b/p"
    assert _locations.normalized("file:///data/objs") == "/data/objs"
    assert _locations.normalized("rel") == os.path.abspath("rel")


def test_a_local_store_imports_none_of_the_extras(tmp_path):
    """``import kazeflow`` and cold and warm runs on the default store load neither a
    database driver nor fsspec nor Dask."""
    code = textwrap.dedent("""
        import sys
        from kazeflow import Flow, asset

        @asset
        def one():
            return {"x": 1}

        @asset
        def two(one):
            return one["x"] + 1

        for _ in range(2):
            Flow(["two"], store=sys.argv[1]).run()
        heavy = ("psycopg", "psycopg2", "fsspec", "s3fs", "botocore", "distributed",
                 "dask")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
    """)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_command_line_takes_both_locations(tmp_path):
    @asset
    def one():
        return 1

    metadata, objects = f"sqlite:///{tmp_path / 'meta.db'}", str(tmp_path / "objs")
    with Store(tmp_path / "work", metadata=metadata, objects=objects) as store:
        Flow(["one"], store=store).run()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAZEFLOW_")}
    shown = subprocess.run(
        [sys.executable, "-m", "kazeflow", "history", "--store", str(tmp_path / "other"),
         "--metadata-url", metadata, "--objects-url", objects],
        capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "one" in shown.stdout and "materialized" in shown.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "kazeflow", "verify", "--store", str(tmp_path / "other"),
         "--metadata-url", metadata, "--objects-url", objects],
        capture_output=True, text=True, env=env, timeout=60)
    assert checked.returncode == 0 and "1" in checked.stdout, checked.stdout + checked.stderr
