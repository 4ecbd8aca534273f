"""A write that fails in a helper thread (the batch's timer flush, an object's hash and
fsync) stops the run with a StoreError, leaves no temp object and no held lease, and the
next run in the same process completes.

Each scenario runs in a child process (a hang there fails the test at its timeout, it
does not hang the suite). The child injects the failure into non-main threads only,
runs, reports, then waits while this process checks the store from outside.
"""

import fcntl
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent("""
    import errno, os, sys, threading, time
    from kazeflow import Flow, StoreError, asset
    from kazeflow.store import _metadata, _objects

    root, where = sys.argv[1], sys.argv[2]
    broken = True

    def in_helper():
        return broken and threading.current_thread() is not threading.main_thread()

    if where == "timer-flush":  # the batch's timer thread cannot commit rows
        record = _metadata.MetadataStore.record
        def failing_record(self, *args, **kwargs):
            if in_helper():
                raise StoreError("injected: database is locked")
            return record(self, *args, **kwargs)
        _metadata.MetadataStore.record = failing_record
    else:  # "object-fsync": the thread hashing and fsyncing a large object fails
        fsync = os.fsync
        def failing_fsync(fd):
            if in_helper():
                raise OSError(errno.ENOSPC, "No space left on device")
            return fsync(fd)
        _objects.os.fsync = failing_fsync

    @asset
    def first():
        return 1

    @asset
    def second(first):
        time.sleep(0.3)  # far past the batch's timer: it flushes `first` meanwhile
        return first + 1

    @asset
    def big(second):
        return bytes(range(256)) * 40_000  # 10 MiB: hashed and fsynced in a helper thread

    @asset
    def last(big):
        time.sleep(0.3)
        return len(big)

    flow = Flow(["last"], store=root)
    try:
        flow.run()
    except StoreError as exc:
        print("STOREERROR", exc, flush=True)
    else:
        print("NO ERROR", flush=True)
    sys.stdin.readline()  # the parent looks at the store meanwhile
    broken = False
    result = flow.run()
    print("SECOND", sorted(result.materialized), result["last"], flush=True)
    print("VERIFY", flow.store.verify().ok, flush=True)
""")

_FLOCK = struct.Struct("hhqqi4x")


def no_lease_held(root: Path) -> bool:
    """Whether this process can write-lock all of ``leases.lock`` (no byte is leased)."""
    path = root / "leases.lock"
    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        return True
    except (BlockingIOError, PermissionError):
        return False
    finally:
        os.close(fd)


def stderr_of(child: subprocess.Popen) -> str:
    child.kill()
    return child.stderr.read()


@pytest.mark.skipif(not hasattr(fcntl, "F_OFD_SETLK"), reason="leases are OFD locks on Linux")
@pytest.mark.parametrize("where", ["timer-flush", "object-fsync"])
def test_a_failed_helper_thread_write_stops_the_run_cleanly(tmp_path, where):
    root = tmp_path / "store"
    with subprocess.Popen([sys.executable, "-c", CHILD, str(root), where], text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as child:
        try:
            first = child.stdout.readline()
            assert first.startswith("STOREERROR"), first + stderr_of(child)
            if where == "timer-flush":
                assert "injected: database is locked" in first  # the timer's own error
            else:
                assert "No space left on device" in first and "free some disk space" in first
            assert list(root.rglob("*.partial")) == []
            assert no_lease_held(root)
            out, err = child.communicate("\n", timeout=60)  # a hang: TimeoutExpired
        finally:
            child.kill()  # no-op once it exited; else it would wait on stdin
    assert child.returncode == 0, err
    second, verify = out.splitlines()
    assert second.startswith("SECOND") and second.endswith(str(256 * 40_000)), out
    assert verify == "VERIFY True"
