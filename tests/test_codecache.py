"""The persistent cache of source analyses: a new process does not re-parse unchanged
user code, and never trusts an entry for a file that changed."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from kazeflow import Flow, Store
from kazeflow.fingerprint import _code, _source
from kazeflow.fingerprint._cache import SourceCache

SOURCE = '''\
from kazeflow import asset


@asset
def base():
    return 10


@asset
def top(base):
    return base + 1
'''

# Runs the module's flow in a fresh interpreter and reports what it had to analyse.
CHILD = '''\
import importlib, json, sys
from kazeflow import Flow
from kazeflow.fingerprint import _source

analysed = []
real = _source._analyse
_source._analyse = lambda fn, *a: analysed.append(fn.__name__) or real(fn, *a)
sys.path.insert(0, sys.argv[1])
importlib.import_module(sys.argv[2])
result = Flow(store=sys.argv[3]).run()
print(json.dumps({"analysed": sorted(analysed), "materialized": sorted(result.materialized)}))
'''


def _write(folder: Path, name: str, source: str, age: float = 60.0) -> Path:
    """Write a module whose mtime lies ``age`` seconds in the past."""
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def module(tmp_path, monkeypatch):
    """A fresh user module on sys.path; returns (folder, name)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"cached_{uuid.uuid4().hex[:8]}"
    _write(tmp_path, name, SOURCE)
    yield tmp_path, name
    sys.modules.pop(name, None)


def _child(folder: Path, name: str, store: Path) -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), name, str(store)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_a_new_process_reuses_the_analyses_of_unchanged_files(module, tmp_path):
    folder, name = module
    store = tmp_path / "store"
    assert _child(folder, name, store) == {"analysed": ["base", "top"],
                                           "materialized": ["base", "top"]}
    assert (store / "cache" / "sources.marshal").is_file()
    assert _child(folder, name, store) == {"analysed": [], "materialized": []}


@pytest.fixture
def analysed(monkeypatch):
    """Names of the functions whose source gets (re-)analysed; memory caches cleared
    before each import as in a new process."""
    names: list[str] = []
    real = _source._analyse

    def counting(fn, *args):
        names.append(fn.__name__)
        return real(fn, *args)

    monkeypatch.setattr(_source, "_analyse", counting)
    return names


def _run_fresh(name: str, store: Store) -> list[str]:
    """Import ``name`` afresh with nothing memoised and run it; the executed assets."""
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    _code.clear_memory_caches()
    importlib.import_module(name)
    return sorted(Flow(store=store).run().materialized)


def test_an_edit_that_keeps_the_size_is_seen(module, store, analysed):
    folder, name = module
    _run_fresh(name, store)
    analysed.clear()
    _write(folder, name, SOURCE.replace("base + 1", "base + 2"), age=30)
    assert _run_fresh(name, store) == ["top"]
    assert sorted(analysed) == ["base", "top"]  # the whole file is read again
    assert _run_fresh(name, store) == []


def test_a_file_modified_just_now_is_not_cached(module, store, analysed):
    folder, name = module
    _write(folder, name, SOURCE, age=0)
    _run_fresh(name, store)
    _run_fresh(name, store)
    assert sorted(analysed) == ["base", "base", "top", "top"]
    assert not store.sources_cache_path.exists()


def test_a_damaged_cache_is_ignored_and_rewritten(module, store, analysed):
    folder, name = module
    _run_fresh(name, store)
    store.sources_cache_path.write_bytes(b"\x00garbage")
    analysed.clear()
    assert _run_fresh(name, store) == []
    assert sorted(analysed) == ["base", "top"]
    analysed.clear()
    _run_fresh(name, store)
    assert analysed == []


def test_a_cache_that_cannot_be_written_does_not_fail_the_run(module, store, analysed):
    folder, name = module
    store.metadata  # noqa: B018 - creates the store folder
    (store.root / "cache").write_text("a file where the cache folder would go")
    assert _run_fresh(name, store) == ["base", "top"]
    assert _run_fresh(name, store) == []


def test_entries_of_another_python_or_format_are_ignored(module, tmp_path):
    folder, name = module
    path = tmp_path / "sources.marshal"
    mine = SourceCache(path, ("format", 1))
    mine.put(str(folder / f"{name}.py"), "base", 4, ("entry",))
    mine.save()
    assert SourceCache(path, ("format", 1)).get(str(folder / f"{name}.py"), "base", 4) \
        == ("entry",)
    assert SourceCache(path, ("format", 2)).get(str(folder / f"{name}.py"), "base", 4) \
        is None


def test_a_copy_that_keeps_the_old_mtime_is_seen(module, store, analysed):
    folder, name = module
    path = folder / f"{name}.py"
    _run_fresh(name, store)
    before = path.stat()
    analysed.clear()
    path.write_text(SOURCE.replace("base + 1", "base + 3"))  # same size, as cp -p does
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert _run_fresh(name, store) == ["top"]  # the ctime moved: the file is read again
    assert sorted(analysed) == ["base", "top"]


def test_an_entry_whose_decorator_now_means_something_else_is_not_used():
    import kazeflow

    entry = ("def f():\n    return 1", (), (), (), ((("asset",), True),))
    ours, theirs = {"asset": kazeflow.asset}, {"asset": lambda fn: fn}  # a user decorator
    judged: dict = {}  # one run's judgements, by namespace
    for _ in range(2):  # judged, then remembered
        assert _source._decode(entry, ours, judged) is not None
        assert _source._decode(entry, theirs, judged) is None
    assert len(judged) == 2
    assert _source._decode(("damaged",), {}, {}) is None


def test_the_code_hash_kept_in_an_entry_is_reused_only_for_the_same_components(
        module, store, monkeypatch):
    """An entry keeps the code hash its function last had as an asset's root, with the
    components it was computed from: a new process reuses it (nothing is hashed) and
    gets the same hashes; a different set of components is hashed afresh."""
    folder, name = module
    _run_fresh(name, store)
    hashed: list[str] = []
    real = _code._code_digest

    def counting(root, items):
        hashed.append(root)
        return real(root, items)

    counting.cache_clear = real.cache_clear  # type: ignore[attr-defined]
    monkeypatch.setattr(_code, "_code_digest", counting)
    before = {n: s.cache_key for n, s in Flow(store=store).status().items()}
    assert _run_fresh(name, store) == [] and hashed == []
    cache = _code.source_cache(store.sources_cache_path)
    fn = sys.modules[name].top.fn
    fingerprint = _code.fingerprint(fn, cache)
    assert hashed == [] and fingerprint.code_hash == real("top", tuple(sorted(
        fingerprint.components.items())))
    other = (("top", "def top(base):\n    return base + 3"),)
    assert _code._digest(fn, "top", other, cache) == real("top", other)
    assert hashed == ["top"]
    assert {n: s.cache_key for n, s in Flow(store=store).status().items()} == before
