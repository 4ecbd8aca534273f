"""How values become object bytes and back: cloudpickle (protocol 5) hashed with SHA-256.

An object is the pickle stream, then, when the value holds large contiguous buffers
(numpy arrays, dataframes), those buffers out of band, then a trailer listing them::

    <pickle stream> <buffer 0> … <buffer n-1> <length of each buffer> <stream length, n,
    MAGIC>

A value without large buffers is a plain pickle stream (which always ends with ``.``,
never with ``MAGIC``). The data version is the SHA-256 of all the bytes either way.
Writing streams straight from the value's memory; reading puts each buffer straight into
memory of its own, so neither side makes a second in-memory copy of a large buffer, and
the SHA-256 pass runs in a helper thread alongside the file I/O. When writing, that thread
hashes the bytes read back from the file (the page cache), not the value's memory: once
every byte is written the value may be used, even changed, while hash and fsync end.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mmap
import os
import pickle
import re
import struct
import time
import types
from collections.abc import Callable
from typing import Any, BinaryIO, NamedTuple

from kazeflow.errors import UnpicklableResultError
from kazeflow.store import _digest, _sets

PROTOCOL = 5
MAGIC = b"KZFOOB1\n"
_TAIL = struct.Struct("<QI8s")  # stream length, buffer count, MAGIC
_ENTRY = struct.Struct("<Q")  # buffer length (read-only ones are marked in the stream)
_OUT_OF_BAND_FROM = 1 << 20  # bytes; smaller buffers stay in the stream
_PARALLEL_FROM = 4 << 20  # bytes; from the first write this large on, hash in a thread
_PARALLEL_SLICE = 8 << 20  # bytes; then written, read back and hashed this much at a time
_IN_MEMORY_UP_TO = 64 << 10  # bytes; a smaller pickle is kept in memory, no file opened
#: bytes; C pickle writes its frames (≈ 64 KiB of opcodes) in writes no larger than this,
#: larger ones are the contents of one large str or bytes: no opcodes to look for there
_FRAMES_UP_TO = 256 << 10
_CHUNK = 1 << 20
_READ_CHUNK = 8 << 20
class _HashingWriter:
    """A write-only file that hashes and counts what passes through. The first
    ``_IN_MEMORY_UP_TO`` bytes are kept in memory; past that, ``open_file()`` gives the
    file (readable too) that they and the rest go to. From the first write of
    ``_PARALLEL_FROM`` bytes on, the hash runs in a helper thread over the bytes read
    back from the file, so what is hashed later is what was written."""

    def __init__(self, open_file: Callable[[], BinaryIO]) -> None:
        self._open_file = open_file
        self.raw: BinaryIO | None = None
        self.held: list[bytes] = []
        self.digest = _digest.Digest()
        self.size = 0
        #: Whether a write (while :attr:`scanning`) may have held a set's opcodes.
        self.saw_set_opcodes = False
        self.scanning = True
        self._fsync: _digest.Background | None = None
        #: When every byte was written, then when the hash and fsync were done too.
        self.finished_at = 0.0

    def write(self, data: Any) -> int:
        n = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        if self.scanning and n <= _FRAMES_UP_TO and type(data) is bytes:
            self.saw_set_opcodes = self.saw_set_opcodes or _sets.may_hold_a_set(data)
        if n >= _PARALLEL_FROM or self.digest.parallel:
            if self.raw is None:
                self._spill()
            self.digest.go_parallel()
            view = memoryview(data).cast("B")
            for start in range(0, n, _PARALLEL_SLICE):
                self._write_and_feed(view[start:start + _PARALLEL_SLICE])
            return n
        self.digest.feed(data)
        if self.raw is None:
            if self.size + n <= _IN_MEMORY_UP_TO:
                self.held.append(bytes(data))
                self.size += n
                return n
            self._spill()
        self.raw.write(data)  # type: ignore[union-attr]
        self.size += n
        return n

    def restarted(self) -> _HashingWriter:
        """A writer that starts over: into the same file, emptied, if one was opened;
        it looks for no set opcodes (the stream it gets is the final one)."""
        with contextlib.suppress(Exception):
            self.digest.hexdigest()  # the helper thread lets go of the file first
        writer = _HashingWriter(self._open_file)
        writer.scanning = False
        if self.raw is not None:
            self.raw.seek(0)
            self.raw.truncate()
            writer.raw = self.raw
        return writer

    def _spill(self) -> None:
        """Open the file and write the bytes held in memory so far to it."""
        self.raw = self._open_file()
        for chunk in self.held:
            self.raw.write(chunk)
        self.held = []

    def _write_and_feed(self, data: memoryview) -> None:
        """Write ``data``, then have the helper thread hash it read back from the file
        (``data`` itself is not read again)."""
        raw = self.raw
        assert raw is not None
        raw.write(data)
        raw.flush()
        start = self.size
        self.size += data.nbytes
        self.digest.feed_file(raw.fileno(), start, self.size)

    def close(self) -> None:
        """Every byte is written: flush them; a large file starts its fsync in a helper
        thread, so that it overlaps the hash and whatever the caller does next."""
        if self.raw is not None:
            self.raw.flush()
            if self.size >= _PARALLEL_FROM:
                self._fsync = _digest.Background("kazeflow-fsync", os.fsync, self.raw.fileno())
        self.digest.close()
        self.finished_at = time.time()

    @property
    def in_background(self) -> bool:
        """Whether a helper thread still hashes or fsyncs (until :meth:`finish`)."""
        return self.digest.parallel or self._fsync is not None

    def finish(self) -> tuple[str, int, bytes | None]:
        """Wait for the helper threads; the SHA-256 hex digest and size of the bytes, and
        the bytes themselves when they were held in memory."""
        data_version = self.digest.hexdigest()
        self.finished_at = max(self.finished_at, self.digest.done_at)
        if self._fsync is not None:
            fsync, self._fsync = self._fsync, None
            fsync.result()
            self.finished_at = max(self.finished_at, fsync.done_at)
        return data_version, self.size, b"".join(self.held) if self.raw is None else None


def dump_started(value: Any, open_file: Callable[[], BinaryIO]) -> _HashingWriter:
    """Pickle ``value``: when this returns every byte is written (or held, when few:
    ``open_file`` is then never called, so a value that is already stored costs no file)
    and ``value`` is not read again. The writer's ``finish()`` waits for the SHA-256 and
    fsync that may still run in helper threads (``in_background``) and gives the hex
    digest and size of the bytes, and the bytes themselves when they were held.

    Raises:
        UnpicklableResultError: ``value`` cannot be pickled, or is an open file or a
            generator (cloudpickle would silently store a file's remaining contents).
    """
    if isinstance(value, (io.IOBase, types.GeneratorType)):
        raise unpicklable(value, TypeError(f"cannot pickle '{type(value).__name__}' object"))
    from kazeflow.store import _picklers  # with cloudpickle: on the first write

    writer = _HashingWriter(open_file)
    buffers: list[memoryview] = []

    def in_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            view = buffer.raw()
        except BufferError:  # not contiguous: pickled in the stream
            return True
        if view.nbytes < _OUT_OF_BAND_FROM:
            return True
        buffers.append(view)
        return False

    try:
        _picklers.pickler(writer, PROTOCOL, in_band, sort_sets=False).dump(value)
        writer.scanning = False
        if writer.saw_set_opcodes:  # pickled again, sets sorted: the same bytes if none
            writer = writer.restarted()
            buffers.clear()
            _picklers.pickler(writer, PROTOCOL, in_band, sort_sets=True).dump(value)
        if buffers:
            stream_length = writer.size
            for view in buffers:
                writer.write(view)
            writer.write(b"".join(_ENTRY.pack(view.nbytes) for view in buffers)
                         + _TAIL.pack(stream_length, len(buffers), MAGIC))
        writer.close()
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one raised
            writer.digest.hexdigest()  # the helper thread lets go of the file first
        raise
    return writer


def file_digest(raw: BinaryIO) -> str:
    """SHA-256 hex digest of the rest of ``raw``, read in chunks."""
    sha = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while n := raw.readinto(buf):  # type: ignore[attr-defined]
        _digest.update(sha, view[:n])
    return sha.hexdigest()


class ReadObject(NamedTuple):
    """The bytes of one object, read once: its digest, and what :func:`load` unpickles."""

    digest: str
    stream: Any  # the pickle stream (bytes-like)
    buffers: list[Any]  # its out-of-band buffers, each in memory of its own


def read_object(raw: BinaryIO) -> ReadObject:
    """Read a whole object once, hashing it on the way; out-of-band buffers go straight
    into memory of their own. Nothing is unpickled here: :func:`load` takes exactly the
    bytes hashed, so a file rewritten after this returns cannot change what is loaded.

    A short read (the file shrank) or a trailer that the bytes read do not repeat gives
    a digest that matches no object (``""``)."""
    layout = _layout(raw)
    raw.seek(0)
    if layout is None:
        data = raw.read()
        sha = hashlib.sha256()
        _digest.update(sha, data)
        return ReadObject(sha.hexdigest(), data, [])
    stream_length, lengths = layout
    digest = _digest.Digest()
    stream = bytearray(stream_length)
    complete = _read_into(raw, memoryview(stream), digest, _CHUNK)
    digest.go_parallel()
    buffers = []
    for length in lengths:
        buffer = _allocate(length)
        complete &= _read_into(raw, memoryview(buffer), digest, _READ_CHUNK)
        buffers.append(buffer)
    trailer = raw.read()
    digest.feed(trailer)
    actual = digest.hexdigest()
    read = stream_length + sum(lengths) + len(trailer)
    if not complete or _parse_trailer(trailer, read) != (stream_length, lengths):
        actual = ""
    return ReadObject(actual, stream, buffers)


def _read_into(raw: BinaryIO, view: memoryview, digest: _digest.Digest, chunk: int) -> bool:
    """Fill ``view`` from ``raw`` and feed it to ``digest``; False on a short read."""
    for start in range(0, len(view), chunk):
        part = view[start:start + chunk]
        n = raw.readinto(part)  # type: ignore[attr-defined]
        digest.feed(part[:n])
        if n != len(part):
            return False
    return True


def load(read: ReadObject) -> Any:
    """Unpickle an object read by :func:`read_object` (only once its digest is checked)."""
    return _sets.Unpickler(read.stream, read.buffers).load()


def _layout(raw: BinaryIO) -> tuple[int, list[int]] | None:
    """Stream length and the length of each out-of-band buffer, from the trailer; None
    for a plain pickle stream or a trailer that does not add up."""
    size = os.fstat(raw.fileno()).st_size
    if size < _TAIL.size:
        return None
    raw.seek(size - _TAIL.size)
    stream_length, count, magic = _TAIL.unpack(raw.read(_TAIL.size))
    entries_size = count * _ENTRY.size
    if magic != MAGIC or entries_size + _TAIL.size > size:
        return None
    raw.seek(size - _TAIL.size - entries_size)
    return _parse_trailer(raw.read(entries_size + _TAIL.size), size)


def _parse_trailer(trailer: bytes, size: int) -> tuple[int, list[int]] | None:
    """The layout that ``trailer`` (the entry table and tail of an object of ``size``
    bytes) gives; None if it does not add up."""
    if len(trailer) < _TAIL.size:
        return None
    stream_length, count, magic = _TAIL.unpack(trailer[-_TAIL.size:])
    if magic != MAGIC or len(trailer) != count * _ENTRY.size + _TAIL.size:
        return None
    lengths = [length for (length,) in _ENTRY.iter_unpack(trailer[:-_TAIL.size])]
    if stream_length + sum(lengths) + len(trailer) != size:
        return None
    return stream_length, lengths


def _allocate(n: int) -> Any:
    """Writable memory for one buffer: on Linux an anonymous private mapping advised to
    use huge pages (several times fewer page faults than a bytearray for large arrays)."""
    if n >= _PARALLEL_FROM and hasattr(mmap, "MADV_HUGEPAGE"):
        memory = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE)
        memory.madvise(mmap.MADV_HUGEPAGE)
        return memory
    return bytearray(n)


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
