"""Real, importable flows for tests that run kazeflow in other processes, and the harness.

Child processes must find assets by import (not closures), so the flows live here:

- ``diamond``: ``d_source → (d_left, d_right) → d_joined → d_report``. Every value holds a
  100 kB blob followed by a :class:`Marker`, so the pickler has already written part of
  the temp file when the marker announces itself.
- ``slow``: ``s_first → (s_second, s_third) → s_fourth``; each asset naps
  (``KZTEST_NAP`` seconds, or ``KZTEST_NAP_<NAME>`` for one asset) and appends a line to
  the execution log ``KZTEST_LOG`` (``O_APPEND``, so several processes can share it).
- ``gc``: ``g_base → (g_scaled, g_offset) → g_total``, configurable, for gc races.

The harness: :func:`main` runs one flow in a child interpreter (``tests/`` on its
``PYTHONPATH``). A :class:`Watcher` installed with ``sys.setprofile`` while the run
executes names each interesting moment (an asset body, its lease, ``ObjectStore.write``,
the pickling of a marker, ``os.fsync`` / ``syncfs``, ``os.replace``, ``fsync_dir``,
``MetadataStore.record`` and its SQLite ``commit``, ``finish_run`` …) by what it does and
to which assets, and can stop at a chosen one: ``pause`` (sleep until killed), ``hold``
(wait for a release file) or ``notify`` (say so and go on). The parent drives a
:class:`Child` by the lines it prints: ``waiting``, ``event <label>``, ``result <json>``.
Also here: :func:`check_store`, the durability contract checked without kazeflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import cloudpickle

from kazeflow import Config, Flow, Store, asset
from kazeflow.assets import Asset

TESTS_DIR = Path(__file__).resolve().parent
LOG_ENV = "KZTEST_LOG"
NAP_ENV = "KZTEST_NAP"
PAD = 100_000


# ---------------------------------------------------------------- what the assets call

def checkpoint(label: str) -> None:
    """A named moment inside an asset; a child's :class:`Watcher` sees every call."""


def executed(name: str) -> None:
    """Announce that asset ``name`` runs: checkpoint, execution log, then the nap."""
    checkpoint(f"{name}:body")
    log = os.environ.get(LOG_ENV)
    if log:
        line = f"{name} {os.getpid()} {threading.get_ident()}\n".encode()
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    nap = os.environ.get(f"{NAP_ENV}_{name.upper()}", os.environ.get(NAP_ENV))
    if nap:
        time.sleep(float(nap))


