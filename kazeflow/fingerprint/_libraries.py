"""The installed versions of the libraries an asset's code imports.

A library's top-level module is mapped to the distribution that installed it through the
``*.dist-info`` folders beside it: first by name (``numpy`` → ``numpy-2.1.0.dist-info``),
which needs one listing of the folder per process; else through each distribution's
``top_level.txt`` or ``RECORD`` (``sklearn`` → ``scikit_learn``), an index kept in a
persistent cache while the folder's mtime (which installing or removing a package
changes) stays the same.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from kazeflow.fingerprint import _cachefile

_TAG = ("kazeflow.libraries", 1)

Owner = tuple[str, str]  # distribution name, version


class LibraryVersions:
    """Distribution versions by top-level module, cached at ``cache_path``."""

    def __init__(self, cache_path: Path | None) -> None:
        self.cache_path = cache_path
        self._listings: dict[str, dict[str, Owner]] = {}  # folder → by normalised name
        self._indexes: dict[str, tuple[int, dict[str, Owner]]] | None = None
        self._owners: dict[str, Owner | None] = {}
        self._changed = False
        self._lock = threading.Lock()

    def versions(self, modules: Iterable[str]) -> dict[str, str]:
        """Distribution → version of each of the top-level ``modules`` that an installed
        distribution provides (others, e.g. a module without one, are left out)."""
        found = {}
        for module in modules:
            owner = self._owners.get(module)
            if owner is None and module not in self._owners:
                owner = self._owners[module] = self._owner(module)
            if owner is not None:
                found[owner[0]] = owner[1]
        return dict(sorted(found.items()))

    def save(self) -> None:
        """Write the cache if it gained indexes (atomically; errors are only logged)."""
        if not self._changed or self._indexes is None:
            return
        self._changed = False
        _cachefile.write(self.cache_path, _TAG, self._indexes)

    def _owner(self, module: str) -> Owner | None:
        folder = _folder_of(module)
        if folder is None:
            return None
        listing = self._listing(folder)
        owner = listing.get(_normalised(module))
        if owner is None:
            owner = self._index(folder, listing).get(module)
        return owner

    def _listing(self, folder: str) -> dict[str, Owner]:
        """The distributions installed in ``folder``, by normalised name."""
        listing = self._listings.get(folder)
        if listing is None:
            listing = {}
            with contextlib.suppress(OSError):
                for entry in os.scandir(folder):
                    if entry.name.endswith(".dist-info"):
                        name, _, version = entry.name[:-len(".dist-info")].partition("-")
                        listing[_normalised(name)] = (name, version)
            self._listings[folder] = listing
        return listing

    def _index(self, folder: str, listing: dict[str, Owner]) -> dict[str, Owner]:
        """Top-level module → distribution for every distribution in ``folder``."""
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            return {}
        indexes = self._loaded()
        known = indexes.get(folder)
        if known is not None and known[0] == mtime:
            return known[1]
        index: dict[str, Owner] = {}
        for name, version in listing.values():
            info = os.path.join(folder, f"{name}-{version}.dist-info")
            for top in _top_levels(info):
                index.setdefault(top, (name, version))
        with self._lock:
            indexes[folder] = (mtime, index)
            self._changed = True
        return index

    def _loaded(self) -> dict[str, tuple[int, dict[str, Owner]]]:
        if self._indexes is None:
            self._indexes = _cachefile.read(self.cache_path, _TAG)
        return self._indexes


def _folder_of(module: str) -> str | None:
    """The folder holding the top-level ``module`` (its package or file), if loaded."""
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if not file:
        return None
    path = os.path.dirname(os.path.abspath(file))
    if os.path.basename(file).startswith("__init__."):
        path = os.path.dirname(path)
    return path


def _top_levels(info: str) -> set[str]:
    """The top-level modules a distribution installs (``top_level.txt``, else RECORD)."""
    with contextlib.suppress(OSError):
        with open(os.path.join(info, "top_level.txt"), encoding="utf-8") as f:
            return {line.strip() for line in f if line.strip()}
    tops = set()
    with contextlib.suppress(OSError):
        with open(os.path.join(info, "RECORD"), encoding="utf-8") as f:
            for line in f:
                first = line.split(",", 1)[0].split("/", 1)
                top = first[0]
                if len(first) == 1:  # a module file at the top: name.py, name.so
                    top = top.partition(".")[0]
                if top and not top.endswith((".dist-info", ".data")) and top != "..":
                    tops.add(top)
    return tops


def _normalised(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")
