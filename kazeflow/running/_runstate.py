"""What one run knows as it goes, shared by its scheduling, early starts and recording.

Plain slotted classes, not dataclasses, as the run's other internal records: every
process that runs a flow defines them, and a dataclass compiles its generated methods
when its module loads (≈ 0.7 ms each).
"""

from __future__ import annotations

from typing import Any

from kazeflow.assets import Asset
from kazeflow.running._freshness import AssetInputs
from kazeflow.store.interface import Lock


class RunState:
    """Each planned asset's fate so far (ordered sets of names are dicts to None)."""

    __slots__ = ("versions", "values", "materialized", "reused", "failed", "skipped",
                 "errors")

    def __init__(self) -> None:
        self.versions: dict[str, str] = {}  # known data versions
        self.values: dict[str, Any] = {}  # values in memory
        self.materialized: dict[str, None] = {}
        self.reused: dict[str, None] = {}
        self.failed: dict[str, str] = {}  # name → last line of its error
        self.skipped: dict[str, str] = {}  # name → why not run
        self.errors: dict[str, Exception] = {}

    def blocked_by(self, item: Asset) -> str | None:
        """Why ``item`` cannot run (an upstream failed or was not run), if so."""
        if not (self.failed or self.skipped):
            return None
        for dep in item.deps:
            if dep in self.failed:
                return f"not run: upstream {dep!r} failed"
            if dep in self.skipped:
                return f"not run: upstream {dep!r} was not run"
        return None


class Job:
    """An asset handed to the executor.

    Started as usual, it holds its cache key's lease and its inputs from the start.
    Started ``early`` (before an upstream's data version was known), it has neither: its
    lease is claimed by whichever thread learns the last of those versions, and its
    inputs are built when it lands.
    """

    __slots__ = ("item", "submitted", "early", "inputs", "lease")

    def __init__(self, item: Asset, submitted: float, early: bool = False,
                 inputs: AssetInputs | None = None, lease: Lock | None = None) -> None:
        self.item = item
        self.submitted = submitted
        self.early = early
        self.inputs = inputs
        self.lease = lease

    def release(self) -> None:
        """Let go of the lease (an early job's is let go by the early starts)."""
        if not self.early and self.lease is not None:
            self.lease.release()