class Marker:
    """A value that announces the moment it is pickled (deep inside ``ObjectStore.put``)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        checkpoint(f"{self.label}:pickle")
        return (Marker, (self.label,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Marker) and other.label == self.label

    def __hash__(self) -> int:
        return hash(self.label)


def payload(name: str, data: Any) -> dict[str, Any]:
    """``data`` with a blob written before the marker, so a paused pickle is partial."""
    return {"data": data, "pad": bytes(PAD), "marker": Marker(name)}


# ---------------------------------------------------------------- the diamond flow

@asset(config_schema=Config)
def d_source(config: Config) -> dict[str, Any]:
    executed("d_source")
    return payload("d_source", list(range(config.get("n", 10))))


@asset
def d_left(d_source: dict[str, Any]) -> dict[str, Any]:
    executed("d_left")
    return payload("d_left", [x * 2 for x in d_source["data"]])


@asset(config_schema=Config)
def d_right(config: Config, d_source: dict[str, Any]) -> dict[str, Any]:
    executed("d_right")
    return payload("d_right", [x + config.get("k", 1) for x in d_source["data"]])


@asset
def d_joined(d_left: dict[str, Any], d_right: dict[str, Any]) -> dict[str, Any]:
    executed("d_joined")
    pairs = zip(d_left["data"], d_right["data"], strict=True)
    return payload("d_joined", [a * b for a, b in pairs])


@asset
def d_report(d_joined: dict[str, Any]) -> dict[str, Any]:
    executed("d_report")
    return payload("d_report", {"total": sum(d_joined["data"])})


# ---------------------------------------------------------------- the slow flow

@asset
def s_first() -> list[int]:
    executed("s_first")
    return [1, 2, 3]


@asset
def s_second(s_first: list[int]) -> list[int]:
    executed("s_second")
    return [x * 10 for x in s_first]


@asset
def s_third(s_first: list[int]) -> list[int]:
    executed("s_third")
    return [x + 100 for x in s_first]


@asset
def s_fourth(s_second: list[int], s_third: list[int]) -> int:
    executed("s_fourth")
    return sum(s_second) + sum(s_third)


# ---------------------------------------------------------------- the gc flow

@asset
def g_base() -> list[int]:
    executed("g_base")
    return list(range(1000))


@asset(config_schema=Config)
def g_scaled(config: Config, g_base: list[int]) -> list[int]:
    executed("g_scaled")
    return [x * config.get("m", 1) for x in g_base]


@asset(config_schema=Config)
def g_offset(config: Config, g_base: list[int]) -> list[int]:
    executed("g_offset")
    return [x + config.get("o", 0) for x in g_base]


@asset
def g_total(g_scaled: list[int], g_offset: list[int]) -> int:
    executed("g_total")
    return sum(g_scaled) + sum(g_offset)


def gc_config(i: int) -> dict[str, dict[str, int]]:
    """The config of the ``i``-th run of the gc flow: two knobs changing at different rates."""
    return {"g_scaled": {"m": i % 3}, "g_offset": {"o": i % 2}}


def gc_expected(i: int) -> dict[str, Any]:
    """What the ``i``-th run of the gc flow must produce."""
    base = list(range(1000))
    scaled = [x * (i % 3) for x in base]
    offset = [x + i % 2 for x in base]
    return {"g_base": base, "g_scaled": scaled, "g_offset": offset,
            "g_total": sum(scaled) + sum(offset)}


FLOWS: dict[str, tuple[Asset, ...]] = {
    "diamond": (d_source, d_left, d_right, d_joined, d_report),
    "slow": (s_first, s_second, s_third, s_fourth),
    "gc": (g_base, g_scaled, g_offset, g_total),
}
DIAMOND_CONFIG = {"d_source": {"n": 12}, "d_right": {"k": 3}}


def make_flow(kind: str, store: Any) -> Flow:
    """The flow ``kind`` on ``store``, independent of the global registry."""
    return Flow(assets=FLOWS[kind], store=store)


@contextlib.contextmanager
def opened(kind: str, root: Path, metadata: str | None = None) -> Iterator[Any]:
    """The flow ``kind`` on the store at ``root`` (with ``metadata``), closed afterwards."""
    flow = make_flow(kind, Store(root, metadata=metadata))
    try:
        yield flow
    finally:
        flow.store.close()


def digest(value: Any) -> str:
    """SHA-256 of the value's pickle: equal digests mean equal results."""
    return hashlib.sha256(cloudpickle.dumps(value, protocol=5)).hexdigest()


def read_log(path: Path) -> Counter[str]:
    """How many times each asset executed, from the shared execution log."""
    if not path.exists():
        return Counter()
    return Counter(line.split()[0] for line in path.read_text().splitlines())


# ---------------------------------------------------------------- the store, checked raw

