"""The ``"threads"`` executor: a thread pool calling the asset functions in this process."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ThreadExecutor:
    """Calls functions on up to ``max_workers`` threads (default: the number of CPUs).

    Suits assets that release the GIL (I/O, numpy, compression); each thread has its own
    recursion guard (a ``ContextVar``), so an asset calling ``Flow.run`` is still refused.
    """

    in_process = True

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.max_workers, thread_name_prefix="kazeflow-asset")

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` on a pool thread."""
        return self._pool.submit(fn, *args)

    def shutdown(self, cancel: bool = False) -> None:
        """Stop taking work; with ``cancel``, do not wait for running calls (threads
        cannot be stopped: they finish in the background, their results unrecorded)."""
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
