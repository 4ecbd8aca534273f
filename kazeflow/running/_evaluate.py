"""Feeds the freshness decision from the store, for ``run`` and ``status`` alike."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from kazeflow.fingerprint._hashing import cache_key
from kazeflow.results import FRESH, Materialization, RecordKey
from kazeflow.running._freshness import AssetInputs, Decision, decide, stale_anyway
from kazeflow.running._prepare import PreparedAsset
from kazeflow.store.interface import ObjectPresence, Records


class Evaluator:
    """Decides each asset: fresh (and which record to reuse), stale or missing, and why.

    One batched lookup reads the newest record of every planned asset first; most
    decisions need nothing more (see :meth:`evaluate`).

    Args:
        records: the metadata database (:class:`NO_RECORDS` for a store not created yet).
        objects: the object store (asked whether an object is there).
        forced: names that run whatever their records say.
        full_records: read each asset's whole newest record up front (``status``).
        reasons: say what changed when an asset is stale (needs its full newest record);
            without, only that its key changed (a run not logging at debug level).
        file_text: (input name, content hash) → the text of a small input file, for
            diffs in explained reasons.
    """

    def __init__(self, records: Records, objects: ObjectPresence,
                 prepared: Mapping[str, PreparedAsset], forced: Collection[str] = (),
                 full_records: bool = False, reasons: bool = True,
                 file_text: Callable[[str, str], str | None] | None = None) -> None:
        self.records = records
        self.file_text = file_text
        self.prepared = prepared
        self.forced = frozenset(forced)
        self.reasons = reasons or full_records
        #: Each asset's newest successful record: all of it with ``full_records``, else
        #: only its key, and the rest fetched when a decision needs it.
        self._records: dict[str, Materialization] = {}
        self.latest_keys: dict[str, Materialization | RecordKey]
        if full_records:  # a record has every field of its key
            self._records = records.latest(prepared)
            self.latest_keys = dict(self._records)
        else:
            self.latest_keys = dict(records.latest_keys(prepared))
        self._objects = objects
        self._exists: dict[str, bool] = {}
        self._prefetched = False
        #: Data versions this run produced that no object had before: no recorded key
        #: can contain them, so their downstream needs no lookup by key.
        self.new_versions: set[str] = set()
        self._forgotten: set[str] = set()  # names whose newest record is looked up again
        #: The inputs last built for each asset: deciding it, then leasing and recording
        #: it, computes its cache key once.
        self._built: dict[str, AssetInputs] = {}

    def evaluate(self, name: str, versions: Mapping[str, str], explain: bool = False
                 ) -> Decision:
        """The decision for ``name`` given the data versions known so far (an upstream
        not in ``versions`` is stale). The common case, the asset's newest record having
        the key it has now and its object being there, is decided from the records read
        up front; any other takes :meth:`decide`. With ``explain``, code reasons carry a
        diff of the code."""
        item = self.prepared[name]
        upstream = _known(item, versions)
        key = None if upstream is None else cache_key(
            name, item.code.code_hash, item.config_hash, upstream)
        if key is not None and item.asset.cache and name not in self.forced:
            reuse = self.reusable(name, key)
            if reuse is not None:
                return Decision(FRESH, reuse=reuse, cache_key=key)
        return self.decide(self._inputs(name, upstream, key, versions), explain=explain)

    def inputs(self, name: str, versions: Mapping[str, str]) -> AssetInputs:
        """The inputs of ``name`` given the data versions known so far (those built by
        the last decision of ``name``, if its upstream versions are the same)."""
        item = self.prepared[name]
        upstream = _known(item, versions)
        built = self._built.get(name)
        if built is not None and upstream is not None and built.upstream_versions == upstream:
            return built
        key = None if upstream is None else cache_key(
            name, item.code.code_hash, item.config_hash, upstream)
        return self._inputs(name, upstream, key, versions)

    def _inputs(self, name: str, upstream: dict[str, str] | None, key: str | None,
                versions: Mapping[str, str]) -> AssetInputs:
        item = self.prepared[name]
        stale = [] if upstream is not None else [
            d for d in item.asset.deps if d not in versions]
        inputs = self._built[name] = AssetInputs(  # by position: one per asset and run
            name, item.code.code_hash, item.config_hash, item.config_dict, upstream, stale,
            key, item.asset.cache, name in self.forced)
        return inputs

    def runs_anyway(self, name: str) -> bool:
        """Whether ``name`` is not fresh whatever its upstreams' data versions are."""
        return stale_anyway(name in self.forced, self.prepared[name].asset.cache,
                            self.latest_key(name)) is not None

    def reusable(self, name: str, key_now: str) -> Materialization | RecordKey | None:
        """The newest record of ``name`` if its key is ``key_now`` and its object is
        there (no full record needed)."""
        key = self.latest_key(name)
        if key is not None and key.cache_key == key_now and self.object_exists(key):
            return self._records.get(name, key)
        return None

    def latest_key(self, name: str) -> Materialization | RecordKey | None:
        """The key of the newest successful record of ``name``, if it has one."""
        if name in self._forgotten:
            self._forgotten.discard(name)
            self.latest_keys.update(self.records.latest_keys([name]))
        return self.latest_keys.get(name)

    def latest(self, name: str) -> Materialization | None:
        """The newest successful record of ``name``, if it has one."""
        record = self._records.get(name)
        if record is None and (key := self.latest_key(name)) is not None:
            record = self.records.by_id(key.id)
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
        if known is None and not self._prefetched and self._objects.batches_presence:
            self._prefetch()
            known = self._exists.get(record.data_version)
        if known is None:
            known = self._exists[record.data_version] = self._objects.has(
                record.data_version, record.size)
        return known

    def _prefetch(self) -> None:
        """Ask at once whether the objects of every newest record are there."""
        self._prefetched = True
        wanted = {(key.data_version, key.size) for key in self.latest_keys.values()
                  if key.data_version is not None and key.size is not None}
        there = self._objects.present(wanted)
        self._exists.update((data_version, data_version in there)
                            for data_version, _ in wanted)

    def forget(self, data_version: str) -> None:
        """Stat this object again next time (it was found missing or corrupt)."""
        self._exists.pop(data_version, None)

    def decide(self, inputs: AssetInputs, explain: bool = False,
               fresh: bool = False) -> Decision:
        """The full decision for ``inputs``: looks records up by key when the newest
        one cannot say. With ``explain``, code reasons carry a diff of the code; with
        ``fresh``, records another process just committed are seen."""
        name = inputs.asset_name
        last = self.latest(name) if self.reasons else self.latest_key(name)
        key_now = inputs.cache_key if inputs.cache and not inputs.forced else None
        candidates: list[Materialization] = []
        if key_now is not None and (fresh or (last is not None and not any(  # an older one?
                v in self.new_versions for v in (inputs.upstream_versions or {}).values()))):
            # one indexed lookup (≈ 20 µs), however long the history
            candidates = self.records.by_cache_key(key_now)
        return decide(
            inputs, candidates, last, self.object_exists,
            old_code=self.records.code_components if explain else None,
            new_code=self.prepared[inputs.asset_name].code.components,
            file_text=self.file_text if explain else None)


class _NoRecords:
    """The records of a store that does not exist yet: none (nothing is created)."""

    def latest(self, asset_names: Collection[str]) -> dict[str, Materialization]:
        return {}

    def latest_keys(self, asset_names: Collection[str]) -> dict[str, RecordKey]:
        return {}

    def by_id(self, record_id: int) -> Materialization | None:
        return None

    def by_cache_key(self, cache_key: str) -> list[Materialization]:
        return []

    def code_components(self, code_hash: str) -> dict[str, str] | None:
        return None

    def latest_failures(self, asset_names: Collection[str]) -> dict[str, Materialization]:
        return {}

    def has(self, data_version: str, size: int) -> bool:
        return False

    batches_presence = False

    def present(self, objects: Iterable[tuple[str, int]]) -> set[str]:
        return set()


NO_RECORDS = _NoRecords()


def _known(item: PreparedAsset, versions: Mapping[str, str]) -> dict[str, str] | None:
    """The data version of each upstream of ``item`` and the hash of each file it reads;
    None while an upstream's is not known (not fresh)."""
    try:
        upstream = {d: versions[d] for d in item.asset.deps}
    except KeyError:
        return None
    if item.external:
        upstream.update(item.external)
    return upstream
