"""Python's cyclic garbage collector stays off while kazeflow does its own bookkeeping.

Planning, fingerprinting and deciding a run of thousands of assets allocates hundreds
of thousands of small objects that all live until the run ends; every collection they
trigger would also traverse the rest of the process's heap, which made collections a
third of a large fresh run. Inside :func:`bookkeeping` the collector is off, except
while user code runs (:func:`user_code`, in any thread), so assets always run with the
collector as the user had it. Nothing is lost: collections resume afterwards. The
collector is one per process, so other threads of the program see it paused for those
moments too (at most the length of one run's bookkeeping; garbage they make meanwhile is
collected after).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_guard = threading.Lock()
_bookkeeping = 0  # sections of kazeflow's own work in progress (any thread)
_user_calls = 0  # asset functions running (any thread)
_was_enabled = False  # the collector's state when the outermost section began


def _apply() -> None:
    """Off during bookkeeping unless user code runs; as it was once bookkeeping ends."""
    if _bookkeeping and not _user_calls:
        gc.disable()
    elif _was_enabled:
        gc.enable()


@contextlib.contextmanager
def bookkeeping() -> Iterator[None]:
    """No collections inside, but while :func:`user_code` runs (nestable)."""
    global _bookkeeping, _was_enabled
    with _guard:
        if _bookkeeping == 0:
            _was_enabled = gc.isenabled()
        _bookkeeping += 1
        _apply()
    try:
        yield
    finally:
        with _guard:
            _bookkeeping -= 1
            _apply()
            if not _bookkeeping:
                _was_enabled = False  # the user's own settings rule again


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """Run user code with the collector as the user had it."""
    global _user_calls
    with _guard:
        _user_calls += 1
        _apply()
    try:
        yield
    finally:
        with _guard:
            _user_calls -= 1
            _apply()
