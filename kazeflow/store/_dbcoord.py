"""Coordination through a PostgreSQL metadata database: key leases, the gc lock, run
liveness and gc pins that hold across machines sharing the database.

Locks are PostgreSQL session advisory locks on one connection per process (autocommit,
opened on first use): a process that dies, or whose machine drops off the network, loses
its session and with it every lock it held, so nothing needs an expiry. Advisory locks
do not exclude a session from itself, so locks taken by this process's threads are
counted here too. Waiting polls the ``pg_try_`` functions (a blocking call would hold up
the connection that the process's other locks use).

- a key lease: an exclusive lock on the cache key;
- the gc lock: runs hold it shared while writing objects and their rows, gc exclusive;
- a run's liveness: the run holds an exclusive lock on its run id while it lives, and
  ``pg_locks`` lists the run locks that some session holds;
- pins: rows of ``run_pins`` (run id, data version), written (committed) before the run
  checks that the object exists; gc keeps the pins of live runs and deletes the others.

Lock keys are 64 bits of the SHA-256 of the schema, the kind and the name, so stores in
other schemas of the same database never share a lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Collection, Iterable
from typing import Any

from kazeflow.errors import StoreError

_POLL_FIRST, _POLL_MAX = 0.001, 0.05  # seconds between tries while waiting
_LIVE_RUN_LOCKS = """
SELECT classid, objid FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class Coordinator:
    """Advisory locks and pins of one store, on this process's coordination connection."""

    def __init__(self, engine: Any, describe: Any) -> None:
        self._engine = engine
        self._describe = describe  # (exc, doing) -> StoreError naming the database
        self._connection: Any = None
        self._schema = ""
        self._calling = threading.Lock()  # one statement at a time on the connection
        self._counting = threading.Lock()  # a hold's count and its lock change together
        #: key -> number of shared holds in this process, or -1 for an exclusive one
        self._held: dict[int, int] = {}
        self.closed = False

    def _call(self, sql: str, params: Any = (), many: bool = False) -> list[tuple[Any, ...]]:
        with self._calling:
            if self.closed:
                raise StoreError("the store was closed; open it again (Store(...))")
            try:
                if self._connection is None:
                    self._open()
                cursor = self._connection.cursor()
                try:
                    if many:
                        cursor.executemany(sql, params)
                        return []
                    cursor.execute(sql, params)
                    return list(cursor.fetchall()) if cursor.description else []
                finally:
                    cursor.close()
            except Exception as exc:
                if self._connection is not None and self._connection.closed:
                    self._connection = None  # lost: its locks went with it
                    self._held.clear()
                raise self._describe(exc, "coordinate runs through") from exc

    def _open(self) -> None:
        pooled = self._engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # its own: the pool never hands it (and its locks) to another user
        connection.autocommit = True
        self._connection = connection
        cursor = connection.cursor()
        cursor.execute("SELECT current_schema()")
        self._schema = cursor.fetchone()[0] or ""
        cursor.close()

    def key(self, kind: str, name: str) -> int:
        """The advisory lock key of ``name`` of ``kind`` (a signed 64-bit number)."""
        if self._connection is None:
            self._call("SELECT 1")
        digest = hashlib.sha256(f"{self._schema}\0{kind}\0{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def try_lock(self, key: int, shared: bool) -> bool:
        """Take ``key`` (shared or exclusive) if no one else holds it in a conflicting way,
        in this process or another."""
        with self._counting:
            holds = self._held.get(key, 0)
            if holds < 0 or (holds > 0 and not shared):
                return False
            if holds == 0:  # the session takes it once; this process counts its holds
                function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
                if not self._call(f"SELECT {function}(%s)", (key,))[0][0]:
                    return False
            self._held[key] = holds + 1 if shared else -1
            return True

    def lock(self, key: int, shared: bool) -> None:
        """Take ``key``, waiting as long as it takes."""
        pause = _POLL_FIRST
        while not self.try_lock(key, shared):
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    def unlock(self, key: int, shared: bool) -> None:
        with self._counting:
            holds = self._held.get(key, 0)
            if holds > 1:
                self._held[key] = holds - 1
                return
            if holds == 0:  # a lost session released it already
                return
            del self._held[key]
            function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
            self._call(f"SELECT {function}(%s)", (key,))

    def held_anywhere(self) -> set[int]:
        """The keys some session of the database holds (any store, any machine)."""
        keys = set()
        for classid, objid in self._call(_LIVE_RUN_LOCKS):
            key = (int(classid) << 32) | int(objid)
            keys.add(key - (1 << 64) if key >= 1 << 63 else key)
        return keys

    def live_runs(self, run_ids: Collection[str]) -> set[str]:
        """Which of ``run_ids`` still live (hold their run lock)."""
        held = self.held_anywhere()
        return {run_id for run_id in run_ids if self.key("run", run_id) in held}

    def add_pins(self, run_id: str, data_versions: Iterable[str]) -> None:
        self._call("INSERT INTO run_pins (run_id, data_version) VALUES (%s, %s) "
                   "ON CONFLICT DO NOTHING", [(run_id, dv) for dv in data_versions],
                   many=True)

    def drop_pins(self, run_ids: Collection[str]) -> None:
        if run_ids:
            self._call("DELETE FROM run_pins WHERE run_id = ANY(%s)", (list(run_ids),))

    def live_pins(self, remove_dead: bool) -> set[str]:
        """Data versions pinned by live runs; the pins of dead runs are deleted (unless
        ``remove_dead`` is False: a dry run)."""
        by_run: dict[str, set[str]] = {}
        for run_id, data_version in self._call("SELECT run_id, data_version FROM run_pins"):
            by_run.setdefault(run_id, set()).add(data_version)
        live = self.live_runs(by_run)
        if remove_dead:
            self.drop_pins([run_id for run_id in by_run if run_id not in live])
        return set().union(*(by_run[run_id] for run_id in live))

    def close(self) -> None:
        """Close the connection (every lock of this process is released with it); the
        coordinator cannot be used again."""
        with self._calling:
            self.closed = True
            if self._connection is not None:
                connection, self._connection = self._connection, None
                self._held.clear()
                try:
                    connection.close()
                except Exception:  # already lost
                    pass


class DbLock:
    """An advisory lock (a key lease, the gc lock) as the engine's Lock protocol has it."""

    #: Unknown whether some run took the key before: the taker re-checks the records.
    created = False

    def __init__(self, coordinator: Coordinator, key: int, shared: bool = False) -> None:
        self._coordinator, self._key, self._shared = coordinator, key, shared
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self, blocking: bool = True) -> bool:
        if blocking:
            self._coordinator.lock(self._key, self._shared)
        elif not self._coordinator.try_lock(self._key, self._shared):
            return False
        self._held = True
        return True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._coordinator.unlock(self._key, self._shared)


class DbPins:
    """A run's pins in ``run_pins``, kept while its run lock is held (see the module)."""

    def __init__(self, coordinator: Coordinator, run_id: str) -> None:
        self._coordinator, self._run_id = coordinator, run_id
        self._lock = DbLock(coordinator, coordinator.key("run", run_id))
        self.pinned: set[str] = set()
        self._adding = threading.Lock()

    def open(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise StoreError(f"run {self._run_id} is already live elsewhere; run ids are "
                             "unique per run, so this is a bug: report it")

    def add(self, data_versions: Iterable[str]) -> None:
        with self._adding:
            new = [dv for dv in data_versions if dv not in self.pinned]
            if new and self._lock.held:
                self._coordinator.add_pins(self._run_id, new)
                self.pinned.update(new)

    def seal(self) -> None:
        """Nothing to let go of: pins stay rows until :meth:`close`."""

    def close(self) -> None:
        """Unpin everything; after the store's close, its lock went with the connection
        and gc drops the rows."""
        if self._lock.held:
            try:
                if not self._coordinator.closed:
                    self._coordinator.drop_pins([self._run_id])
            finally:
                self._lock.release()
