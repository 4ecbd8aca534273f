"""The worker side of the ``"processes"`` executor: a loop that runs one call at a time.

A worker started by :class:`~kazeflow.executors._processes.ProcessExecutor` (its default
``start_method="spawn"``) is a fresh interpreter running :data:`BOOT`: it takes the
parent's ``sys.path`` and ``sys.argv`` and imports only this module, never the parent's
main module. So a flow started from standard input (``python - < flow.py``), from
``python -c`` or from a script without an ``if __name__ == "__main__":`` guard works the
same as one from a guarded script: each call carries the asset function by cloudpickle
(by value for what ``__main__`` defines) and imports what that needs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

#: What a fresh worker interpreter runs (``python -c BOOT FD PATH...``): stdlib only
#: until the parent's ``sys.path`` is in place; a failure to import kazeflow goes back
#: to the parent as text, so that it can say why no worker could start.
BOOT = """\
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
fd, sys.path[:] = int(sys.argv[1]), sys.argv[2:]
from multiprocessing.connection import Connection
conn = Connection(fd)
try:
    from kazeflow.executors._worker import serve
except BaseException:
    import traceback
    conn.send(("could not start", traceback.format_exc()))
    raise SystemExit(1)
serve(conn, prepare=True)
"""

#: The first message of a worker that runs: ``(STARTED, pid)``.
STARTED = "started"
#: A worker that could not import kazeflow: ``(COULD_NOT_START, traceback)``.
COULD_NOT_START = "could not start"


def serve(conn: Connection, prepare: bool = False) -> None:
    """A worker's loop: receive a call, run it, send back (ok, result or exception).

    With ``prepare``, the first message is the parent's ``sys.argv``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        if prepare:
            sys.argv[:] = conn.recv()
        conn.send((STARTED, os.getpid()))
    except (EOFError, OSError):
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            answer: tuple[bool, Any] = (True, fn(*args))
        except BaseException as exc:
            answer = (False, exc)
        try:
            conn.send(answer)
        except OSError:  # the parent is gone
            return
        except Exception as exc:  # an unpicklable result or exception
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc} (while sending "
                                           f"back {answer[1]!r:.200})")))


def _exit_with_parent(parent: int) -> None:
    """End this worker soon after its parent dies (killed: nobody would stop it)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
