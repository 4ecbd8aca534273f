"""cloudpickle (protocol 5) streamed through SHA-256: one pass, no second in-memory copy."""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import types
from typing import Any, BinaryIO

from kazeflow.errors import UnpicklableResultError

PROTOCOL = 5
_CHUNK = 1 << 20


class _HashingWriter:
    """A write-only file that hashes and counts what passes through to ``raw``."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        # Large buffers (numpy arrays) arrive as PickleBuffers: hashed and written in place.
        self._sha.update(data)
        self._raw.write(data)
        n = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        self.size += n
        return n

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def dump_hashed(value: Any, raw: BinaryIO) -> tuple[str, int]:
    """Pickle ``value`` into ``raw``; return the SHA-256 hex digest and size of the bytes.

    Raises:
        UnpicklableResultError: ``value`` cannot be pickled, or is an open file or a
            generator (cloudpickle would silently store a file's remaining contents).
    """
    if isinstance(value, (io.IOBase, types.GeneratorType)):
        raise unpicklable(value, TypeError(f"cannot pickle '{type(value).__name__}' object"))
    import cloudpickle  # loaded on the first write, not on import kazeflow

    writer = _HashingWriter(raw)
    cloudpickle.dump(value, writer, protocol=PROTOCOL)
    return writer.hexdigest(), writer.size


def file_digest(raw: BinaryIO) -> str:
    """SHA-256 hex digest of the rest of ``raw``, read in chunks."""
    sha = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while n := raw.readinto(buf):  # type: ignore[attr-defined]
        sha.update(view[:n])
    return sha.hexdigest()


def load(raw: BinaryIO) -> Any:
    """Unpickle one value from ``raw`` (only ever called after its hash was verified)."""
    return pickle.load(raw)


_HINTS = {
    "generator": "return a list (e.g. list(...)) instead of a generator",
    "IOWrapper": "return the file's contents or its path, not an open file",
    "Reader": "return the file's contents or its path, not an open file",
    "Writer": "return the file's contents or its path, not an open file",
    "FileIO": "return the file's contents or its path, not an open file",
    "_thread.lock": "return data, not an object holding a lock",
    "_thread.RLock": "return data, not an object holding a lock",
    "socket": "return data, not a connection",
}


def unpicklable(value: Any, exc: BaseException) -> UnpicklableResultError:
    """Describe why ``value`` could not be pickled, naming the offending type."""
    match = re.search(r"(?:cannot|Can't) pickle '?<?([\w.]+)", str(exc))
    type_name = match.group(1) if match else type(value).__qualname__
    hint = next((h for key, h in _HINTS.items() if type_name.endswith(key)),
                "return plain data (numbers, lists, dicts, arrays, dataframes) instead")
    return UnpicklableResultError(
        f"the result (a {type(value).__qualname__}) cannot be pickled because it holds a "
        f"{type_name!r} ({exc}); {hint}", asset_name=None, type_name=type_name)
