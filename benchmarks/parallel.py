"""Parallel executors: speedup on CPU-bound assets and per-asset overhead.

Run from a checkout::

    python benchmarks/parallel.py            # 8 x ~0.5 s assets + 1 downstream
    python benchmarks/parallel.py --seconds 0.1 --tiny 20   # a quick look
    python benchmarks/parallel.py --dask     # also a Dask LocalCluster (kazeflow[dask])

Workload ``wide``: 8 independent CPU-bound assets (pure Python, ≈ ``--seconds`` each)
and one downstream that sums them, run cold (a new store) with ``executor="sequential"``
and with ``executor="processes"`` (``max_workers`` = the CPUs); prints both times and the
speedup (on 2 cores, close to 2x is the target); with ``--dask`` also with a Dask
``LocalCluster`` of ``--workers`` single-threaded worker processes, started before the
timing (as a cluster would be). Workload ``tiny``: ``--tiny`` trivial
independent assets run cold by each executor; the time above calling the functions
directly, per asset, is each executor's bookkeeping overhead (deciding, pickling,
storing, recording and, for processes, sending work to workers and starting them);
then the time to start one worker process, and the processes overhead once the
workers run already (a ``ProcessExecutor`` object passed to ``Flow.run``).
This is a benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kazeflow import Flow, Store, asset
from kazeflow.executors import ProcessExecutor


def burn(n: int) -> int:
    """CPU-bound pure Python work (holds the GIL)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(seconds: float) -> int:
    """The ``n`` for which ``burn(n)`` takes about ``seconds``."""
    n = 200_000
    while True:
        started = time.perf_counter()
        burn(n)
        took = time.perf_counter() - started
        if took > 0.05:
            return int(n * seconds / took)
        n *= 4


def wide_flow(n: int, width: int = 8) -> list:
    """``width`` CPU-bound leaves and one downstream summing them."""
    def leaf(i: int):
        def fn():
            return burn(n) + i
        return asset(name=f"cpu{i}", code_version="1")(fn)

    leaves = [leaf(i) for i in range(width)]

    def total(**values: int) -> int:
        return sum(values.values())

    total.__signature__ = _signature([a.name for a in leaves])  # type: ignore[attr-defined]
    return [*leaves, asset(name="total", deps=leaves, code_version="1")(total)]


def tiny_flow(count: int) -> list:
    """``count`` independent trivial assets."""
    def one(i: int):
        def fn():
            return i
        return asset(name=f"tiny{i}", code_version="1")(fn)

    return [one(i) for i in range(count)]


def _signature(names: list[str]):
    import inspect

    return inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                              for n in names])


def timed_run(assets: list, workdir: Path, executor: Any, workers: int) -> float:
    """Seconds for one cold run of ``assets`` in a new store."""
    flow = Flow(assets=assets, store=Store(workdir / f"run-{time.monotonic_ns()}"))
    flow.store.metadata  # noqa: B018 - open (and migrate) the store outside the timing
    started = time.perf_counter()
    result = flow.run(executor=executor, max_workers=workers)
    took = time.perf_counter() - started
    assert len(result.materialized) == len(assets), result.summary()
    return took


def direct(assets: list) -> float:
    """Seconds to call the asset functions one after the other, without kazeflow."""
    started = time.perf_counter()
    values = {}
    for item in assets:
        values[item.name] = item.fn(**{d: values[d] for d in item.inputs})
    return time.perf_counter() - started


@contextlib.contextmanager
def dask_client(workers: int) -> Iterator[Any]:
    """A Dask client of a ``LocalCluster`` of ``workers`` one-thread worker processes."""
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="work per CPU asset")
    parser.add_argument("--tiny", type=int, default=40, help="trivial assets for overhead")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="wide runs (best counts)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--dask", action="store_true",
                        help="also run the wide workload on a Dask LocalCluster")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kazeflow-parallel-"))

    n = calibrate(args.seconds)
    wide = wide_flow(n)
    executors: dict[str, Any] = {"sequential": "sequential", "processes": "processes"}
    with contextlib.ExitStack() as cluster:
        if args.dask:
            executors["dask"] = cluster.enter_context(dask_client(args.workers))
        times: dict[str, list[float]] = {"direct": [], **{ex: [] for ex in executors}}
        for _ in range(args.repeat):  # interleaved: a busy neighbour slows all alike
            times["direct"].append(direct(wide))
            for name, ex in executors.items():
                times[name].append(timed_run(wide, workdir, ex, args.workers))
    best = {k: min(v) for k, v in times.items()}
    print(f"{os.cpu_count()} CPUs, max_workers={args.workers}; wide: 8 assets of "
          f"≈{best['direct'] / 8:.2f} s + 1 downstream; best of {args.repeat}")
    print(f"  wide, functions called directly  {best['direct']:6.2f} s")
    for ex in executors:
        print(f"  wide cold run, {ex:<10}        {best[ex]:6.2f} s   (all: "
              f"{', '.join(f'{t:.2f}' for t in times[ex])})")
    for ex in executors.keys() - {"sequential"}:
        print(f"  speedup {ex} / sequential: {best['sequential'] / best[ex]:.2f}x"
              f" (at most {min(args.workers, 8)}x on {args.workers} workers)")

    tiny = tiny_flow(args.tiny)
    base = direct(tiny)
    print(f"tiny: {args.tiny} trivial independent assets, called directly in "
          f"{base * 1e3:.2f} ms; overhead per asset of a cold run")
    for ex in ("sequential", "threads", "processes"):
        took = timed_run(tiny, workdir, ex, args.workers)
        print(f"  {ex:<22}  {took:6.3f} s   {(took - base) / args.tiny * 1e3:7.2f} ms")
    pool = ProcessExecutor(args.workers)  # given as an object: the run does not stop it
    try:
        started = time.perf_counter()
        pool.submit(int).result()
        print(f"  starting a worker process: {time.perf_counter() - started:.3f} s")
        timed_run(tiny, workdir, pool, args.workers)  # every worker started
        took = timed_run(tiny, workdir, pool, args.workers)
        print(f"  {'processes, warm workers':<22}  {took:6.3f} s   "
              f"{(took - base) / args.tiny * 1e3:7.2f} ms")
    finally:
        pool.shutdown()


if __name__ == "__main__":
    main()
