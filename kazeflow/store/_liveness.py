"""Whether a run's process still lives, told from a reused pid without the wall clock.

A run records its process's start as ``"<boot id>:<start ticks>"``: the kernel's boot id
and the process's start in clock ticks since boot (``/proc/<pid>/stat`` field 22). Both
are immune to wall-clock jumps; a pid reused after a reboot or by a later process has
another. Without ``/proc`` only the pid is checked.
"""

from __future__ import annotations

import os

_BOOT_ID = "/proc/sys/kernel/random/boot_id"


def this_host() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it (without importing
    ``socket`` where ``os.uname`` tells the same)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """The start of process ``pid`` as ``"<boot id>:<ticks>"``; None without ``/proc``
    (or without such a process)."""
    try:
        ticks = _start_ticks(pid)
        with open(_BOOT_ID) as f:
            return f"{f.read().strip()}:{ticks}"
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> str:
    """Field 22 of ``/proc/<pid>/stat``: the process's start in clock ticks since boot."""
    with open(f"/proc/{pid}/stat") as f:
        # the command name (field 2) may hold spaces and parentheses: split after it
        return f.read().rsplit(")", 1)[1].split()[19]


def observed_status(status: str, pid: int | None, hostname: str | None,
                    started_at: float, recorded_start: str | None) -> str:
    """A run still ``running`` whose process on this host is gone was ``abandoned``."""
    if status != "running" or pid is None or hostname != this_host():
        return status
    return status if _alive(pid, started_at, recorded_start) else "abandoned"


def _alive(pid: int, started_at: float, recorded_start: str | None) -> bool:
    """Whether the process that ran the run is ``pid``, still alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    if recorded_start is None:  # a row from before process_start was recorded
        return _began_before(pid, started_at)
    current = process_start(pid)
    return current is None or current == recorded_start  # None: no /proc, trust the pid


def _began_before(pid: int, started_at: float) -> bool:
    """Whether process ``pid`` began before ``started_at`` by the wall clock (which may
    have moved since: only for rows that lack ``process_start``)."""
    try:
        ticks = int(_start_ticks(pid))
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK") <= started_at + 1.0
    except (OSError, ValueError, IndexError, StopIteration):  # no /proc: trust the pid
        return True
