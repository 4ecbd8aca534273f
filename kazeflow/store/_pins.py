"""Pins: the data versions a live run relies on, which gc must keep.

A run writes the data versions it reuses or materializes to ``pins/<run_id>.pin`` and
holds a lock on that file while it lives. gc, under its exclusive lock, keeps every
object pinned by a locked (live) pin file and deletes the files of dead runs. Runs pin
under the shared gc lock and check the object exists afterwards, so either gc saw the
pin or the run sees the object gone (and materializes it again).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from kazeflow.store._locks import FileLock, try_lock_fd

SUFFIX = ".pin"


class RunPins:
    """The pin file of one run: open it, add data versions, close it at the end."""

    def __init__(self, folder: Path, run_id: str) -> None:
        self.path = folder / f"{run_id}{SUFFIX}"
        self._lock = FileLock(self.path)
        self._file: TextIO | None = None
        self.pinned: set[str] = set()
        self._adding = threading.Lock()  # a run's batch may flush in a timer thread

    def open(self) -> None:
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        self._lock.acquire()
        self._file = open(self.path, "a")  # noqa: SIM115 - closed by close()

    def add(self, data_versions: Iterable[str]) -> None:
        """Pin data versions (visible to gc at once; a crash unpins them with the run)."""
        with self._adding:
            new = [dv for dv in data_versions if dv not in self.pinned]
            if new and self._file is not None:
                self._file.write("".join(f"{dv}\n" for dv in new))
                self._file.flush()
                self.pinned.update(new)

    def seal(self) -> None:
        """No more pins will come: keep only the lock (one file descriptor)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        """Unpin everything: nothing of the run will be loaded any more."""
        if self._lock.held:
            self.seal()
            self.path.unlink(missing_ok=True)
            self._lock.release()


def live_pins(folder: Path) -> set[str]:
    """Data versions pinned by live runs; pin files of dead runs are removed."""
    pinned: set[str] = set()
    if not folder.is_dir():
        return pinned
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if try_lock_fd(fd):  # nobody holds it: its run is over or dead
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(os.dup(fd)) as text:
                pinned.update(line.strip() for line in text if line.endswith("\n"))
        finally:
            os.close(fd)
    return pinned
