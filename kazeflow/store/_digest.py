"""The SHA-256 of an object's bytes, computed alongside the I/O: fed in slices that fit
the CPU cache, and from a helper thread once an object is large (the hash then reads
the bytes back from the page cache while the writer goes on)."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for a large object only
    import queue

#: SHA-256 (OpenSSL, SHA-NI) fed slices that fit the L1 cache ran ≈ 20% faster than fed
#: one 256 MiB buffer at once on one VM (0.19 s against 0.24 s); on another the two were
#: within a few percent (0.15 s), so large buffers are fed in slices.
_HASH_SLICE = 64 << 10
#: Bytes read back and hashed at once by the writer's hash thread, in one call each: the
#: thread needs the GIL between calls, and a downstream asset running Python code at the
#: same time (early start) hands it over only every 5 ms (sys.getswitchinterval). 256 MiB
#: took 20 s in 64 KiB calls against a busy Python thread, 1.6 s in 2 MiB ones, 0.9 s in
#: 4 MiB ones (0.19 s each way alone); the buffer counts in the writer's peak memory.
_READ_BACK = 2 << 20


def update(sha: Any, data: Any) -> None:
    """``sha.update(data)``, a large buffer in slices of ``_HASH_SLICE`` bytes."""
    view = memoryview(data)
    if view.nbytes <= _HASH_SLICE:
        sha.update(view)
        return
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")  # contiguous: pickled buffers and file chunks are
    for start in range(0, view.nbytes, _HASH_SLICE):
        sha.update(view[start:start + _HASH_SLICE])


class Background:
    """``call(*args)`` in a helper thread; :meth:`result` waits and re-raises its error
    (at every call)."""

    def __init__(self, name: str, call: Callable[..., Any], *args: Any) -> None:
        self._error: BaseException | None = None
        self.done_at = 0.0  # time.time() when the call returned
        self._thread = threading.Thread(target=self._run, args=(call, args), name=name,
                                        daemon=True)
        self._thread.start()

    def _run(self, call: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            call(*args)
        except BaseException as exc:  # handed to whoever waits
            self._error = exc
        self.done_at = time.time()

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


class Digest:
    """SHA-256 fed in order; inline until :meth:`go_parallel`, then in a helper thread
    (hashlib releases the GIL), so hashing a large buffer overlaps reading or writing it.

    Fed data must stay unchanged until :meth:`hexdigest` returns; fed file ranges are
    read back in the helper thread (see :meth:`feed_file`).
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._queue: queue.SimpleQueue[Any] | None = None
        self._worker: Background | None = None
        self._closed = False
        self.done_at = 0.0  # when the helper thread had hashed everything (time.time())

    def feed(self, data: Any) -> None:
        if self._queue is None:
            update(self._sha, data)
        else:
            self._queue.put(data)

    def feed_file(self, fd: int, start: int, end: int) -> None:
        """Hash bytes ``start``..``end`` of the file ``fd``, written already, read back
        in the helper thread (:meth:`go_parallel` first)."""
        assert self._queue is not None
        self._queue.put((fd, start, end))

    @property
    def parallel(self) -> bool:
        return self._queue is not None

    def go_parallel(self) -> None:
        if self._queue is None:
            import queue

            self._queue = queue.SimpleQueue()
            self._worker = Background("kazeflow-sha256", self._drain, self._queue)

    def close(self) -> None:
        """Nothing more will be fed: the helper thread ends once it has hashed it all."""
        if self._queue is not None and not self._closed:
            self._closed = True
            self._queue.put(None)

    def _drain(self, pending: queue.SimpleQueue[Any]) -> None:
        buffer = None
        while (data := pending.get()) is not None:
            if type(data) is tuple:
                if buffer is None:
                    buffer = memoryview(bytearray(_READ_BACK))
                update_from_file(self._sha, buffer, *data)
            else:
                update(self._sha, data)

    def hexdigest(self) -> str:
        """The digest of everything fed; raises what failed in the helper thread."""
        if self._worker is not None:
            self.close()
            self._worker.result()  # until it succeeds, each call raises its error
            self.done_at = self._worker.done_at
            self._queue = self._worker = None
        return self._sha.hexdigest()


def update_from_file(sha: Any, buffer: memoryview, fd: int, start: int, end: int) -> None:
    """Hash bytes ``start``..``end`` of the file ``fd``, read through ``buffer``."""
    while start < end:
        n = os.preadv(fd, [buffer[:min(len(buffer), end - start)]], start)
        if n == 0:
            raise OSError(errno.EIO, "the file being written shrank under us")
        sha.update(buffer[:n])  # one call: see _READ_BACK
        start += n


