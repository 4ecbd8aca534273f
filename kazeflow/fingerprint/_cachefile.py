"""A cache file of the store's ``cache/`` folder: one marshalled dict under a tag that
names its format (a file of another tag, damaged or unreadable, counts as empty), written
atomically. Losing one only costs the work it saved."""

from __future__ import annotations

import contextlib
import marshal
import os
import threading
from pathlib import Path
from typing import Any

from kazeflow.context import log


def read(path: Path | None, tag: tuple[Any, ...]) -> dict[Any, Any]:
    """The dict saved at ``path`` under ``tag``; empty if there is none."""
    if path is None:
        return {}
    try:
        saved_tag, data = marshal.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, EOFError, ValueError, TypeError) as exc:
        log.debug("ignoring the unreadable cache %s: %s", path, exc)
        return {}
    return data if saved_tag == tag and isinstance(data, dict) else {}


def write(path: Path | None, tag: tuple[Any, ...], data: dict[Any, Any]) -> None:
    """Save ``data`` at ``path`` under ``tag`` (atomically; errors are only logged)."""
    if path is None:
        return
    temp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        temp.write_bytes(marshal.dumps((tag, data)))
        os.replace(temp, path)
    except OSError as exc:
        log.debug("cannot save the cache %s: %s", path, exc)
        with contextlib.suppress(OSError):
            temp.unlink()
