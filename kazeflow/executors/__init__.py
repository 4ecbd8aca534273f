"""Executors: where a run's stale assets execute while the run's scheduler decides and records.

The scheduler (``kazeflow.running._execute``) decides every asset in the parent and hands the
stale ones to an executor; the executor only calls functions. ``in_process`` tells the
scheduler whether the call may receive Python objects (upstream values, the asset
function itself) or only picklable data (process workers load their upstreams from the
store and write their result there themselves).

- ``"sequential"`` (default): inline, one asset at a time, in plan order;
- ``"threads"``: a thread pool (for assets that release the GIL: I/O, numpy);
- ``"processes"``: worker processes started with ``spawn`` (for CPU-bound Python);
- a ``distributed.Client``, a :class:`DaskExecutor` or a scheduler address
  (``"tcp://host:8786"``): tasks on a Dask cluster;
- an executor object: one of the classes here, or any ``concurrent.futures.Executor``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from kazeflow.errors import KazeflowError

if TYPE_CHECKING:  # imported when a call is submitted: a run with nothing to do spares
    import concurrent.futures  # it, and the logging it imports

T = TypeVar("T")

#: The executor names ``Flow.run(executor=...)`` accepts.
NAMES = ("sequential", "threads", "processes")


@runtime_checkable
class Executor(Protocol):
    """Runs calls for a scheduler: at most ``max_workers`` at a time."""

    #: Whether calls run in this process (and may take and return any Python object).
    in_process: bool
    max_workers: int

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        """Start ``fn(*args)``; its future holds the result or the exception."""
        ...

    def shutdown(self, cancel: bool = False) -> None:
        """Release the workers; with ``cancel``, stop what still runs (if possible)."""
        ...


class SequentialExecutor:
    """Calls each function inline, at once: a run in plan order, one asset at a time."""

    in_process = True
    max_workers = 1

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        """Call ``fn(*args)`` now; exceptions land in the future (Ctrl-C propagates)."""
        import concurrent.futures

        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        """Nothing to release."""


class PoolExecutor:
    """A ``concurrent.futures.Executor`` given by the user, used as it is (not shut down)."""

    def __init__(self, pool: concurrent.futures.Executor, max_workers: int | None) -> None:
        import concurrent.futures

        self.pool = pool
        self.in_process = not isinstance(pool, concurrent.futures.ProcessPoolExecutor)
        self.max_workers = max_workers or getattr(pool, "_max_workers", None) or \
            os.cpu_count() or 1

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        """Hand ``fn(*args)`` to the pool."""
        return self.pool.submit(fn, *args)

    def shutdown(self, cancel: bool = False) -> None:
        """The pool belongs to the caller: only cancel what has not started."""
        if cancel:
            self.pool.shutdown(wait=False, cancel_futures=True)


def resolve(executor: str | Executor | concurrent.futures.Executor | None,
            max_workers: int | None = None) -> tuple[Executor, bool]:
    """The executor for ``Flow.run(executor=..., max_workers=...)``, and whether the run
    owns it (and must shut it down).

    Raises:
        KazeflowError: an unknown name, or ``max_workers`` that is not a whole number >= 1.
    """
    if max_workers is not None and (isinstance(max_workers, bool)
                                    or not isinstance(max_workers, int) or max_workers < 1):
        raise KazeflowError(f"max_workers={max_workers!r}: give a whole number >= 1 "
                            "(or None for the number of CPUs)")
    if executor is None or executor == "sequential":
        return SequentialExecutor(), True
    if executor == "threads":
        from kazeflow.executors._threads import ThreadExecutor

        return ThreadExecutor(max_workers), True
    if executor == "processes":
        from kazeflow.executors._processes import ProcessExecutor

        return ProcessExecutor(max_workers), True
    import concurrent.futures

    if isinstance(executor, concurrent.futures.Executor):
        return PoolExecutor(executor, max_workers), False
    if isinstance(executor, str) and executor.startswith(("tcp://", "tls://")):
        from kazeflow.executors._dask import DaskExecutor

        return DaskExecutor(executor, max_workers), True  # closes the client it made
    if _is_dask_client(executor):
        from kazeflow.executors._dask import DaskExecutor

        return DaskExecutor(executor, max_workers), True  # its client stays the caller's
    if isinstance(executor, Executor) and not isinstance(executor, str):
        return executor, False
    raise KazeflowError(f"executor={executor!r} is not an executor; choose one of "
                        f"{', '.join(map(repr, NAMES))}, a Dask scheduler address "
                        "('tcp://host:8786') or pass an executor object "
                        "(kazeflow.executors.ThreadExecutor, ProcessExecutor, "
                        "DaskExecutor, a distributed.Client or a concurrent.futures "
                        "executor)")


def finished(futures: Collection[concurrent.futures.Future[T]], *, first: bool = False
             ) -> set[concurrent.futures.Future[T]]:
    """Wait for ``futures``: all of them, or with ``first`` until one is done; the done
    ones. (concurrent.futures is imported only here and where futures are made.)"""
    import concurrent.futures

    return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED
                                   if first else concurrent.futures.ALL_COMPLETED).done


def holding(value: T) -> concurrent.futures.Future[T]:
    """A future that is done already, with ``value`` as its result."""
    import concurrent.futures

    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    future.set_result(value)
    return future


def _is_dask_client(executor: object) -> bool:
    """Whether ``executor`` is a ``distributed.Client`` (told without importing Dask)."""
    kind = type(executor)
    return kind.__module__.split(".")[0] == "distributed" and kind.__name__ == "Client"


def __getattr__(name: str) -> Any:  # the pool classes load only when used
    if name == "ThreadExecutor":
        from kazeflow.executors._threads import ThreadExecutor

        return ThreadExecutor
    if name == "ProcessExecutor":
        from kazeflow.executors._processes import ProcessExecutor

        return ProcessExecutor
    if name == "DaskExecutor":
        from kazeflow.executors._dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(name)
