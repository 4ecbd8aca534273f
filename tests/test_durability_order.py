"""Order of durability: each object's bytes are durable, then its name, then its row.

For every object a run writes, the events recorded here must come in this order:

- its temp file fsynced, then renamed to ``objects/ab/cdef…``, then that folder fsynced
  (one object at a time); or renamed, then a ``syncfs`` of its filesystem (a batch);
- and only then the SQL transaction that commits a row naming its data version.

The events are recorded black-box, from hooks on the standard library:
``os.fsync``, ``os.replace`` / ``os.rename``, the ``syncfs`` function of
``kazeflow/store/_durable.py`` (ctypes: no stdlib call to hook), and the statements and
commits of the metadata database's ``sqlite3`` connections (``_sqlwatch``; the engine's
events where it goes through SQLAlchemy). Every event is one line appended
(``O_APPEND``) to one file, by this process and by worker processes alike, so the order of
the lines is the order in which things happened, across processes.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _sqlwatch import watch_sql

from kazeflow import Flow, asset
from kazeflow.store import _durable

HEX64 = re.compile(r"[0-9a-f]{64}")
TRACE_ENV = "KZTEST_DURABILITY_TRACE"


# ---------------------------------------------------------------- recording events

class Trace:
    """Events appended as JSON lines to one file (shared by processes)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def log(self, kind: str, **facts: Any) -> None:
        line = json.dumps({"kind": kind, "pid": os.getpid(),
                           "thread": threading.get_ident(), **facts}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())  # one write: lines never interleave
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        return [{"i": i, **json.loads(line)} for i, line in enumerate(lines)]


def _identity(info: os.stat_result) -> list[int]:
    return [info.st_dev, info.st_ino]


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def file_hooks(trace: Trace, objects_root: Path) -> dict[str, Callable[..., Any]]:
    """Replacements for ``os.fsync``, ``os.replace``, ``os.rename`` and ``_syncfs`` that
    record each call (start and end) in ``trace``. Renames are recorded only into
    ``objects_root``'s shard folders, with the data version they make visible."""
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename
    real_syncfs = _durable.syncfs
    root = os.path.realpath(objects_root)

    def fsync(fd: Any) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        info = os.fstat(number)
        what = "dir" if stat.S_ISDIR(info.st_mode) else "file"
        trace.log("fsync.start", what=what, id=_identity(info))
        real_fsync(fd)
        trace.log("fsync.end", what=what, id=_identity(info))

    def renamer(real: Callable[..., None], name: str) -> Callable[..., None]:
        def rename(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                   dst_dir_fd: int | None = None) -> None:
            dst = os.fsdecode(dst)
            if dst_dir_fd is not None and not os.path.isabs(dst):
                target = os.path.join(_fd_path(dst_dir_fd), dst)
            else:
                target = os.path.abspath(dst)
            folder = os.path.dirname(target)
            data_version = None
            if os.path.dirname(os.path.realpath(folder)) == root:
                candidate = os.path.basename(folder) + os.path.basename(target)
                data_version = candidate if HEX64.fullmatch(candidate) else None
            if data_version is None:  # quarantine and the like: not what is traced
                real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
                return
            source = os.stat(src, dir_fd=src_dir_fd, follow_symlinks=False)
            facts = {"data_version": data_version, "id": _identity(source),
                     "folder": _identity(os.stat(folder)), "call": name}
            trace.log("rename.start", **facts)
            real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            trace.log("rename.end", **facts)
        return rename

    hooks: dict[str, Callable[..., Any]] = {
        "fsync": fsync, "replace": renamer(real_replace, "replace"),
        "rename": renamer(real_rename, "rename")}
    if real_syncfs is not None:
        def syncfs(path: Any) -> None:
            device = os.stat(path).st_dev
            trace.log("syncfs.start", dev=device)
            real_syncfs(path)
            trace.log("syncfs.end", dev=device)
        hooks["syncfs"] = syncfs
    return hooks


def install_in_worker() -> None:
    """Called by an asset's body in a worker process: hook this process's file calls
    (once), recording into the trace named by ``$KZTEST_DURABILITY_TRACE``."""
    if getattr(os, "_kztest_hooked", False):
        return
    path, objects_root = os.environ[TRACE_ENV].split(os.pathsep)
    hooks = file_hooks(Trace(path), Path(objects_root))
    os.fsync, os.replace, os.rename = hooks["fsync"], hooks["replace"], hooks["rename"]
    if "syncfs" in hooks:
        _durable.syncfs = hooks["syncfs"]
    os._kztest_hooked = True  # type: ignore[attr-defined]