def check_store(root: Path, metadata: str | None = None) -> dict[str, str]:
    """Assert the durability contract on disk and in the raw rows; return committed rows.

    Every ``materialized`` row and every ``objects`` row names a file under ``objects/``
    of the recorded size whose SHA-256 is its name; no temp file sits under an object name.

    Returns:
        asset name → data version of its newest materialized row.
    """
    objects = root / "objects"
    for shard in objects.iterdir() if objects.exists() else ():
        if shard.is_dir():
            for path in shard.iterdir():
                assert len(path.name) == 62 and not path.name.endswith(".partial"), path
                assert _sha256(path) == shard.name + path.name, f"partial object {path}"
    rows = raw_rows(root, metadata, "SELECT asset_name, data_version, size FROM "
                    "materializations WHERE status = 'materialized' ORDER BY id")
    rows += [("(objects table)", dv, size) for dv, size in
             raw_rows(root, metadata, "SELECT data_version, size FROM objects")]
    committed: dict[str, str] = {}
    for asset_name, data_version, size in rows:
        path = objects / data_version[:2] / data_version[2:]
        assert path.is_file(), f"row of {asset_name!r} points at missing {path}"
        assert path.stat().st_size == size, f"row of {asset_name!r}: wrong size {path}"
        assert _sha256(path) == data_version, f"row of {asset_name!r}: bad bytes {path}"
        committed[asset_name] = data_version
    committed.pop("(objects table)", None)
    return committed


def raw_rows(root: Path, metadata: str | None, sql: str, *params: Any
             ) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``?`` placeholders) read without kazeflow: with plain
    ``sqlite3`` from the store's own file, or from the ``metadata`` URL."""
    url = metadata
    if url is None:
        conn = sqlite3.connect(root / "kazeflow.db")
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql.replace("?", "%s"),
                                                              params)]
    finally:
        engine.dispose()


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


# ---------------------------------------------------------------- the child side

