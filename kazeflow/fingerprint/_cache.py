"""A cache of per-function source analyses that outlives the process, kept in the store.

A new process would otherwise re-read, parse and normalise every asset's source before
its first run (about 0.1 ms a function). Entries are keyed by file, qualified name and
first line, and trusted only while the file's size, mtime, ctime and inode are those it
had when the entry was made (ctime, which no tool can set back, catches a copy that
keeps an old mtime). A file modified less than :data:`RACY_SECONDS` before it was
analysed is not cached at all: a second edit within the filesystem's timestamp
granularity could otherwise leave the signature unchanged (git's "racily clean"
problem). The cache is an optimisation only: an unreadable, foreign or damaged file
counts as empty, and failing to write it is ignored. A cache lives for one run or status
check (files are stat-ed once in it); its file is shared by every run on the store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from kazeflow.fingerprint import _cachefile

RACY_SECONDS = 2.0

FileSignature = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
Entry = Any  # plain data that marshal can write (tuples, strings, numbers)


class SourceCache:
    """Analyses by (file, qualname, first line), persisted at ``path`` by :meth:`save`.

    ``tag`` names everything an entry depends on besides the file (cache format, code
    hash version, Python version); a file written under another tag is ignored.
    """

    def __init__(self, path: Path | None, tag: tuple[Any, ...]) -> None:
        self.path = path
        self.tag = tag
        self._files: dict[str, tuple[FileSignature, dict[tuple[str, int], Entry]]] | None \
            = None
        self._signatures: dict[str, FileSignature | None] = {}  # stat once per run
        self._trusted: dict[str, dict[tuple[str, int], Entry]] = {}  # checked this run
        self._changed = False
        #: Scratch space for the reader of the entries, for this run only.
        self.memo: dict[Any, Any] = {}

    def get(self, filename: str, qualname: str, first_line: int) -> Entry | None:
        """The entry for a function, if its file is unchanged since the entry was made."""
        entries = self._trusted.get(filename)
        if entries is None:
            entries = self._trusted[filename] = self._entries(filename)
        return entries.get((qualname, first_line))

    def _entries(self, filename: str) -> dict[tuple[str, int], Entry]:
        """The entries of ``filename`` if it is unchanged since they were made, else none."""
        signature = self._signature(filename)
        cached = self._loaded().get(filename)
        if signature is None or cached is None or cached[0] != signature:
            return {}
        return cached[1]

    def put(self, filename: str, qualname: str, first_line: int, entry: Entry) -> None:
        """Remember an entry (not for a file too recently modified to be trusted)."""
        signature = self._signature(filename)
        if signature is None or signature[1] > time.time_ns() - RACY_SECONDS * 1e9:
            return
        files = self._loaded()
        cached = files.get(filename)
        if cached is None or cached[0] != signature:
            cached = files[filename] = (signature, {})
            self._trusted.pop(filename, None)
        cached[1][(qualname, first_line)] = entry
        self._changed = True

    def save(self) -> None:
        """Write the cache if it gained entries (atomically; errors are only logged).
        Files that changed or disappeared since their entries were made are dropped."""
        if not self._changed or self.path is None:
            return
        self._changed = False
        self._signatures.clear()
        self._trusted.clear()
        files = {name: (sig, entries) for name, (sig, entries) in self._loaded().items()
                 if self._signature(name) == sig}
        _cachefile.write(self.path, self.tag, files)

    def _loaded(self) -> dict[str, tuple[FileSignature, dict[tuple[str, int], Entry]]]:
        if self._files is None:
            self._files = _cachefile.read(self.path, self.tag)
        return self._files

    def _signature(self, filename: str) -> FileSignature | None:
        if filename not in self._signatures:
            try:
                st = os.stat(filename)
            except (OSError, ValueError):
                self._signatures[filename] = None
            else:
                self._signatures[filename] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                              st.st_ino)
        return self._signatures[filename]
