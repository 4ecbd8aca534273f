"""Records handed to users: runs, materializations, statuses and run results."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from datetime import datetime


def _datetime(timestamp: float | None) -> datetime | None:
    from datetime import datetime, timezone  # only when asked: not on every run

    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)


@dataclass(frozen=True)
class Materialization:
    """One attempt at materializing an asset (``status`` materialized or failed)."""

    id: int
    run_id: str
    asset_name: str
    cache_key: str
    code_hash: str
    config_hash: str
    config: Mapping[str, Any]
    upstream_versions: Mapping[str, str]
    data_version: str | None
    size: int | None
    started_at: float
    ended_at: float
    duration: float
    status: str
    forced: bool = False
    error: str | None = None
    user_metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Distribution → version of each library the asset's code imports (as installed
    #: when it ran; empty for records made before kazeflow kept them).
    libraries: Mapping[str, str] = field(default_factory=dict)

    @property
    def started(self) -> datetime:
        """``started_at`` as an aware UTC datetime."""
        return _datetime(self.started_at)  # type: ignore[return-value]


class RecordKey(NamedTuple):
    """The part of a materialization record that reusing it needs (a run reads only
    this for assets that turn out fresh)."""

    id: int
    cache_key: str
    data_version: str | None
    size: int | None
    code_hash: str


@dataclass(frozen=True)
class Run:
    """One call of ``Flow.run``; ``status`` is running, succeeded, failed or interrupted."""

    run_id: str
    status: str
    started_at: float
    ended_at: float | None
    pid: int | None
    hostname: str | None
    selection: tuple[str, ...]
    n_materialized: int
    n_reused: int
    n_failed: int
    error: str | None = None

    @property
    def started(self) -> datetime:
        """``started_at`` as an aware UTC datetime."""
        return _datetime(self.started_at)  # type: ignore[return-value]


@dataclass(frozen=True)
class Reason:
    """Why an asset is not fresh: a ``kind``, a human message and the facts as data.

    Kinds: ``never_materialized``, ``code_changed`` (details ``old_code_hash``,
    ``new_code_hash``, ``changed`` components, unified ``diff``), ``config_changed``
    (``old_config``, ``new_config``), ``upstream_changed`` (``upstream``,
    ``old_data_version``, ``new_data_version``), ``upstream_stale`` (``upstream``),
    ``upstreams_changed``, ``object_missing`` (``data_version``), ``cache_disabled``,
    ``forced``, ``key_changed`` (only the cache key is known to differ: in a run that
    does not log at debug level, or after a change of kazeflow's key format).
    """

    kind: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


#: The states of an :class:`AssetStatus`.
FRESH, STALE, MISSING = "fresh", "stale", "missing"
#: The kind of the reason that says an asset's last attempt failed.
LAST_FAILED = "last_failed"


@dataclass(frozen=True, slots=True)
class AssetStatus:
    """Whether an asset is ``fresh``, ``stale`` or ``missing``, and why."""

    asset_name: str
    state: str
    reasons: tuple[Reason, ...] = ()
    cache_key: str | None = None
    last: Materialization | None = None
    reads: tuple[str, ...] = ()  # the input files it reads now (``@asset(reads=...)``)

    @property
    def fresh(self) -> bool:
        return self.state == FRESH

    @property
    def last_attempt_failed(self) -> bool:
        """Whether the asset's newest attempt failed (a ``last_failed`` reason)."""
        return any(r.kind == LAST_FAILED for r in self.reasons)


class Statuses(dict[str, AssetStatus]):
    """What ``Flow.status()`` returns: asset name → :class:`AssetStatus`, a table in
    Jupyter."""

    def _repr_html_(self) -> str:
        from kazeflow.ui._html import status_html  # only in a notebook

        return status_html(self)


class RunResult(Mapping[str, Any]):
    """Asset name → value for every planned asset that has one after the run.

    Values of reused assets are loaded (and verified) only when first read; one whose object
    turns out corrupt or missing then is materialized again, with a warning. Until they all
    are, or the result is garbage-collected, gc keeps their objects (``on_release`` is
    called then).

    Args:
        stored: asset name → data version, for every asset with a value; those not in
            ``values`` are loaded by ``load(asset_name, data_version)`` when first read.
    """

    def __init__(self, run_id: str, stored: Mapping[str, str],
                 load: Callable[[str, str], Any],
                 values: Mapping[str, Any], *, materialized: tuple[str, ...],
                 reused: tuple[str, ...], failed: Mapping[str, str],
                 skipped: Mapping[str, str], duration: float,
                 order: tuple[str, ...] | None = None,
                 on_release: Callable[[], None] | None = None) -> None:
        self.run_id = run_id
        self.materialized = materialized
        self.reused = reused
        self.failed = dict(failed)
        self.skipped = dict(skipped)
        self.duration = duration
        self._load = load
        self._stored = {n: v for n, v in stored.items() if n not in values}  # load lazily
        self._values = dict(values)
        have = {*materialized, *reused}
        self._order = [n for n in order or (*materialized, *reused) if n in have]
        self._release = weakref.finalize(self, on_release) if on_release else None
        if not self._stored:
            self._release_pins()

    def _release_pins(self) -> None:
        if self._release is not None:
            self._release()

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._stored:
                why = self.failed.get(name) or self.skipped.get(name)
                raise KeyError(f"{name!r} has no value in this run" + (f": {why}" if why
                                                                         else ""))
            self._values[name] = self._load(name, self._stored[name])
            del self._stored[name]
            if not self._stored:
                self._release_pins()
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._stored

    def summary(self) -> str:
        """``"1 materialized, 2 reused, 0 failed in 0.01s"``."""
        text = (f"{len(self.materialized)} materialized, {len(self.reused)} reused, "
                f"{len(self.failed)} failed")
        if self.skipped:
            text += f", {len(self.skipped)} not run"
        return f"{text} in {self.duration:.2f}s"

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def _repr_html_(self) -> str:
        from kazeflow.ui._html import run_result_html  # only in a notebook

        return run_result_html(self)