class Watcher:
    """A ``sys.setprofile`` hook that names the interesting moments of a run.

    A moment is ``<assets>:<kind>``: the kind (``body``, ``pickle``, ``replace``,
    ``record.commit`` …) and the assets it concerns (``d_left``, ``d_left+d_right`` for a
    batch, ``run`` for the run's own records). Moments are named by what they do, not by
    their position, so a target such as ``d_joined:record.commit`` ("the commit of the
    transaction holding d_joined's row") means the same thing in every run however
    kazeflow batches its writes. At the first moment matching the next of ``stops`` (same
    kind, asset among its assets) the watcher prints ``event <label>`` and then pauses
    forever, holds until the stop's release file exists, or notifies and goes on. A
    target may name alternative kinds, ``d_left:fsync|syncfs``: whichever comes first.
    """

    #: Functions whose calls are moments; missing ones are skipped, so the harness
    #: survives refactors of kazeflow's internals.
    CALLS = {
        "_flows.checkpoint": "checkpoint",
        "kazeflow.running._execute.ScheduledRun._materialize": "materialize",
        "kazeflow.store._objects.ObjectStore.remove_stale_temps": "remove_stale_temps",
        "kazeflow.store.Store.lease": "lease",
        "kazeflow.store._objects.ObjectStore.put": "put",
        "kazeflow.store._objects.ObjectStore.start_write": "write",
        "kazeflow.store._objects.ObjectStore.commit": "objects_commit",
        "kazeflow.store._durable.syncfs": "syncfs",
        "kazeflow.store._durable.fsync_dir": "fsync_dir",
        "kazeflow.store._metadata.MetadataStore.start_run": "start_run",
        "kazeflow.store._metadata.MetadataStore.record": "record",
        "kazeflow.store._metadata.MetadataStore.finish_run": "finish_run",
    }
    RETURNS = {
        "kazeflow.store._objects.ObjectStore.put": "put_returned",
        "kazeflow.store._writes.ObjectWrite.finish": "write_returned",
        "kazeflow.store._objects.ObjectStore.commit": "objects_committed",
        "kazeflow.store._metadata.MetadataStore.record": "record_returned",
    }
    RUN_LEVEL = frozenset({"remove_stale_temps", "start_run", "finish_run"})
    BATCH_LEVEL = frozenset({"objects_commit", "syncfs", "fsync_dir", "objects_committed"})

    def __init__(self, stops: Sequence[tuple[str, str, str | None]] = ()) -> None:
        #: (target, action, release file) in the order they are expected to happen
        self.stops = [(target.rsplit(":", 1), action, release)
                      for target, action, release in stops]
        self.labels: list[str] = []
        self._asset = "run"  # the asset being materialized
        self._batch: list[str] = []  # the assets whose objects are being committed
        self._op: list[str] = ["run"]  # the assets whose rows are being committed
        self._op_kind = "run"  # and what commits them (start_run, record, finish_run)
        self._owner: dict[str, str] = {}  # data version → asset
        self._calls = _resolve_codes(self.CALLS)
        self._returns = _resolve_codes(self.RETURNS)
        self._fsync_dir_code = next(
            (c for c, k in self._calls.items() if k == "fsync_dir"), None)

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            kind = self._calls.get(frame.f_code)
            if kind is not None:
                self._on_call(kind, frame)
        elif event == "return":
            kind = self._returns.get(frame.f_code)
            if kind is not None:
                self._on_return(kind, arg)
        elif event in ("c_call", "c_return"):
            name = getattr(arg, "__name__", None)
            if name == "commit" and isinstance(getattr(arg, "__self__", None),
                                               sqlite3.Connection):
                done = "committed" if event == "c_return" else "commit"
                self._hit(self._op, f"{self._op_kind}.{done}")
            elif event == "c_call" and (arg is os.replace or arg is os.fsync) and \
                    frame.f_code is not self._fsync_dir_code:
                self._hit([self._owner_of(frame.f_locals.get("item"))], arg.__name__)

    def _on_call(self, kind: str, frame: FrameType) -> None:
        local = frame.f_locals
        if kind == "checkpoint":
            asset_name, what = local["label"].rsplit(":", 1)
            self._hit([asset_name], what)
        elif kind == "materialize":
            self._asset = local["item"].name
            self._hit([self._asset], kind)
        elif kind in self.RUN_LEVEL:
            self._op, self._op_kind = ["run"], kind
            self._hit(["run"], kind)
        elif kind == "record":
            rows = local.get("rows")
            names = [r["asset_name"] for r in rows] if isinstance(rows, list) else []
            self._op, self._op_kind = sorted(set(names)) or [self._asset], kind
            self._hit(self._op, kind)
        elif kind == "objects_commit":
            pending = local.get("pending") or []
            self._batch = sorted({self._owner_of(item) for item in pending})
            self._hit(self._batch, kind)
        elif kind in self.BATCH_LEVEL:
            self._hit(self._batch, kind)
        else:
            self._hit([self._asset], kind)

    def _on_return(self, kind: str, value: Any) -> None:
        if kind in ("write_returned", "put_returned"):
            data_version = getattr(value, "data_version", None)
            if data_version is None and isinstance(value, tuple):
                data_version = value[0]
            if isinstance(data_version, str):
                self._owner[data_version] = self._asset
            self._hit([self._asset], kind)
        elif kind == "objects_committed":
            self._hit(self._batch, kind)
        else:
            self._hit(self._op, kind)

    def _owner_of(self, pending: Any) -> str:
        return self._owner.get(str(getattr(pending, "data_version", "")), self._asset)

    def _hit(self, assets: list[str], kind: str) -> None:
        label = f"{'+'.join(assets)}:{kind}"
        self.labels.append(label)
        if not self.stops:
            return
        (asset_name, stop_kinds), action, release = self.stops[0]
        if kind not in stop_kinds.split("|") or asset_name not in assets:
            return
        self.stops.pop(0)
        say(f"event {label}")
        if action == "pause":
            while True:
                time.sleep(60)
        elif action == "hold":
            assert release is not None
            while not os.path.exists(release):
                time.sleep(0.005)


def targets(labels: list[str]) -> list[str]:
    """Every distinct ``asset:kind`` stop target in a traced run, in order of occurrence."""
    found: dict[str, None] = {}
    for label in labels:
        assets, kind = label.rsplit(":", 1)
        for asset_name in assets.split("+"):
            found.setdefault(f"{asset_name}:{kind}")
    return list(found)


