"""Store maintenance: ``verify`` re-hashes everything, ``gc`` reclaims old objects."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kazeflow.store import Store


@dataclass(frozen=True)
class VerifyReport:
    """What ``Store.verify()`` found; ``ok`` when nothing is missing or corrupt."""

    checked: int
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)  # dv → assets
    corrupt: tuple[str, ...] = ()
    orphaned: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


@dataclass(frozen=True)
class GcReport:
    """What ``Store.gc()`` removed (or would remove, with ``dry_run``)."""

    records_removed: int
    objects_removed: int
    bytes_before: int
    bytes_after: int
    temp_files_removed: int
    dry_run: bool = False

    @property
    def bytes_freed(self) -> int:
        return self.bytes_before - self.bytes_after


def verify(store: Store) -> VerifyReport:
    """Re-hash every object; report missing, corrupt (then quarantined) and orphaned ones.

    Missing: referred to by a record of this folder's runs (another folder sharing the
    database holds its own objects). Orphaned: referred to by no record at all (what gc
    removes).
    """
    refs = store.metadata.referenced_versions()
    every_ref = store.metadata.referenced_versions(every_folder=True)
    checked, corrupt, on_disk = 0, [], set()
    for data_version, _size in store.objects.iter_objects():
        checked += 1
        digest = store.objects.digest(data_version)
        if digest is None:  # removed meanwhile (a gc)
            continue
        if digest != data_version:
            store.objects.quarantine(data_version)
            corrupt.append(data_version)
        else:
            on_disk.add(data_version)
    missing = {dv: tuple(sorted(assets)) for dv, assets in refs.items()
               if dv not in on_disk and dv not in corrupt}
    orphaned = tuple(sorted(dv for dv in on_disk if dv not in every_ref))
    return VerifyReport(checked, missing, tuple(corrupt), orphaned)


def gc(store: Store, *, keep_last: int | None = None, older_than: float | None = None,
       dry_run: bool = False) -> GcReport:
    """Delete old records, then the objects nothing refers to any more (see Store.gc)."""
    meta, objs = store.metadata, store.objects
    horizon = None if older_than is None else time.time() - older_than
    lock = store.gc_lock()
    lock.acquire()
    try:
        before = dict(objs.iter_objects())
        expired = meta.expired(keep_last, horizon)
        refs = meta.referenced_versions(excluding=expired, every_folder=True)
        # what running runs rely on
        pinned = store.live_pins(remove_dead=not dry_run)
        doomed = [dv for dv in before if dv not in refs and dv not in pinned]
        report = GcReport(len(expired), len(doomed), sum(before.values()),
                          sum(before.values()) - sum(before[dv] for dv in doomed), 0, dry_run)
        if dry_run:
            return report
        meta.delete_materializations(expired)  # metadata first: a crash leaves orphans only
        for dv in doomed:
            objs.delete(dv)
        temps = objs.remove_stale_temps()
        objs.remove_empty_shards()
    finally:
        lock.release()
    return dataclasses.replace(report, temp_files_removed=temps)
