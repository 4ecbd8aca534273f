"""Calling one asset: in this process (values in, value out) or in a worker process
(data versions in, data version out), with one outcome the scheduler records either way."""

from __future__ import annotations

import contextvars
import time
from typing import Any

from kazeflow.assets import Asset
from kazeflow.config import Config
from kazeflow.context import AssetContext
from kazeflow.errors import (
    IntegrityError,
    ObjectNotFoundError,
    RecursiveRunError,
    UnpicklableResultError,
)
from kazeflow.running._gcpause import user_code
from kazeflow.store import objects_at
from kazeflow.store.interface import Objects, ObjectWriting, StoredObject

#: The asset being materialized in this thread (guards against recursive runs).
current_asset: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kazeflow_current_asset", default=None)


class Outcome:
    """What calling an asset gave: a stored result or an error (picklable when remote).

    A plain slotted class (as ``running._runstate``'s records, for the same reason).
    """

    __slots__ = ("started", "ended", "data_version", "size", "is_new", "metadata", "error",
                 "exc", "value", "writing", "pending", "missing_upstream")

    def __init__(self, started: float, ended: float = 0.0, data_version: str | None = None,
                 size: int | None = None, is_new: bool = False,
                 metadata: dict[str, Any] | None = None, error: str | None = None,
                 exc: BaseException | None = None, value: Any = None,
                 writing: ObjectWriting | None = None,
                 missing_upstream: str | None = None) -> None:
        self.started = started
        self.ended = ended
        self.data_version = data_version
        self.size = size
        self.is_new = is_new
        self.metadata: dict[str, Any] = {} if metadata is None else metadata
        self.error = error  # a traceback or message when the asset failed
        self.exc = exc
        #: In-process only: the value and its object, being written (hash and fsync may
        #: still run) until :meth:`finish_write`, then written but not committed.
        self.value = value
        self.writing = writing
        self.pending: StoredObject | None = None
        #: Remote only: an upstream whose object could not be loaded (missing or corrupt).
        self.missing_upstream = missing_upstream

    def finish_write(self) -> None:
        """Wait for the object being written; fill in its data version and size. Safe to
        call again and from another thread.

        Raises:
            StoreError: the store could not be written.
        """
        if self.writing is not None and self.pending is None:
            pending = self.writing.finish()  # thread-safe: the same for every caller
            self.data_version, self.size, self.is_new = \
                pending.data_version, pending.size, pending.is_new
            self.ended = self.writing.finished_at
            self.pending = pending  # last: once set, the fields above are


def call_local(item: Asset, kwargs: dict[str, Any], config: Config | None, run_id: str,
               objects: Objects) -> Outcome:
    """Call ``item`` with its upstream values and start writing its result (the
    outcome's :meth:`~Outcome.finish_write` waits for it; nothing is committed)."""
    context = AssetContext(item.name, run_id)
    started = time.time()
    failed = _call(item, kwargs, config, context)
    if failed is not None:
        return failed
    value = kwargs.pop("__value__")
    try:
        writing = objects.start_write(value)
    except UnpicklableResultError as exc:
        return Outcome(started, time.time(), error=f"asset {item.name!r}: {exc}", exc=exc)
    return Outcome(started, time.time(), metadata=context.metadata, value=value,
                   writing=writing)


def call_remote(payload: bytes, name: str, inputs: dict[str, str], run_id: str,
                objects_location: str, same_host: bool = True) -> Outcome:
    """In a worker process: load the upstreams from the store (hash-verified), call the
    asset, and make its result durable in the store; only its data version goes back.

    ``payload`` is the cloudpickle of (asset, config), the asset without its upstream
    asset objects (see :func:`remote_payload`).
    """
    import cloudpickle

    item, config = cloudpickle.loads(payload)
    objects = objects_at(objects_location)
    kwargs = {}
    for upstream, data_version in inputs.items():
        try:
            kwargs[upstream] = objects.load(data_version)
        except (IntegrityError, ObjectNotFoundError):
            return Outcome(time.time(), missing_upstream=upstream)
    context = AssetContext(name, run_id)
    started = time.time()
    failed = _call(item, kwargs, config, context)
    if failed is not None:
        failed.exc = _picklable(failed.exc)
        return failed
    value = kwargs.pop("__value__")
    try:
        pending = objects.write(value)
    except UnpicklableResultError as exc:
        return Outcome(started, time.time(), error=f"asset {name!r}: {exc}",
                       exc=_picklable(exc))
    # Durable before the parent records it: here, or by the parent's one syncfs for
    # its whole batch (Linux), which spares each worker two fsyncs per object; that
    # reaches only the parent's own machine's disks (``same_host``).
    objects.commit([pending], durable=not (same_host and objects.can_sync_later))
    return Outcome(started, time.time(), pending.data_version, pending.size, pending.is_new,
                   context.metadata)


def remote_payload(item: Asset, config: Config | None) -> bytes:
    """The asset function and its config as :func:`call_remote` takes them."""
    import dataclasses

    import cloudpickle

    return cloudpickle.dumps((dataclasses.replace(item, dep_assets=()), config), protocol=5)


def _call(item: Asset, kwargs: dict[str, Any], config: Config | None,
          context: AssetContext) -> Outcome | None:
    """Call the function; its value goes to ``kwargs["__value__"]``, a failure returns."""
    if item.takes_config:
        kwargs["config"] = config
    if item.takes_context:
        kwargs["context"] = context
    started = time.time()
    token = current_asset.set(item.name)
    try:
        with user_code():
            value = item.fn(**kwargs)
    except Exception as exc:
        import traceback  # only for a failure

        return Outcome(started, time.time(), error=traceback.format_exc(), exc=exc)
    finally:
        current_asset.reset(token)
    kwargs.clear()
    kwargs["__value__"] = value
    return None


def _picklable(exc: BaseException | None) -> BaseException | None:
    """``exc`` itself if it survives pickling, else a RuntimeError with its text."""
    if exc is None:
        return None
    import pickle  # in worker processes only

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def check_not_inside_asset() -> None:
    """Raise when called from inside an asset that is being materialized."""
    name = current_asset.get()
    if name is not None:
        raise RecursiveRunError(
            f"asset {name!r} called Flow.run while being materialized; declare what it "
            "needs as upstream assets (deps) instead of running a flow inside it")