def _resolve_codes(names: dict[str, str]) -> dict[Any, str]:
    """Code object → kind for every dotted function name that exists."""
    import importlib
    import inspect

    codes = {}
    for dotted, kind in names.items():
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
                codes[inspect.unwrap(obj).__code__] = kind  # a decorated method's own
            except AttributeError:
                pass
            break
    return codes


@contextlib.contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Profile with ``watcher`` while a run executes (not while it hashes code: slow)."""
    from kazeflow.running import _execute

    runner = getattr(_execute, "ScheduledRun", None)
    original = getattr(runner, "execute", None)
    if runner is None or original is None:  # internals moved: watch the whole run
        sys.setprofile(watcher)
        try:
            yield
        finally:
            sys.setprofile(None)
        return

    def execute(self: Any) -> Any:
        sys.setprofile(watcher)
        try:
            return original(self)
        finally:
            sys.setprofile(None)

    runner.execute = execute
    try:
        yield
    finally:
        runner.execute = original


def say(line: str) -> None:
    """One whole line to the parent (a single unbuffered write)."""
    os.write(1, (line + "\n").encode())


def wait_for(path: str, timeout: float = 60.0) -> None:
    """Poll until ``path`` exists (a start signal from the parent)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start signal {path}")
        time.sleep(0.002)


def main(argv: list[str]) -> int:
    """Child entry point: ``argv[0]`` is a JSON spec (see :class:`Child`)."""
    spec = json.loads(argv[0])
    if spec.get("mode") == "gc":
        return _gc_loop(spec)
    if spec.get("mode") == "gc_runs":
        return _gc_runs(spec)
    flow = make_flow(spec["flow"], spec["store"])
    if spec.get("open_early", True):  # migrations are not what is being watched
        flow.store.metadata  # noqa: B018
        flow.store.objects  # noqa: B018
    stops: list[tuple[str, str, str | None]] = [
        (target, action, release) for target, action, release in spec.get("stops", [])]
    if spec.get("stop"):
        stops.insert(0, (spec["stop"], spec.get("action", "pause"), spec.get("release")))
    watcher = Watcher(stops)
    if spec.get("barrier"):
        say("waiting")
        wait_for(spec["barrier"])
    with watching(watcher):
        result = flow.run(config=spec.get("config"))
    say("result " + json.dumps({
        "run_id": result.run_id, "pid": os.getpid(),
        "materialized": list(result.materialized), "reused": list(result.reused),
        "digests": {name: digest(result[name]) for name in result},
        "events": watcher.labels}))
    flow.store.close()
    return 0


def _gc_loop(spec: dict[str, Any]) -> int:
    """Collect garbage in a loop until the stop file appears; report the totals."""
    from kazeflow.store import Store

    store = Store(spec["store"])
    totals = Counter(loops=0)
    started = False
    while not os.path.exists(spec["stop_file"]):
        report = store.gc(keep_last=spec.get("keep_last", 1))
        totals.update(loops=1, records=report.records_removed,
                      objects=report.objects_removed)
        if not started:  # warmed up (imports, connections): the race can begin
            say("waiting")
            started = True
        time.sleep(spec.get("pause", 0.0))
    store.close()
    say("result " + json.dumps(dict(totals)))
    return 0


def _gc_runs(spec: dict[str, Any]) -> int:
    """Run the gc flow ``runs`` times with changing config; report wrong or lost values."""
    flow = make_flow("gc", spec["store"])
    problems = []
    say("waiting")
    for i in range(spec["offset"], spec["offset"] + spec["runs"]):
        step = "run"
        try:
            result = flow.run(config=gc_config(i))
            step = f"reading {sorted(result.reused)} reused by"
            values, expected = {name: result[name] for name in result}, gc_expected(i)
            wrong = sorted(name for name in expected if values.get(name) != expected[name])
            if wrong:
                problems.append(f"run {i}: wrong {wrong}; reused {result.reused}, "
                                f"materialized {result.materialized}")
        except Exception as exc:  # reported to the parent, which fails the test
            problems.append(f"{step} run {i}: {type(exc).__name__}: {exc}")
    flow.store.close()
    say("result " + json.dumps({"problems": problems}))
    return 0


