"""Feeds the freshness decision from the store, for ``run`` and ``status`` alike."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from kazeflow._hashing import cache_key
from kazeflow._prepare import PreparedAsset
from kazeflow.freshness import FRESH, AssetInputs, Decision, decide
from kazeflow.results import Materialization, RecordKey
from kazeflow.store import Store


class Evaluator:
    """Computes cache keys and decisions, with one batched lookup of the latest records."""

    def __init__(self, store: Store, prepared: Mapping[str, PreparedAsset],
                 forced: Collection[str] = (), full_records: bool = False,
                 reasons: bool = True) -> None:
        self.store = store
        self.prepared = prepared
        self.forced = frozenset(forced)
        #: Whether a stale decision says what changed, which takes the asset's full
        #: newest record (one lookup each); without, its reason is only that the key
        #: changed (a run that does not log at debug level needs no more).
        self.reasons = reasons or full_records
        #: Each asset's newest successful record: all of it with ``full_records`` (for
        #: ``status``), else only its key, and the rest fetched when a decision needs it.
        self._records: dict[str, Materialization] = {}
        self.latest_keys: dict[str, Materialization | RecordKey]
        if full_records:  # a record has every field of its key
            self._records = store.metadata.latest(prepared)
            self.latest_keys = dict(self._records)
        else:
            self.latest_keys = dict(store.metadata.latest_keys(prepared))
        self._objects = store.objects
        self._exists: dict[str, bool] = {}
        #: Data versions this run produced that no object had before: no recorded key
        #: can contain them, so their downstream needs no lookup by key.
        self.new_versions: set[str] = set()
        self._forgotten: set[str] = set()  # names whose newest record is looked up again

    def inputs(self, name: str, versions: Mapping[str, str]) -> AssetInputs:
        """The inputs of ``name`` given the data versions known so far."""
        item = self.prepared[name]
        deps = item.asset.deps
        upstream = _known(deps, versions)
        stale = [] if upstream is not None else [d for d in deps if d not in versions]
        key = None if upstream is None else cache_key(
            name, item.code.code_hash, item.config_hash, upstream)
        return AssetInputs(  # by position: one per planned asset and run
            name, item.code.code_hash, item.config_hash, item.config_dict, upstream, stale,
            key, item.asset.cache, name in self.forced)

    def runs_anyway(self, name: str) -> bool:
        """Whether ``name`` is stale whatever its upstreams' data versions are: forced,
        not cached, or never materialized (no key of its can match)."""
        return (name in self.forced or not self.prepared[name].asset.cache
                or (name not in self.latest_keys and name not in self._forgotten))

    def reusable_as_is(self, name: str, versions: Mapping[str, str]
                       ) -> Materialization | RecordKey | None:
        """The newest record of ``name`` if it can be reused as it is: the cache key it
        has now (every upstream's version known) is the record's and its object is
        there. The common case of a run, decided without building its inputs; None
        means :meth:`inputs` and :meth:`decide` must say."""
        item = self.prepared[name]
        upstream = _known(item.asset.deps, versions)
        if upstream is None or not item.asset.cache or name in self.forced:
            return None
        return self._reusable(name, cache_key(
            name, item.code.code_hash, item.config_hash, upstream))

    def _reusable(self, name: str, key_now: str) -> Materialization | RecordKey | None:
        """The newest record of ``name`` if its key is ``key_now`` and its object is
        there (no full record needed)."""
        key = self.latest_keys.get(name)
        if key is not None and key.cache_key == key_now and self.object_exists(key):
            return self._records.get(name, key)
        return None

    def latest(self, name: str) -> Materialization | None:
        """The newest successful record of ``name``, if it has one."""
        record = self._records.get(name)
        if record is None and name in self.latest_keys:
            record = self.store.metadata.by_id(self.latest_keys[name].id)
            if record is not None:
                self._records[name] = record
        return record

    def forget_latest(self, name: str) -> None:
        """Look ``name``'s newest record up again (a run may have made a newer one)."""
        self.latest_keys.pop(name, None)
        self._records.pop(name, None)
        self._forgotten.add(name)

    def object_exists(self, record: Materialization | RecordKey) -> bool:
        """Whether ``record``'s object is in the store (one stat per object and run)."""
        if record.data_version is None or record.size is None:
            return False
        known = self._exists.get(record.data_version)
        if known is None:
            known = self._exists[record.data_version] = self._objects.has(
                record.data_version, record.size)
        return known

    def forget(self, data_version: str) -> None:
        """Stat this object again next time (it was found missing or corrupt)."""
        self._exists.pop(data_version, None)

    def decide(self, inputs: AssetInputs, explain: bool = False,
               fresh: bool = False) -> Decision:
        """Decide ``inputs``; with ``explain``, code reasons carry a diff of the code;
        with ``fresh``, records another process just committed are seen."""
        name = inputs.asset_name
        key_now = inputs.cache_key if inputs.cache and not inputs.forced else None
        if key_now is not None and (reuse := self._reusable(name, key_now)) is not None:
            return Decision(FRESH, reuse=reuse)
        last = self.latest(name) if self.reasons else self.latest_keys.get(name)
        candidates: list[Materialization] = []
        if key_now is not None and (fresh or (last is not None and not any(  # an older one?
                v in self.new_versions for v in (inputs.upstream_versions or {}).values()))):
            # one indexed lookup (≈ 20 µs), however long the history
            candidates = self.store.metadata.by_cache_key(key_now)
        # never materialized: the key holds the asset's name, so nothing matches
        return decide(
            inputs, candidates, last, self.object_exists,
            old_code=self.store.metadata.code_components if explain else None,
            new_code=self.prepared[inputs.asset_name].code.components)


def _known(deps: Sequence[str], versions: Mapping[str, str]) -> dict[str, str] | None:
    """The data version of each of ``deps``; None while one is not known (not fresh)."""
    try:
        return {d: versions[d] for d in deps}
    except KeyError:
        return None
