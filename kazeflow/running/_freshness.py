"""The one decision shared by ``Flow.run`` and ``Flow.status``: fresh, stale or missing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from kazeflow.fingerprint._files import FILE_PREFIX, LIBRARY_PREFIX
from kazeflow.results import FRESH, MISSING, STALE, Materialization, Reason, RecordKey

# Decision and AssetInputs are made once per planned asset by every run and status
# check, and every process defines them: plain slotted classes (a slotted dataclass is
# built twice when its module loads; as dataclasses this module took 1.4 ms to import,
# now 0.5 ms). Read-only by convention.

class Decision:
    """The state of one asset, why, and the materialization to reuse when fresh."""

    __slots__ = ("state", "reasons", "reuse", "cache_key")

    def __init__(self, state: str, reasons: tuple[Reason, ...] = (),
                 reuse: Materialization | RecordKey | None = None,
                 cache_key: str | None = None) -> None:
        self.state = state
        self.reasons = reasons
        self.reuse = reuse
        #: The asset's key now; None while an upstream is stale.
        self.cache_key = cache_key


class AssetInputs:
    """What the cache key of one asset is computed from, as of now."""

    __slots__ = ("asset_name", "code_hash", "config_hash", "config", "upstream_versions",
                 "stale_upstreams", "cache_key", "cache", "forced")

    def __init__(self, asset_name: str, code_hash: str, config_hash: str,
                 config: Mapping[str, Any], upstream_versions: Mapping[str, str] | None,
                 stale_upstreams: Sequence[str] = (), cache_key: str | None = None,
                 cache: bool = True, forced: bool = False) -> None:
        self.asset_name = asset_name
        self.code_hash = code_hash
        self.config_hash = config_hash
        self.config = config
        #: None: some upstream is not fresh yet.
        self.upstream_versions = upstream_versions
        self.stale_upstreams = stale_upstreams
        self.cache_key = cache_key
        self.cache = cache
        self.forced = forced


def stale_anyway(forced: bool, cache: bool,
                 last: Materialization | RecordKey | None) -> Decision | None:
    """The decision for an asset that is not fresh whatever its upstreams' data versions
    are: forced, not cached, or never materialized (no key of its can match: a cache key
    holds the asset's name). None when its records must say."""
    if forced:
        return Decision(STALE, (Reason("forced", "forced to run"),))
    if last is None:
        return Decision(MISSING, (Reason("never_materialized", "never materialized"),))
    if not cache:
        return Decision(STALE, (Reason("cache_disabled", "cache=False: always runs"),))
    return None


def decide(inputs: AssetInputs, candidates: Sequence[Materialization],
           last: Materialization | RecordKey | None,
           object_exists: Callable[[Materialization], bool],
           old_code: Callable[[str], Mapping[str, str] | None] | None = None,
           new_code: Mapping[str, str] | None = None,
           file_text: Callable[[str, str], str | None] | None = None) -> Decision:
    """Decide whether ``inputs`` can reuse one of ``candidates`` (same cache key).

    Args:
        inputs: the asset's current code, config and upstream data versions.
        candidates: successful materializations with the same cache key, newest first.
        last: the asset's newest successful materialization, whatever its key; only its
            key when the reasons need not say what changed.
        object_exists: whether a materialization's object is in the store (a stat).
        old_code, new_code: normalised code components, to put a diff in code reasons
            (``old_code`` also gives the recorded text of small input files by hash).
        file_text: (input name, content hash) → the text of a small input file now.
    """
    explain = _Explain(old_code, new_code, file_text)
    decision = _decide(inputs, candidates, last, object_exists, explain)
    decision.cache_key = inputs.cache_key
    return decision


def _decide(inputs: AssetInputs, candidates: Sequence[Materialization],
            last: Materialization | RecordKey | None,
            object_exists: Callable[[Materialization], bool], explain: _Explain) -> Decision:
    if inputs.stale_upstreams and last is not None:  # else: never materialized
        reasons = [Reason("upstream_stale", f"upstream {u!r} is stale", {"upstream": u})
                   for u in inputs.stale_upstreams]
        return Decision(STALE, tuple(reasons) + _differences(inputs, last, explain))
    anyway = stale_anyway(inputs.forced, inputs.cache, last)
    if anyway is not None:
        return anyway
    for candidate in candidates:
        if object_exists(candidate):
            return Decision(FRESH, reuse=candidate)
    if candidates:
        dv = candidates[0].data_version
        return Decision(MISSING, (Reason("object_missing", "stored object missing or corrupt",
                                         {"data_version": dv}),))
    differences = _differences(inputs, last, explain) or (
        Reason("key_changed", "cache key changed (kazeflow's key format changed)"),)
    return Decision(STALE, differences)


class _Explain(NamedTuple):
    """What reasons may quote: old and new code components, old and new input texts."""

    old_code: Callable[[str], Mapping[str, str] | None] | None
    new_code: Mapping[str, str] | None
    file_text: Callable[[str, str], str | None] | None


def _differences(inputs: AssetInputs, last: Materialization | RecordKey | None,
                 explain: _Explain) -> tuple[Reason, ...]:
    """Reasons naming what differs between ``inputs`` and the ``last`` materialization
    (only that its key differs when ``last`` is no full record)."""
    if last is None:
        return ()
    if isinstance(last, RecordKey):
        return (Reason("key_changed", "code, config or upstream data changed"),)
    reasons = []
    if last.code_hash != inputs.code_hash:
        details: dict[str, Any] = {"old_code_hash": last.code_hash,
                                   "new_code_hash": inputs.code_hash}
        old = explain.old_code(last.code_hash) if explain.old_code else None
        if old is not None and explain.new_code is not None:
            details.update(code_diff(old, explain.new_code))
        reasons.append(Reason("code_changed", "code changed", details))
    if last.config_hash != inputs.config_hash:
        reasons.append(Reason("config_changed", "config changed", {
            "old_config": dict(last.config), "new_config": dict(inputs.config)}))
    if inputs.upstream_versions is not None:
        reasons.extend(_upstream_differences(last.upstream_versions,
                                             inputs.upstream_versions, explain))
    return tuple(reasons)


def _upstream_differences(old: Mapping[str, str], new: Mapping[str, str],
                          explain: _Explain) -> list[Reason]:
    """Upstream assets and input files that changed, came or went."""
    reasons = []
    old_assets = {n for n in old if not n.startswith((FILE_PREFIX, LIBRARY_PREFIX))}
    new_assets = {n for n in new if not n.startswith((FILE_PREFIX, LIBRARY_PREFIX))}
    if old_assets != new_assets:
        reasons.append(Reason("upstreams_changed", "upstream assets changed", {
            "old": sorted(old_assets), "new": sorted(new_assets)}))
    for name in sorted(set(old) | set(new)):
        if name.startswith(LIBRARY_PREFIX):
            reasons.extend(_library_difference(name[len(LIBRARY_PREFIX):], old.get(name),
                                               new.get(name)))
        elif name.startswith(FILE_PREFIX):
            path = name[len(FILE_PREFIX):]
            if name not in old:
                reasons.append(Reason("input_added", f"input file {path!r} is new",
                                      {"path": path, "new_hash": new[name]}))
            elif name not in new:
                reasons.append(Reason("input_removed", f"input file {path!r} is gone",
                                      {"path": path, "old_hash": old[name]}))
            elif old[name] != new[name]:
                reasons.append(Reason("input_changed", f"input file {path!r} changed",
                                      _file_details(name, old[name], new[name], explain)))
        elif name in old and name in new and old[name] != new[name]:
            reasons.append(Reason("upstream_changed", f"upstream {name!r} changed", {
                "upstream": name, "old_data_version": old[name],
                "new_data_version": new[name]}))
    return reasons


def _library_difference(library: str, old: str | None, new: str | None,
                        untracked: bool = False) -> list[Reason]:
    """The reason a library's version gives, if it changed (``untracked``: a note on an
    asset whose key does not hold it)."""
    details = {"library": library, "old_version": old, "new_version": new}
    if old == new:
        return []
    if old is None:
        kind, text = "library_added", f"library {library!r} {new} is imported"
    elif new is None:
        kind, text = "library_removed", f"library {library!r} is no longer imported"
    else:
        kind, text = "library_changed", f"library {library!r} {old} -> {new}"
    if untracked:
        kind += "_untracked"
        text += " since it ran (not in its key: track_libraries=True would re-run it)"
    return [Reason(kind, text, details)]


def untracked_library_notes(record: Materialization, new: Mapping[str, str]
                            ) -> tuple[Reason, ...]:
    """Notes, for an asset that does not track its libraries, on those whose versions
    changed since ``record`` (none if the record keyed them: its key says so already,
    or if it predates recorded versions)."""
    old = record.libraries
    if not old or any(n.startswith(LIBRARY_PREFIX) for n in record.upstream_versions):
        return ()
    return tuple(reason for library in sorted(set(old) | set(new))
                 for reason in _library_difference(library, old.get(library),
                                                   new.get(library), untracked=True))


def _file_details(name: str, old_hash: str, new_hash: str,
                  explain: _Explain) -> dict[str, Any]:
    """The facts of a changed input file; a diff when both texts are at hand (small
    text files: the old one as recorded by the run that read it)."""
    path = name[len(FILE_PREFIX):]
    details: dict[str, Any] = {"path": path, "old_hash": old_hash, "new_hash": new_hash}
    old = explain.old_code(old_hash) if explain.old_code else None
    new = explain.file_text(name, new_hash) if explain.file_text else None
    if old is not None and path in old and new is not None:
        details.update(code_diff({path: old[path]}, {path: new}))
    return details


def code_diff(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, Any]:
    """The components that differ between two code fingerprints and a unified diff."""
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    chunks: list[str] = []
    for name in changed:
        import difflib  # only for a message

        chunks.extend(difflib.unified_diff(
            (old.get(name) or "").splitlines(keepends=True) if name in old else [],
            (new.get(name) or "").splitlines(keepends=True) if name in new else [],
            fromfile=f"a/{name}", tofile=f"b/{name}"))
    diff = "".join(line if line.endswith("\n") else line + "\n" for line in chunks)
    return {"changed": changed, "diff": diff}
