"""The flow the page shows, planned again when the user's code changes on disk.

A long-running server keeps the functions it imported; the code hash of an edited
asset would never change. So the user modules that planning imported (those outside
the standard library and site-packages) are watched: when one of their files changes,
they are dropped from ``sys.modules``, the registry is cleared and the flow is planned
again, as a new ``kazeflow why`` would.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from kazeflow.assets import registry
from kazeflow.errors import KazeflowError

if TYPE_CHECKING:
    from kazeflow.flow import Flow

#: (mtime in ns, size) of a watched file; None when it is gone.
Stamp = tuple[int, int] | None
_LIBRARY_PATHS = tuple({os.path.realpath(sysconfig.get_paths()[key]) + os.sep
                        for key in ("stdlib", "platstdlib", "purelib", "platlib")})


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def is_user_file(path: str) -> bool:
    """Whether ``path`` is a source file of the user's (not the stdlib's or a library's)."""
    real = os.path.realpath(path)
    return (real.endswith(".py") and not real.startswith(_LIBRARY_PATHS)
            and "site-packages" not in real and "dist-packages" not in real)


class FlowSource:
    """Plans the flow with ``plan`` and plans it again after its user code changed.

    Args:
        plan: imports the TARGET (registering its assets) and returns its flow.
    """

    def __init__(self, plan: Callable[[], Flow]) -> None:
        self._plan = plan
        self._lock = threading.Lock()
        self._modules: dict[str, str] = {}  # module name → its file
        self._stamps: dict[str, Stamp] = {}
        self._error: KazeflowError | None = None
        self._flow = self._load()  # a bad TARGET fails the command at once
        self.generation = 0  # +1 at every successful re-plan

    def _load(self) -> Flow:
        before = set(sys.modules)
        try:
            return self._plan()
        finally:  # watch what it imported, even when importing failed half-way
            for name in set(sys.modules) - before:
                path = getattr(sys.modules.get(name), "__file__", None)
                if isinstance(path, str) and is_user_file(path):
                    self._modules[name] = path
            self._stamps = {path: _stamp(path) for path in self._modules.values()}

    def flow(self) -> Flow:
        """The flow as the code on disk defines it now.

        Raises:
            KazeflowError: re-importing the edited code failed (until it is fixed).
        """
        with self._lock:
            if any(_stamp(path) != stamp for path, stamp in self._stamps.items()):
                for name in self._modules:
                    sys.modules.pop(name, None)
                registry.clear()
                try:
                    self._flow, self._error = self._load(), None
                    self.generation += 1
                except KazeflowError as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            return self._flow