def _hex_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if HEX64.fullmatch(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _hex_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _hex_strings(item)


@pytest.fixture
def trace(tmp_path, store, monkeypatch) -> Iterator[Trace]:
    """Record this process's durability events for ``store`` (and, through
    ``$KZTEST_DURABILITY_TRACE``, those of workers that call :func:`install_in_worker`)."""
    recorded = Trace(tmp_path / "trace.jsonl")
    hooks = file_hooks(recorded, store.objects.root)
    monkeypatch.setattr(os, "fsync", hooks["fsync"])
    monkeypatch.setattr(os, "replace", hooks["replace"])
    monkeypatch.setattr(os, "rename", hooks["rename"])
    if "syncfs" in hooks:
        monkeypatch.setattr(_durable, "syncfs", hooks["syncfs"])
    monkeypatch.setenv(TRACE_ENV, os.pathsep.join([str(recorded.path),
                                                   str(store.objects.root)]))

    inserted: dict[int, dict[str, set[str]]] = {}  # DBAPI connection → table → versions

    def on_statement(key: int, statement: str, parameters: Any, many: bool) -> None:
        match = re.match(r"\s*INSERT\s+INTO\s+(\w+)", statement, re.IGNORECASE)
        if match:
            tables = inserted.setdefault(key, {})
            tables.setdefault(match.group(1), set()).update(_hex_strings(parameters))

    def on_commit(key: int) -> None:  # before the DBAPI commit: what it commits is named first
        tables = inserted.pop(key, {})
        recorded.log("commit", tables={t: sorted(v) for t, v in tables.items()})

    def on_rollback(key: int) -> None:
        inserted.pop(key, None)

    with watch_sql(store, on_statement, on_commit, on_rollback):
        yield recorded


# ---------------------------------------------------------------- checking the order

@dataclass
class Durable:
    """How one object became durable before the row naming it was committed."""

    data_version: str
    how: str  # "fsync+rename+fsync(folder)" or "rename+syncfs"
    commit: dict[str, Any]  # the commit event of the first transaction naming it


def check_order(events: list[dict[str, Any]], data_versions: set[str]) -> dict[str, Durable]:
    """Assert the order of durability for each of ``data_versions``; say how each got it.

    For each object: a rename makes it visible under its name; the first transaction
    whose INSERTs name its data version commits after that rename, and after either
    (a) an fsync of the renamed file that ended before the rename began and an fsync of
    its shard folder that began after the rename ended, or (b) a syncfs of its
    filesystem that began after the rename ended; either ending before the commit.
    """
    assert data_versions, "the run wrote no object"
    found: dict[str, Durable] = {}
    for dv in sorted(data_versions):
        shown = _history_of(events, dv)
        commits = [e for e in events if e["kind"] == "commit"
                   and dv in e["tables"].get("materializations", ())]
        assert commits, f"no transaction committed a row naming {dv[:12]}:\n{shown}"
        commit = commits[0]
        renames = [e for e in events if e["kind"] == "rename.end"
                   and e["data_version"] == dv]
        assert renames, f"{dv[:12]} was never renamed into objects/:\n{shown}"
        end = renames[0]
        start = next(e for e in events if e["kind"] == "rename.start"
                     and e["data_version"] == dv and e["i"] < end["i"])
        assert end["i"] < commit["i"], (
            f"the row naming {dv[:12]} was committed before its object was renamed into "
            f"place:\n{shown}")
        file_synced = any(e["kind"] == "fsync.end" and e["id"] == start["id"]
                          and e["i"] < start["i"] for e in events)
        folder_synced = any(
            e["kind"] == "fsync.start" and e["what"] == "dir" and e["id"] == end["folder"]
            and end["i"] < e["i"] and _ended_before(events, e, commit) for e in events)
        device = end["folder"][0]
        fs_synced = any(
            e["kind"] == "syncfs.start" and e["dev"] == device and end["i"] < e["i"]
            and _ended_before(events, e, commit) for e in events)
        if file_synced and folder_synced:
            how = "fsync+rename+fsync(folder)"
        elif fs_synced:
            how = "rename+syncfs"
        else:
            pytest.fail(f"{dv[:12]} was not durable when the row naming it was committed "
                        f"(file fsynced before its rename: {file_synced}; folder fsynced "
                        f"after it: {folder_synced}; syncfs after it: {fs_synced}):\n{shown}")
        found[dv] = Durable(dv, how, commit)
    return found


def _ended_before(events: list[dict[str, Any]], start: dict[str, Any],
                  commit: dict[str, Any]) -> bool:
    """Whether the call begun at ``start`` (same process and thread) ended before
    ``commit``."""
    kind = start["kind"].replace(".start", ".end")
    for e in events:
        if e["i"] > start["i"] and e["kind"] == kind and e["pid"] == start["pid"] \
                and e["thread"] == start["thread"]:
            return e["i"] < commit["i"]
    return False


def _history_of(events: list[dict[str, Any]], dv: str) -> str:
    """The events about one object (and every commit and syncfs), for failure messages."""
    ids = [e["id"] for e in events if e.get("data_version") == dv]
    folders = [e["folder"] for e in events if e.get("data_version") == dv]
    lines = []
    for e in events:
        if e.get("data_version") == dv or e["kind"].startswith("syncfs") or \
                (e["kind"].startswith("fsync") and (e["id"] in ids or e["id"] in folders)):
            lines.append(f"  {e['i']:4} pid {e['pid']} {e['kind']} {e.get('what', '')}")
        elif e["kind"] == "commit" and any(dv in v for v in e["tables"].values()):
            lines.append(f"  {e['i']:4} pid {e['pid']} commit naming it")
        elif e["kind"] == "commit":
            lines.append(f"  {e['i']:4} pid {e['pid']} commit (others)")
    return "\n".join(lines)


def written_by(flow: Flow, run_id: str) -> set[str]:
    """Data versions of the materialized records of one run."""
    return {m.data_version for m in flow.history() if m.run_id == run_id
            and m.status == "materialized" and m.data_version}


# ---------------------------------------------------------------- the scenarios

def test_one_object_is_durable_and_in_place_before_its_row_commits(store, trace):
    @asset
    def only():
        return {"rows": list(range(100))}

    flow = Flow(assets=[only], store=store)
    result = flow.run()
    assert result.materialized == ("only",)
    written = written_by(flow, result.run_id)
    assert len(written) == 1
    durable = check_order(trace.events(), written)
    assert [d.how for d in durable.values()] == ["fsync+rename+fsync(folder)"]


def test_a_batch_of_small_objects_is_in_place_and_synced_before_its_transaction(store,
                                                                                 trace):
    def leaf(i: int):
        def fn():
            return [i] * 50
        return asset(name=f"leaf{i:02}", code_version="1")(fn)

    flow = Flow(assets=[leaf(i) for i in range(40)], store=store)
    result = flow.run()
    assert len(result.materialized) == 40
    written = written_by(flow, result.run_id)
    assert len(written) == 40
    durable = check_order(trace.events(), written)
    # batched: some transaction committed the rows of several objects at once
    per_commit: dict[int, int] = {}
    for d in durable.values():
        per_commit[d.commit["i"]] = per_commit.get(d.commit["i"], 0) + 1
    assert max(per_commit.values()) > 1, per_commit
    if _durable.syncfs is not None:  # Linux: a batch is made durable by one syncfs
        assert "rename+syncfs" in {d.how for d in durable.values()}


@pytest.mark.parametrize("downstream", [False, True], ids=["alone", "with-downstream"])
def test_a_large_array_hashed_in_helper_threads_is_durable_before_its_row_commits(
        store, trace, downstream):
    np = pytest.importorskip("numpy")

    @asset
    def big():
        return np.arange(3 << 20, dtype=np.float64)  # 24 MiB: hashed and fsynced aside

    @asset
    def head(big):  # starts while big's hash and fsync finish (early start)
        return big[:10].tolist()

    flow = Flow(["head" if downstream else "big"], assets=[big, head], store=store)
    result = flow.run()
    assert result.materialized == (("big", "head") if downstream else ("big",))
    written = written_by(flow, result.run_id)
    assert len(written) == len(result.materialized)
    big_dv = store.materialization("big").data_version
    assert store.objects.path(big_dv).stat().st_size > 24 << 20
    events = trace.events()
    durable = check_order(events, written)
    if not downstream:  # alone in its batch: one object, its own fsyncs
        assert durable[big_dv].how == "fsync+rename+fsync(folder)"
    # the large object's bytes were fsynced in a helper thread, not the run's thread
    rename = next(e for e in events if e["kind"] == "rename.start"
                  and e["data_version"] == big_dv)
    fsyncs = [e for e in events if e["kind"] == "fsync.end" and e["id"] == rename["id"]]
    assert any(e["thread"] != rename["thread"] for e in fsyncs), fsyncs


def test_objects_renamed_by_worker_processes_are_synced_before_their_rows_commit(
        store, trace):
    def leaf(i: int):
        def fn():
            install_in_worker()
            return {"leaf": i, "pad": bytes(1000 * i)}
        return asset(name=f"w{i}", code_version="1")(fn)

    leaves = [leaf(i) for i in range(6)]

    @asset
    def joined(w0, w1, w2, w3, w4, w5):
        install_in_worker()
        return sorted(v["leaf"] for v in (w0, w1, w2, w3, w4, w5))

    flow = Flow(assets=[*leaves, joined], store=store)
    result = flow.run(executor="processes", max_workers=2)
    assert result["joined"] == list(range(6))
    written = written_by(flow, result.run_id)
    assert len(written) == 7
    events = trace.events()
    durable = check_order(events, written)
    parent = os.getpid()
    renamers = {e["pid"] for e in events if e["kind"] == "rename.end"
                and e["data_version"] in written}
    assert parent not in renamers and renamers, "the workers rename their objects"
    assert all(d.commit["pid"] == parent for d in durable.values())
    if _durable.syncfs is not None:  # Linux: the parent's one syncfs per batch
        assert {d.how for d in durable.values()} == {"rename+syncfs"}
        syncs = {e["pid"] for e in events if e["kind"] == "syncfs.end"}
        assert syncs == {parent}
