"""Early starts: a downstream that runs whatever its upstreams' data versions turn out to
be (forced, not cached, never materialized) starts while an upstream's object is still
being hashed and fsynced.

Its cache key is not known then, so neither is its lease. The thread that learns the last
of its upstream data versions (the batch, as an upstream's object is finished, before
that upstream's row commits) takes the lease at once, without waiting: no other run can
learn the key before it is leased. A lease another run holds already is waited for when
the asset lands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from kazeflow.assets import Asset
from kazeflow.running._evaluate import Evaluator
from kazeflow.running._runstate import Job
from kazeflow.store.interface import Lock


class EarlyStarts:
    """The jobs of a run that started early and have not landed, with their claims.

    Args:
        lease: a cache key → its lease (not yet acquired).
        known_version: an asset name → its data version, if known yet (noted or landing).
    """

    def __init__(self, evaluator: Evaluator, lease: Callable[[str], Lock],
                 known_version: Callable[[str], str | None]) -> None:
        self.evaluator = evaluator
        self._lease = lease
        self._known_version = known_version
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()  # the batch's flushing thread claims too

    def __contains__(self, name: str) -> bool:
        return name in self._jobs

    def start(self, item: Asset, landing: Sequence[str]) -> Job | None:
        """Register ``item`` to start early, unless the data versions of its ``landing``
        upstreams all became known meanwhile (then their rows may be committed and
        ``item``'s key known to other runs: it must be decided as usual, None)."""
        with self._lock:
            if all(self._known_version(d) is not None for d in landing):
                return None
            job = self._jobs[item.name] = Job(item, time.time(), early=True)
            return job

    def claim(self, upstream: str) -> None:
        """Take, without waiting, the lease of each early job whose upstream data
        versions are all known now that ``upstream``'s is."""
        with self._lock:
            for job in self._jobs.values():
                if job.lease is not None or upstream not in job.item.deps:
                    continue
                versions = self._versions(job.item.deps)
                if versions is not None:
                    key = self.evaluator.inputs(job.item.name, versions).cache_key
                    assert key is not None
                    lease = self._lease(key)
                    if lease.acquire(blocking=False):
                        job.lease = lease

    def land(self, name: str) -> Lock | None:
        """``name`` landed: no longer early; the lease claimed for it, if any."""
        with self._lock:
            return self._jobs.pop(name).lease

    def forget(self, name: str) -> None:
        """``name`` will not land: let go of its claimed lease."""
        lease = self.land(name)
        if lease is not None:
            lease.release()

    def forget_all(self) -> None:
        """The run stopped: none will land."""
        for name in list(self._jobs):
            self.forget(name)

    def _versions(self, names: Sequence[str]) -> Mapping[str, str] | None:
        """The data version of each of ``names``; None if one is not known yet."""
        versions = {}
        for name in names:
            version = self._known_version(name)
            if version is None:
                return None
            versions[name] = version
        return versions
