"""cloudpickle (protocol 5) streamed through SHA-256: one pass, no second in-memory copy."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import threading
import types
from typing import Any, BinaryIO

from kazeflow.errors import UnpicklableResultError

PROTOCOL = 5
_CHUNK = 1 << 20


class _HashingWriter:
    """A write-only file that hashes and counts what passes through to ``raw``.

    Large buffers (numpy arrays arrive as PickleBuffers, written in place) are hashed in
    a helper thread while the main thread writes them: hashlib and file writes both
    release the GIL, so a big result costs about max(hash, write), not their sum.
    """

    _PARALLEL_FROM = 4 << 20  # bytes

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self._hashing: threading.Thread | None = None
        self.size = 0
        self.large = False

    def write(self, data: Any) -> int:
        n = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        self._join()  # updates stay in order
        if n >= self._PARALLEL_FROM:
            self.large = True
            self._hashing = threading.Thread(target=self._sha.update, args=(data,))
            self._hashing.start()
        else:
            self._sha.update(data)
        try:
            self._raw.write(data)
        except BaseException:
            self._join()
            raise
        self.size += n
        return n

    def _join(self) -> None:
        if self._hashing is not None:
            self._hashing.join()
            self._hashing = None

    def hexdigest(self) -> str:
        self._join()
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
    if writer.large:  # flush to disk while the last large buffer is still being hashed
        raw.flush()
        os.fsync(raw.fileno())
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
