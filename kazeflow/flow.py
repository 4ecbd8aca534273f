"""``Flow``: plan a selection of assets, then run it, check it, and query its history."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kazeflow.assets import Asset, collect_universe
from kazeflow.errors import DefinitionError, KazeflowError, NotFreshError, last_line
from kazeflow.fingerprint._files import is_file_input, shown
from kazeflow.results import (
    FRESH,
    LAST_FAILED,
    AssetStatus,
    Materialization,
    Reason,
    Run,
    RunResult,
    Statuses,
)
from kazeflow.running import _plan
from kazeflow.running._evaluate import NO_RECORDS, Evaluator
from kazeflow.running._execute import ScheduledRun
from kazeflow.running._freshness import untracked_library_notes
from kazeflow.running._gcpause import bookkeeping
from kazeflow.running._prepare import Lookups, PreparedAsset, effective_configs, prepare
from kazeflow.running._tasks import check_not_inside_asset
from kazeflow.store import Store
from kazeflow.store.interface import ObjectPresence, Records


class Flow:
    """A selection of assets and everything upstream of them, bound to a store.

    Args:
        asset_names: the assets to materialize (with all their upstreams); ``None``
            means every registered asset (or every asset in ``assets``).
        assets: asset objects to use in place of (or in addition to) registered ones.
        store: a :class:`Store`, a folder path, or ``None`` for ``$KAZEFLOW_HOME`` or
            ``./.kazeflow``.
        config: asset name → settings: the config that :meth:`run`, :meth:`status`,
            :meth:`load` and the CLI (``kazeflow status flows.py:flow``) use when they are
            given none. Checked here against each asset's schema.
        track_libraries: put the versions of the libraries each asset's code imports
            in its cache key (as ``@asset(track_libraries=True)`` does for one).

    Raises:
        UnknownAssetError: a selected or upstream name that no asset has.
        CycleError: the dependencies loop.
        ConfigError: bad ``config``.

    Example::

        flow = Flow(["processed_data"], config={"processed_data": {"multiplier": 2}})
        flow.run()["processed_data"]  # 30
    """

    def __init__(self, asset_names: Iterable[str | Asset] | str | None = None, *,
                 assets: Iterable[Asset] | None = None,
                 store: Store | str | os.PathLike[str] | None = None,
                 config: Mapping[str, Mapping[str, Any]] | None = None,
                 track_libraries: bool = False) -> None:
        assets = list(assets) if assets is not None else None
        if isinstance(asset_names, (str, Asset)):
            asset_names = [asset_names]
        selection: list[str] | None = None
        if asset_names is not None:
            items = list(asset_names)
            selection = [a.name if isinstance(a, Asset) else a for a in items]
            assets = [*(assets or []), *(a for a in items if isinstance(a, Asset))]
        elif assets is not None:
            selection = [a.name for a in assets]
        with bookkeeping():  # planning thousands of assets allocates much
            self._plan = _plan.plan(collect_universe(assets), selection)
        self.store = Store.coerce(store)
        if config is not None:  # bad config fails here, not at first use
            effective_configs(self._plan, config)
        #: The config used when a call gives none (a copy: later edits of the caller's
        #: mapping change nothing).
        self.config: dict[str, dict[str, Any]] = {
            name: dict(settings) for name, settings in (config or {}).items()}
        self.track_libraries = bool(track_libraries)

    @property
    def assets(self) -> tuple[Asset, ...]:
        """The planned assets in execution order."""
        return tuple(self._plan)

    @property
    def asset_names(self) -> tuple[str, ...]:
        """The planned assets in execution order."""
        return tuple(a.name for a in self._plan)

    def __repr__(self) -> str:
        config = f", config={self.config!r}" if self.config else ""
        return f"Flow({list(self.asset_names)!r}, store={self.store!r}{config})"

    def _repr_html_(self) -> str:
        from kazeflow.ui._html import flow_html  # only in a notebook

        return flow_html(self)

    def run(self, config: Mapping[str, Mapping[str, Any]] | None = None,
            force: bool | Sequence[str] = False, *, executor: Any = "sequential",
            max_workers: int | None = None, pools: Mapping[str, int] | None = None,
            progress: bool | None = None) -> RunResult:
        """Materialize every planned asset that is not fresh; reuse the rest.

        Args:
            config: asset name → settings, checked against each asset's schema before
                anything runs (default: the flow's ``config``).
            force: ``True`` re-executes every planned asset; a list of names re-executes
                those (their downstream only if their data version changes).
            executor: ``"sequential"`` (one asset at a time), ``"threads"``,
                ``"processes"``, or an executor object (``kazeflow.executors``, or a
                ``concurrent.futures`` executor). With a parallel executor an asset starts
                as soon as its upstreams are done; freshness, results and records are the
                same whichever executor runs.
            max_workers: how many assets may run at once (default: the number of CPUs).
            pools: pool name → size: at most that many assets of the pool
                (``@asset(pool=...)``) run at once (default 1 for each pool).
            progress: show the run's progress in a Jupyter notebook, refreshed as it
                goes (default: when running in a notebook's kernel; ``True`` needs
                IPython).

        Returns:
            A :class:`RunResult` mapping asset names to values (reused ones load lazily).

        Raises:
            ConfigError: bad config (nothing runs).
            FlowRunError: some asset failed; ``.result`` holds what succeeded.
            StoreError: the store cannot be opened or written.
            KazeflowError: an unknown executor, or bad ``max_workers`` or ``pools``.

        Example::

            Flow(["report"]).run(executor="processes", max_workers=4, pools={"gpu": 1})
        """
        check_not_inside_asset()
        with bookkeeping():  # a helper's locals are freed before collections resume
            return self._run(config, force, executor, max_workers, pools, progress)

    def _run(self, config: Mapping[str, Mapping[str, Any]] | None,
             force: bool | Sequence[str], executor: Any, max_workers: int | None,
             pools: Mapping[str, int] | None, progress: bool | None) -> RunResult:
        from kazeflow import executors

        forced = self._forced(force)
        pools = _check_pools(pools)
        lookups = Lookups.in_folder(self.store.cache_folder)
        prepared = self._prepare(config, lookups)
        runner, owned = executors.resolve(executor, max_workers)
        run = ScheduledRun(self.store, self._plan, prepared, forced, runner, pools,
                           owns_executor=owned, files=lookups.files)
        if progress is None and "ipykernel" in sys.modules:  # else its module never loads
            from kazeflow.ui._notebook import in_notebook

            progress = in_notebook()
        if not progress:
            return run.execute()
        from kazeflow.ui._notebook import NotebookProgress

        with NotebookProgress(self._plan, run.state):
            return run.execute()

    def status(self, config: Mapping[str, Mapping[str, Any]] | None = None
               ) -> Statuses:
        """Say for each planned asset whether it is fresh, stale or missing, and why
        (``config``: as in :meth:`run`, default the flow's).

        Executes nothing. Reasons carry their facts (``Reason.details``): the code diff,
        the old and new config, the upstream that changed.
        """
        with bookkeeping():  # a helper's locals are freed before collections resume
            return Statuses(self._statuses(config))

    def _statuses(self, config: Mapping[str, Mapping[str, Any]] | None,
                  plan: Sequence[Asset] | None = None) -> dict[str, AssetStatus]:
        """The status of each asset of ``plan`` (default: the flow's)."""
        plan = self._plan if plan is None else plan
        lookups = Lookups.in_folder(self.store.cache_folder)
        prepared = self._prepare(config, lookups, save=False, plan=plan)
        records: Records
        objects: ObjectPresence
        if self.store.exists():
            records, objects = self.store.metadata, self.store.objects
        else:  # nothing to read, and a status creates nothing
            records = objects = NO_RECORDS
        evaluator = Evaluator(records, objects, prepared, full_records=True,
                              file_text=lookups.files.text)
        failures = records.latest_failures(prepared)
        versions: dict[str, str] = {}
        statuses = {}
        for item in plan:
            decision = evaluator.evaluate(item.name, versions, explain=True)
            reasons = decision.reasons
            if decision.state == FRESH and decision.reuse is not None:
                versions[item.name] = decision.reuse.data_version  # type: ignore[assignment]
            elif (failure := failures.get(item.name)) is not None:
                reasons += (_failed_reason(failure),)
            record = decision.reuse if isinstance(decision.reuse, Materialization) \
                else evaluator.latest(item.name)
            if record is not None and not (self.track_libraries or item.track_libraries):
                reasons += untracked_library_notes(record, prepared[item.name].libraries)
            statuses[item.name] = AssetStatus(
                item.name, decision.state, reasons, decision.cache_key, record,
                tuple(shown(name) for name in prepared[item.name].external
                      if is_file_input(name)))
        return statuses

    def history(self, asset_name: str | None = None, limit: int | None = None
                ) -> list[Materialization]:
        """Materialization records (successful and failed), newest first.

        Args:
            asset_name: one asset (any name in the store); ``None`` for every planned one.
            limit: at most this many records.
        """
        if asset_name is not None:
            return self.store.history(asset_name, limit)
        return self.store.metadata.history(list(self.asset_names), limit)

    def runs(self, limit: int | None = None) -> list[Run]:
        """Run records of the store, newest first."""
        return self.store.runs(limit)

    def load(self, asset_name: str, version: str | int | None = None, *,
             config: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
        """Load the value of ``asset_name`` that the flow would produce now, verifying
        its hash first: the materialization its current cache key (its code, ``config``
        or the flow's, its upstreams' data versions) maps to.

        Args:
            version: instead, a past materialization: a data version (or a unique prefix
                of one) or a materialization id (as :meth:`history` gives them).

        Raises:
            NotFreshError: the asset is stale or missing (its ``status`` says why); run
                the flow, or load the newest record by name with ``Store.load``.
            ObjectNotFoundError: no such materialization, or its object is gone.
            IntegrityError: the object's bytes are corrupt (it is quarantined).
        """
        if version is not None:
            return self.store.load(asset_name, version)
        if asset_name not in self.asset_names:
            raise _plan.unknown_asset(asset_name, self.asset_names, "load() names an ")
        with bookkeeping():
            plan = _plan.plan({a.name: a for a in self._plan}, [asset_name])
            status = self._statuses(config, plan)[asset_name]
        if status.state != FRESH or status.last is None or status.last.data_version is None:
            why = "; ".join(map(str, status.reasons)) or status.state
            raise NotFreshError(
                f"asset {asset_name!r} is {status.state} ({why}): no materialization "
                "matches its current code, config and upstreams; run the flow first, or "
                f"load the newest by name with Store.load({asset_name!r})", status=status)
        return self.store.objects.load(status.last.data_version)

    def _prepare(self, config: Mapping[str, Any] | None, lookups: Lookups,
                 save: bool = True, plan: Sequence[Asset] | None = None
                 ) -> dict[str, PreparedAsset]:
        """Check ``config``, fingerprint the plan's code and hash the files it reads,
        reusing what the store's caches know of unchanged files; with ``save`` (a run,
        which creates the store), saving what they learnt.

        Raises:
            ConfigError: bad config (the store is not even opened).
            DefinitionError: an asset reads a path that does not exist.
        """
        config = self.config if config is None else config
        if plan is not None and plan is not self._plan:  # checked for the whole flow
            effective_configs(self._plan, config)
            names = {a.name for a in plan}
            config = {name: settings for name, settings in config.items() if name in names}
        prepared = prepare(self._plan if plan is None else plan, config, lookups,
                           self.track_libraries)
        if save:
            self.store.objects  # noqa: B018 - opens (creates) the store the caches live in
            lookups.save()
        return prepared

    def _forced(self, force: bool | Sequence[str]) -> set[str]:
        if force is True:
            return set(self.asset_names)
        if force is False or force is None:
            return set()
        if isinstance(force, str):
            force = [force]
        if not isinstance(force, Iterable) or not all(isinstance(n, str) for n in force):
            raise DefinitionError(f"force= takes True, False or a list of asset names; got "
                                  f"{force!r}")
        unknown = [n for n in force if n not in self.asset_names]
        if unknown:
            raise _plan.unknown_asset(unknown[0], self.asset_names, "force= names an ")
        return set(force)


def _failed_reason(failure: Materialization) -> Reason:
    """The reason that says an asset's last attempt failed, and with what."""
    error = last_line(failure.error) or "unknown error"
    return Reason(LAST_FAILED, f"its last attempt failed: {error}",
                  {"error": error, "run_id": failure.run_id, "id": failure.id})


def _check_pools(pools: Mapping[str, int] | None) -> dict[str, int]:
    """``pools`` as a dict, each size a whole number >= 1."""
    if pools is None:
        return {}
    if not isinstance(pools, Mapping):
        raise KazeflowError(f"pools={pools!r}: give a mapping of pool name to size, "
                            "e.g. {'gpu': 1}")
    for name, size in pools.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise KazeflowError(f"pools[{name!r}] = {size!r}: a pool size is a whole "
                                "number >= 1")
    return dict(pools)
