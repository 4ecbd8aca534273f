"""Which planned assets may start now: all their upstreams are done and their pool (if
any) has room. A run's scheduler takes them in plan order.

One asset at a time (the sequential executor, or a single worker), that is simply the
plan: it is in topological order, so every upstream of the next asset is done by then,
and a pool never holds more than the one asset running.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Mapping, Sequence

from kazeflow.assets import Asset


class ReadyQueue:
    """Assets whose upstreams are all done, taken in plan order within pool limits.

    Args:
        pools: pool name → how many of its assets may run at once (default 1 each).
    """

    def __init__(self, plan: Sequence[Asset], pools: Mapping[str, int]) -> None:
        self.plan = plan
        self.index = {a.name: i for i, a in enumerate(plan)}  # name → plan position
        self._pools = pools
        self._waiting = {a.name: len(set(a.deps)) for a in plan}
        self._children: dict[str, list[str]] = collections.defaultdict(list)
        for a in plan:
            for dep in set(a.deps):
                self._children[dep].append(a.name)
        self._ready = [i for i, a in enumerate(plan) if not self._waiting[a.name]]
        heapq.heapify(self._ready)
        self._running: collections.Counter[str] = collections.Counter()  # per pool

    def __bool__(self) -> bool:
        return bool(self._ready)

    def take(self) -> Asset | None:
        """The first ready asset in plan order whose pool has room; None if none."""
        full = []
        found = None
        while self._ready:
            index = heapq.heappop(self._ready)
            item = self.plan[index]
            if item.pool is not None and \
                    self._running[item.pool] >= self._pools.get(item.pool, 1):
                full.append(index)
                continue
            found = item
            break
        for index in full:
            heapq.heappush(self._ready, index)
        return found

    def started(self, item: Asset) -> None:
        """``item`` executes now: it counts against its pool until :meth:`stopped`."""
        if item.pool is not None:
            self._running[item.pool] += 1

    def stopped(self, item: Asset) -> None:
        """``item`` no longer executes: its pool has room for another."""
        if item.pool is not None:
            self._running[item.pool] -= 1

    def done(self, name: str) -> None:
        """``name`` is decided, recorded, failed or skipped: release its downstream."""
        for child in self._children.get(name, ()):
            self._waiting[child] -= 1
            if not self._waiting[child]:
                heapq.heappush(self._ready, self.index[child])


class PlanOrder:
    """The plan, in order: the ready queue of a run that executes one asset at a time
    (the same interface as :class:`ReadyQueue`, without its bookkeeping)."""

    def __init__(self, plan: Sequence[Asset]) -> None:
        self.plan = plan
        self.index = {a.name: i for i, a in enumerate(plan)}  # name → plan position
        self._next = 0

    def __bool__(self) -> bool:
        return self._next < len(self.plan)

    def take(self) -> Asset | None:
        """The next asset of the plan; None at its end."""
        if self._next == len(self.plan):
            return None
        self._next += 1
        return self.plan[self._next - 1]

    def started(self, item: Asset) -> None:
        """Nothing to count: one asset at a time never fills a pool."""

    def stopped(self, item: Asset) -> None:
        """Nothing to count."""

    def done(self, name: str) -> None:
        """Nothing to release: the next asset's upstreams are all earlier in the plan."""


def ready_queue(plan: Sequence[Asset], pools: Mapping[str, int],
                max_workers: int) -> ReadyQueue | PlanOrder:
    """The ready queue for a run executing at most ``max_workers`` assets at once."""
    return PlanOrder(plan) if max_workers == 1 else ReadyQueue(plan, pools)
