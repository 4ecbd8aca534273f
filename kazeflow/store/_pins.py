"""Pins: the data versions a live run relies on, which gc must keep.

A run writes the data versions it reuses or materializes to ``pins/<run_id>.pin`` and
holds a lock on that file while it lives. gc, under its exclusive lock, keeps every
object pinned by a locked (live) pin file and deletes the files of dead runs. Runs pin
under the shared gc lock and check the object exists afterwards, so either gc saw the
pin or the run sees the object gone (and materializes it again).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from kazeflow.errors import StoreError
from kazeflow.store._fs import NOFOLLOW, open_dir
from kazeflow.store._locks import FileLock, try_lock_fd

SUFFIX = ".pin"
#: Tries at creating a pin file that a concurrent gc does not remove first.
_ATTEMPTS = 100


class RunPins:
    """The pin file of one run: open it, add data versions, close it at the end."""

    def __init__(self, folder: Path, run_id: str) -> None:
        self.folder = folder
        self.name = f"{run_id}{SUFFIX}"
        self._folder_fd: int | None = None
        self._lock: FileLock | None = None
        self._file: TextIO | None = None
        self.pinned: set[str] = set()
        self._adding = threading.Lock()  # a run's batch may flush in a timer thread

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def open(self) -> None:
        """Create the pin file, locked while the run lives.

        Raises:
            StoreError: ``pins/`` or the pin file is a symbolic link (never followed).
        """
        self._folder_fd = open_dir(self.folder, create=True)
        try:
            for _ in range(_ATTEMPTS):
                self._lock = FileLock(self.name, dir_fd=self._folder_fd)
                self._lock.acquire()
                if self._lock.still_named():
                    break
                # A gc found the new file unlocked and removed it as a dead run's
                # before the lock took: pins written to it would be unseen. Again.
                self._lock.release()
            else:
                raise StoreError(f"cannot create the pin file {self.path}: it keeps "
                                 "vanishing (a gc in a loop?); run again", path=self.path)
            self._file = open(os.open(self.name, os.O_WRONLY | os.O_APPEND | NOFOLLOW,  # noqa: SIM115
                                      dir_fd=self._folder_fd), "a")  # closed by seal()
        except BaseException:
            self.close()
            raise

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
        self.seal()
        if self._lock is not None and self._lock.held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self._folder_fd)
            self._lock.release()
        if self._folder_fd is not None:
            os.close(self._folder_fd)
            self._folder_fd = None


def live_pins(folder: Path, remove_dead: bool = True) -> set[str]:
    """Data versions pinned by live runs; pin files of dead runs are removed (unless
    ``remove_dead`` is False: a dry run).

    Raises:
        StoreError: ``folder`` is a symbolic link (never followed).
    """
    pinned: set[str] = set()
    fd = open_dir(folder, create=False)
    if fd is None:
        return pinned
    try:
        for name in os.listdir(fd):
            if name.endswith(SUFFIX):
                _read_pins(fd, name, pinned, remove_dead)
    finally:
        os.close(fd)
    return pinned


def _read_pins(folder: int, name: str, pinned: set[str], remove_dead: bool) -> None:
    """Add the pins of the file ``name`` to ``pinned`` if its run lives, else remove it
    (a link in its place is removed, never followed)."""
    try:
        fd = os.open(name, os.O_RDONLY | NOFOLLOW, dir_fd=folder)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            if remove_dead:
                os.unlink(name, dir_fd=folder)
            return
        raise
    try:
        if try_lock_fd(fd):  # nobody holds it: its run is over or dead
            if not remove_dead:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=folder)
            return
        with os.fdopen(os.dup(fd)) as text:
            pinned.update(line.strip() for line in text if line.endswith("\n"))
    finally:
        os.close(fd)
