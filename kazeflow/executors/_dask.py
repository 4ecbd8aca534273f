"""The Dask executor: stale assets run as tasks of a Dask ``distributed`` cluster.

Like the ``"processes"`` executor it is not in-process: a task gets the asset's
cloudpickled function and config and the data versions of its upstreams, loads them from
the store's objects location (which every worker must reach: a shared folder or a
bucket), writes its result there and returns only its data version. The calling process
decides freshness and records metadata, so results, history and status are the same
whichever executor ran. A worker that dies running a task fails that asset alone
(:class:`~kazeflow.errors.WorkerDiedError`), once Dask has given up on it: the scheduler
tries such a task on other workers up to its ``distributed.scheduler.allowed-failures``
(3 by default) times.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

from kazeflow.errors import KazeflowError, WorkerDiedError

T = TypeVar("T")

_TASK_NUMBERS = itertools.count()


class DaskExecutor:
    """Runs calls as tasks on a Dask cluster.

    Args:
        client: a ``distributed.Client`` (used as it is, never closed here) or the
            address of a scheduler (``"tcp://10.0.0.5:8786"``: a client is made, and
            closed by :meth:`shutdown`).
        max_workers: at most this many assets at once (default: the cluster's threads).
        timeout: seconds to wait for the scheduler at an address.

    Raises:
        KazeflowError: distributed is not installed, or the scheduler cannot be reached.

    Example::

        from distributed import Client
        flow.run(executor=Client("tcp://scheduler:8786"))
    """

    in_process = False
    #: Workers may be other machines: each makes its objects durable itself (the
    #: caller's one ``syncfs`` per batch reaches only its own disks).
    same_host = False

    def __init__(self, client: Any, max_workers: int | None = None, *,
                 timeout: float = 30) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise KazeflowError(f'the Dask executor needs distributed ({exc}): pip install '
                                '"kazeflow[dask]"') from exc
        self._owns_client = isinstance(client, str)
        if self._owns_client:
            try:
                client = distributed.Client(client, timeout=timeout)
            except OSError as exc:
                raise KazeflowError(f"cannot reach the Dask scheduler at {client}: {exc}; "
                                    "check the address and that the scheduler runs") from exc
        self.client = client
        self._killed = distributed.KilledWorker
        self._futures: set[Any] = set()
        threads = sum(info.get("nthreads", 1) for info in
                      client.scheduler_info().get("workers", {}).values())
        self.max_workers = max_workers or threads or 1

    def submit(self, fn: Callable[..., T], /, *args: Any) -> concurrent.futures.Future[T]:
        """Send ``fn(*args)`` to the cluster as one task (never retried elsewhere)."""
        result: concurrent.futures.Future[T] = concurrent.futures.Future()
        name = args[1] if len(args) > 1 and isinstance(args[1], str) else fn.__name__
        task = self.client.submit(fn, *args, pure=False, retries=0,
                                  key=f"kazeflow-{name}-{next(_TASK_NUMBERS)}")
        self._futures.add(task)
        task.add_done_callback(lambda done: self._finished(done, result))
        return result

    def _finished(self, task: Any, result: concurrent.futures.Future[Any]) -> None:
        self._futures.discard(task)
        try:
            result.set_result(task.result())
        except self._killed as exc:
            result.set_exception(WorkerDiedError(
                f"the Dask worker running it died ({exc})", exitcode=None))
        except BaseException as exc:
            result.set_exception(exc)

    def shutdown(self, cancel: bool = False) -> None:
        """With ``cancel``, cancel the tasks not finished; close a client made here."""
        if cancel and self._futures:
            self.client.cancel(list(self._futures))
        if self._owns_client:
            self.client.close()
