"""Key leases: one holder per cache key across threads and processes, released by a
dead holder, and a memory of keys taken before (on Linux, byte locks in one file)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from kazeflow.store import _leases

KEY = hashlib.sha256(b"one key").hexdigest()
OTHER = hashlib.sha256(b"another key").hexdigest()

HOLDER = """\
import sys, time
from pathlib import Path
from kazeflow.store._leases import key_lease
lease = key_lease(Path(sys.argv[1]), sys.argv[2])
assert lease.acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture(params=["byte locks in one file", "one file per key"])
def lease_of(request, tmp_path, monkeypatch):
    """Make leases in a store folder, with each implementation."""
    if request.param == "one file per key":
        monkeypatch.setattr(_leases, "_OFD_SETLK", None)
    elif _leases._OFD_SETLK is None:
        pytest.skip("this platform has no open file description locks")
    return lambda key: _leases.key_lease(tmp_path, key)


def test_one_holder_per_key(lease_of):
    first, second, other = lease_of(KEY), lease_of(KEY), lease_of(OTHER)
    assert first.acquire(blocking=False)
    assert not second.acquire(blocking=False)  # also from the same thread
    assert other.acquire(blocking=False)
    first.release()
    assert second.acquire(blocking=False)
    second.release()
    other.release()


def test_a_waiting_thread_gets_the_lease_when_it_is_released(lease_of):
    first = lease_of(KEY)
    assert first.acquire()
    got = []
    waiter = threading.Thread(target=lambda: got.append(lease_of(KEY).acquire()))
    waiter.start()
    time.sleep(0.2)
    assert got == []
    first.release()
    waiter.join(5)
    assert got == [True]


def test_a_key_taken_before_is_known(lease_of):
    first = lease_of(KEY)
    assert first.acquire() and first.created
    first.release()
    again, other = lease_of(KEY), lease_of(OTHER)
    assert again.acquire() and not again.created
    assert other.acquire() and other.created


def test_a_killed_holder_releases_its_lease(tmp_path):
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), KEY],
                          stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout.readline() == "held\n"
            mine = _leases.key_lease(tmp_path, KEY)
            assert not mine.acquire(blocking=False)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            assert mine.acquire(blocking=False) and not mine.created
        finally:
            child.kill()


def test_byte_locks_create_no_file_per_key(tmp_path):
    if _leases._OFD_SETLK is None:
        pytest.skip("this platform has no open file description locks")
    for i in range(50):
        lease = _leases.key_lease(tmp_path, hashlib.sha256(str(i).encode()).hexdigest())
        assert lease.acquire()
        lease.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leases.lock"]