# ---------------------------------------------------------------- the parent side

CHILD_CODE = "import sys, _flows; sys.exit(_flows.main(sys.argv[1:]))"


class ChildError(AssertionError):
    """A child did not say what the parent expected; carries its stderr."""


class Child:
    """A flow run in a fresh interpreter with ``tests/`` on its ``PYTHONPATH``.

    Spec keys: ``store``, ``flow``, ``config``, ``stop`` (an ``asset:kind`` target),
    ``action`` (pause / hold / notify), ``release`` (file), ``stops`` (more
    ``[target, action, release]`` after that one), ``barrier`` (file),
    ``open_early`` (default true); or ``mode: "gc"`` (collect in a loop until
    ``stop_file`` exists) or ``mode: "gc_runs"`` (``runs`` runs of the gc flow from
    config number ``offset``).
    """

    def __init__(self, spec: dict[str, Any], env: dict[str, str] | None = None) -> None:
        # a child that hangs prints every thread's stack on SIGABRT (see kill)
        full_env = {**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH")) if p)
        self.stderr = tempfile.TemporaryFile()
        self._stderr_text = ""
        self.report: dict[str, Any] = {}  # the child's final report, once it has one
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_CODE, json.dumps(spec)], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.stderr, env=full_env, bufsize=0)
        self.pid = self.proc.pid
        self.spec = spec

    def expect(self, word: str, timeout: float = 60.0) -> str:
        """Read the next line; it must start with ``word``; return the rest."""
        line = self._readline(timeout)
        head, _, rest = line.partition(" ")
        if head != word:
            raise ChildError(f"child {self.pid} said {line!r}, expected {word!r}"
                             f"{self.diagnostics()}")
        return rest

    def event(self, timeout: float = 60.0) -> str:
        """Wait for the child to reach its stop moment; return the moment's label."""
        return self.expect("event", timeout)

    def event_or_result(self, timeout: float = 60.0) -> str | None:
        """The stop moment's label, or None if the run ended without reaching it."""
        word, _, rest = self._readline(timeout).partition(" ")
        if word == "event":
            return rest
        if word == "result":
            self.report = json.loads(rest)
            return None
        raise ChildError(f"child {self.pid} said {word} {rest}{self.diagnostics()}")

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for the child to finish its run successfully; return its report."""
        self.report = json.loads(self.expect("result", timeout))
        code = self.proc.wait(timeout)
        if code != 0:
            raise ChildError(f"child {self.pid} exited with {code}{self.diagnostics()}")
        return self.report

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` and reap the child; return its exit code. A child that does not
        exit within 60 s is aborted, and the error shows where each of its threads was."""
        os.kill(self.pid, sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGABRT)
            self.proc.wait(10)
            raise ChildError(f"child {self.pid} did not exit within 60 s of signal {sig}"
                             f"{self.diagnostics()}") from None

    def error_output(self) -> str:
        """Everything the child wrote to stderr so far (also after :meth:`close`)."""
        if not self.stderr.closed:
            self.stderr.seek(0)
            self._stderr_text = self.stderr.read().decode(errors="replace")
        return self._stderr_text

    def diagnostics(self) -> str:
        return f"\n--- stderr of child {self.pid} ---\n{self.error_output()}"

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        data = bytearray()
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ChildError(f"child {self.pid}: nothing after {timeout}s; got "
                                 f"{bytes(data)!r}{self.diagnostics()}")
            chunk = os.read(fd, 1)
            if not chunk:
                self.proc.wait(10)
                raise ChildError(f"child {self.pid} exited ({self.proc.returncode}) "
                                 f"after {bytes(data)!r}{self.diagnostics()}")
            data += chunk
        return data[:-1].decode()

    def close(self) -> None:
        """Kill the child if it still runs; release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.error_output()
        self.stderr.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
