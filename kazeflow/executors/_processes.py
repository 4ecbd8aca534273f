"""The ``"processes"`` executor: worker processes that each run one call at a time.

Workers are fresh interpreters running :mod:`kazeflow.executors._worker` (not
``multiprocessing``'s spawn, which re-runs the parent's main module in every worker: a
script read from standard input cannot be re-run, and one without an
``if __name__ == "__main__":`` guard would start its flow again in each worker).

A small pool of its own rather than ``concurrent.futures.ProcessPoolExecutor``: when a
worker dies (segfault, ``os._exit``, SIGKILL) this pool knows which call it was running,
fails that call alone with :class:`WorkerDiedError` and starts a fresh worker for the
rest, where ``ProcessPoolExecutor`` would break every pending call at once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.spawn
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from kazeflow.errors import KazeflowError, WorkerDiedError
from kazeflow.executors import _worker

T = TypeVar("T")

_POLL = 1.0  # seconds between checks if no wake-up came (a safety net)


class ProcessExecutor:
    """Calls functions in up to ``max_workers`` worker processes (default: the CPUs).

    Calls and results are pickled, so the scheduler sends picklable data only. Workers
    ignore SIGINT: on Ctrl-C the parent stops them itself. ``start_method``:

    - ``"spawn"`` (default): each worker is a fresh interpreter (safe with threads in the
      parent) that takes the parent's ``sys.path`` and never imports its main module, so
      flows run from standard input, ``python -c`` or unguarded scripts work;
    - ``"fork"``, ``"forkserver"``: ``multiprocessing``'s own (``forkserver`` re-imports
      the main module in each worker, like ``multiprocessing``'s spawn).
    """

    in_process = False

    def __init__(self, max_workers: int | None = None, *, start_method: str = "spawn") -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        if start_method == "spawn":
            self._start: Callable[[], tuple[Any, Any]] = _interpreter
        elif start_method in ("fork", "forkserver"):
            self._start = _forked(multiprocessing.get_context(start_method))
        else:
            raise KazeflowError(f"start_method={start_method!r}: choose 'spawn' (the "
                                "default), 'fork' or 'forkserver'")
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[concurrent.futures.Future[Any], Any, tuple]] = \
            collections.deque()
        self._idle: list[_Worker] = []
        self._busy: dict[_Worker, concurrent.futures.Future[Any]] = {}
        self._closed = False
        self._monitor: threading.Thread | None = None
        #: A byte on this pipe wakes the monitor to watch a newly busy worker at once.
        self._wake_r, self._wake_w = os.pipe()
        self._pipe_open = True

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        """Send ``fn(*args)`` to a free worker (starting one if fewer than max run)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the process executor is shut down")
            self._queue.append((future, fn, args))
            self._dispatch()
            if self._monitor is None:
                self._monitor = threading.Thread(target=self._watch, daemon=True,
                                                 name="kazeflow-process-monitor")
                self._monitor.start()
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Stop the workers: idle ones are asked to exit, busy ones (with ``cancel``) are
        killed and their calls fail."""
        with self._lock:
            self._closed = True
            queued, self._queue = list(self._queue), collections.deque()
            idle, self._idle = self._idle, []
            busy: dict[_Worker, concurrent.futures.Future[Any]] = {}
            if cancel:  # no longer watched: the monitor ends at once
                busy, self._busy = self._busy, {}
            self._wake()
            if self._monitor is None:
                self._close_pipe()
        for future, _, _ in queued:
            future.cancel()
        for worker in idle:
            worker.stop()
        for worker, future in busy.items():
            worker.process.kill()
            if not future.done():
                future.set_exception(WorkerDiedError("the run was stopped", exitcode=None))
        if self._monitor is not None:
            self._monitor.join(timeout=None if not cancel else 5)
        for worker in [*idle, *busy]:
            worker.retire()

    def _dispatch(self) -> None:
        """Hand queued calls to idle or new workers (holding ``_lock``)."""
        while self._queue:
            if self._idle:
                worker = self._idle.pop()
            elif len(self._busy) < self.max_workers:
                worker = _Worker(self._start)
            else:
                return
            future, fn, args = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                self._idle.append(worker)
                continue
            try:
                worker.conn.send((fn, args))
            except Exception as exc:  # unpicklable call: the worker is still fine
                future.set_exception(exc)
                self._idle.append(worker)
                continue
            self._busy[worker] = future
            self._wake()

    def _wake(self) -> None:
        """Wake the monitor (holding ``_lock``, so the pipe is not closed meanwhile)."""
        if self._pipe_open:
            with contextlib.suppress(OSError):  # full: the monitor is awake anyway
                os.write(self._wake_w, b"x")

    def _close_pipe(self) -> None:
        """Close the wake-up pipe (holding ``_lock``)."""
        if self._pipe_open:
            self._pipe_open = False
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _watch(self) -> None:
        """Complete futures as workers answer or die (a thread of the parent)."""
        while True:
            with self._lock:
                busy = dict(self._busy)
                if self._closed and not busy:
                    self._close_pipe()
                    return
            waitables: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = multiprocessing.connection.wait([self._wake_r, *waitables], timeout=_POLL)
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            for worker, future in busy.items():
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                answer = worker.receive()
                if answer is _NOTHING:  # it has only said that it started
                    continue
                with self._lock:
                    self._busy.pop(worker, None)
                    retired = answer is None or self._closed
                    if not retired:
                        self._idle.append(worker)
                    self._dispatch()
                if retired:
                    worker.retire()
                if future.done():
                    continue
                if answer is None:
                    future.set_exception(worker.died())
                elif answer[0]:  # type: ignore[index]
                    future.set_result(answer[1])  # type: ignore[index]
                else:
                    future.set_exception(answer[1])  # type: ignore[index]


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, start: Callable[[], tuple[Any, Any]]) -> None:
        self.process, self.conn = start()
        #: Whether the worker said it runs (it may die before: it could not start).
        self.started = False
        self.start_error: str | None = None

    def receive(self) -> tuple[bool, Any] | None | object:
        """The worker's answer; :data:`_NOTHING` while it has only said it started; None
        when it died without one."""
        try:
            while self.conn.poll():
                answer = self.conn.recv()
                if answer[0] == _worker.STARTED:
                    self.started = True
                elif answer[0] == _worker.COULD_NOT_START:
                    self.start_error = answer[1]
                else:
                    return answer  # type: ignore[no-any-return]
            if self.process.exitcode is None and self.process.sentinel not in \
                    multiprocessing.connection.wait([self.process.sentinel], timeout=0):
                return _NOTHING
        except (EOFError, OSError):
            pass
        return None

    def stop(self) -> None:
        """Ask the worker to exit once idle."""
        try:
            self.conn.send(None)
        except OSError:
            pass

    def retire(self) -> None:
        """Stop the worker (killed if it does not exit within 5 s) and release its
        pipe and process handle."""
        self.stop()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()
        if isinstance(self.process, _Interpreter):
            with contextlib.suppress(ValueError):  # still running after a kill: left so
                self.process.close()

    def died(self) -> WorkerDiedError:
        """Why the worker gave no answer: it died, or it could not start."""
        code = self.process.exitcode
        if self.started:
            return WorkerDiedError(_died(code), exitcode=code)
        detail = (self.start_error or "").strip().splitlines()[-1:] or \
            [f"exit code {code}, before it ran anything"]
        return WorkerDiedError(
            f"a worker process could not start ({detail[0]}); kazeflow's workers are "
            f"fresh interpreters ({sys.executable}) that must import kazeflow from the "
            "parent's sys.path: install kazeflow into that environment, or run with "
            "executor='threads'", exitcode=code)


#: What :meth:`_Worker.receive` gives while a worker has nothing to say yet.
_NOTHING = object()


def _interpreter() -> tuple[Any, Any]:
    """Start a worker as a fresh interpreter running :data:`_worker.BOOT` (it never
    imports the parent's main module); its process and the parent's end of its pipe."""
    conn, child = multiprocessing.Pipe()  # a socket pair: both ways
    path = [p or os.getcwd() for p in sys.path]  # "" (python -c, stdin): the cwd now
    args = [multiprocessing.spawn.get_executable(), *_interpreter_flags(), "-c",
            _worker.BOOT, str(child.fileno()), *path]
    try:
        process = _Interpreter(args, child.fileno())
    finally:
        child.close()
    conn.send(sys.argv)
    return process, conn


def _interpreter_flags() -> list[str]:
    """The parent's ``-X``, ``-W``, ``-O``… flags, as multiprocessing passes them."""
    flags = getattr(subprocess, "_args_from_interpreter_flags", None)
    return list(flags()) if flags is not None else []


class _Interpreter:
    """A worker process started with :mod:`subprocess`, with what the executor uses of
    ``multiprocessing.Process``: ``pid``, ``sentinel``, ``exitcode``, ``join``, ``kill``,
    ``is_alive``."""

    def __init__(self, args: list[str], fd: int) -> None:
        sentinel, child_end = os.pipe()  # readable (EOF) once the worker has exited
        try:
            self._popen = subprocess.Popen(args, pass_fds=(fd, child_end),
                                           stdin=subprocess.DEVNULL)
        except BaseException:
            os.close(sentinel)
            raise
        finally:
            os.close(child_end)
        self.pid = self._popen.pid
        self._sentinel = os.fdopen(sentinel, "rb", buffering=0)  # closed with it
        self.sentinel = self._sentinel.fileno()

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self._popen.kill()

    def close(self) -> None:
        """Release the sentinel (once the worker has exited, as ``Process.close``)."""
        if self._popen.poll() is None:
            raise ValueError("the worker process is still running")
        self._sentinel.close()


def _forked(ctx: Any) -> Callable[[], tuple[Any, Any]]:
    """Start workers with a ``multiprocessing`` context (``fork``, ``forkserver``)."""
    def start() -> tuple[Any, Any]:
        conn, child = ctx.Pipe()
        process = ctx.Process(target=_worker.serve, args=(child,), daemon=True,
                              name="kazeflow-worker")
        process.start()
        child.close()
        return process, conn
    return start


def _died(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"worker process died (exit code {code}, {signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"worker process died (exit code {code})"
