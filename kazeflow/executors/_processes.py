"""The ``"processes"`` executor: worker processes that each run one call at a time.

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
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kazeflow.errors import WorkerDiedError

T = TypeVar("T")

_POLL = 1.0  # seconds between checks if no wake-up came (a safety net)


class ProcessExecutor:
    """Calls functions in up to ``max_workers`` worker processes (default: the CPUs).

    Calls and results are pickled, so the scheduler sends picklable data only. Workers
    start with ``start_method`` (``spawn`` by default: safe with threads in the parent)
    and ignore SIGINT: on Ctrl-C the parent stops them itself.
    """

    in_process = False

    def __init__(self, max_workers: int | None = None, *, start_method: str = "spawn") -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self._ctx = multiprocessing.get_context(start_method)
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
            busy = dict(self._busy) if cancel else {}
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
        if self._monitor is not None and not cancel:
            self._monitor.join()
        for worker in [*idle, *busy]:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)

    def _dispatch(self) -> None:
        """Hand queued calls to idle or new workers (holding ``_lock``)."""
        while self._queue:
            if self._idle:
                worker = self._idle.pop()
            elif len(self._busy) < self.max_workers:
                worker = _Worker(self._ctx)
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
                with self._lock:
                    self._busy.pop(worker, None)
                    if answer is None:
                        worker.process.join(timeout=5)
                    elif not self._closed:
                        self._idle.append(worker)
                    else:
                        worker.stop()
                    self._dispatch()
                if future.done():
                    continue
                if answer is None:
                    code = worker.process.exitcode
                    future.set_exception(WorkerDiedError(_died(code), exitcode=code))
                elif answer[0]:
                    future.set_result(answer[1])
                else:
                    future.set_exception(answer[1])


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True,
                                   name="kazeflow-worker")
        self.process.start()
        child.close()

    def receive(self) -> tuple[bool, Any] | None:
        """The worker's answer, or None when it died without one."""
        try:
            if self.conn.poll():
                return self.conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            pass
        return None

    def stop(self) -> None:
        """Ask the worker to exit once idle."""
        try:
            self.conn.send(None)
        except OSError:
            pass


def _died(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"worker process died (exit code {code}, {signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"worker process died (exit code {code})"


def _worker_main(conn: multiprocessing.connection.Connection) -> None:
    """A worker's loop: receive a call, run it, send back (ok, result or exception)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            answer: tuple[bool, Any] = (True, fn(*args))
        except BaseException as exc:
            answer = (False, exc)
        try:
            conn.send(answer)
        except OSError:  # the parent is gone
            return
        except Exception as exc:  # an unpicklable result or exception
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc} (while sending "
                                           f"back {answer[1]!r:.200})")))


def _exit_with_parent(parent: int) -> None:
    """End this worker soon after its parent dies (killed: nobody would stop it)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
