"""What one run knows as it goes, shared by its scheduling, early starts and recording."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kazeflow.assets import Asset
from kazeflow.running._freshness import AssetInputs
from kazeflow.store.interface import Lock


@dataclass
class RunState:
    """Each planned asset's fate so far (ordered sets of names are dicts to None)."""

    versions: dict[str, str] = field(default_factory=dict)  # known data versions
    values: dict[str, Any] = field(default_factory=dict)  # values in memory
    materialized: dict[str, None] = field(default_factory=dict)
    reused: dict[str, None] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # name → last line of its error
    skipped: dict[str, str] = field(default_factory=dict)  # name → why not run
    errors: dict[str, Exception] = field(default_factory=dict)

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


@dataclass
class Job:
    """An asset handed to the executor.

    Started as usual, it holds its cache key's lease and its inputs from the start.
    Started ``early`` (before an upstream's data version was known), it has neither: its
    lease is claimed by whichever thread learns the last of those versions, and its
    inputs are built when it lands.
    """

    item: Asset
    submitted: float
    early: bool = False
    inputs: AssetInputs | None = None
    lease: Lock | None = None

    def release(self) -> None:
        """Let go of the lease (an early job's is let go by the early starts)."""
        if not self.early and self.lease is not None:
            self.lease.release()
