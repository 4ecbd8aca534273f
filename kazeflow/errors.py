"""The kazeflow error hierarchy.

Every error kazeflow raises on purpose derives from :class:`KazeflowError`::

    KazeflowError
    ├── DefinitionError            an asset or flow is declared wrongly
    │   ├── DuplicateAssetError    two functions claim one asset name
    │   ├── UnknownAssetError      a name that no asset has
    │   ├── CycleError             dependencies that loop
    │   └── RecursiveRunError      an asset that calls Flow.run
    ├── ConfigError (ValueError)   config that does not fit its schema
    ├── SerializationError         a result that cannot be stored
    │   └── UnpicklableResultError
    ├── StoreError                 the store cannot be opened, read or written
    │   ├── SchemaVersionError     the database is newer than this kazeflow
    │   ├── IntegrityError         an object's bytes do not match its hash
    │   └── ObjectNotFoundError    no such materialization or object
    │       └── NotFreshError      Flow.load of an asset that is stale or missing
    ├── FlowRunError               a run in which some asset failed (carries .result)
    └── WorkerDiedError            a worker process died while running an asset
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kazeflow.results import AssetStatus, RunResult


class KazeflowError(Exception):
    """Root of every error kazeflow raises on purpose."""


class DefinitionError(KazeflowError):
    """An asset or a flow is declared wrongly."""


class DuplicateAssetError(DefinitionError):
    """Two different functions claim the same asset name."""

    def __init__(self, message: str, *, asset_name: str, definitions: Sequence[str]) -> None:
        super().__init__(message)
        self.asset_name = asset_name
        self.definitions = tuple(definitions)


class UnknownAssetError(DefinitionError, KeyError):
    """A name that no known asset has."""

    def __init__(self, message: str, *, asset_name: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.asset_name = asset_name
        self.suggestions = tuple(suggestions)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class CycleError(DefinitionError):
    """Asset dependencies form a cycle."""

    def __init__(self, message: str, *, cycle: Sequence[str]) -> None:
        super().__init__(message)
        self.cycle = tuple(cycle)


class RecursiveRunError(DefinitionError):
    """An asset called ``Flow.run`` while being materialized."""


class ConfigError(KazeflowError, ValueError):
    """Config that does not fit its asset's schema."""

    def __init__(self, message: str, *, asset_name: str | None = None, key: str | None = None):
        super().__init__(message)
        self.asset_name = asset_name
        self.key = key


class SerializationError(KazeflowError):
    """A value cannot be serialized into the store."""


class UnpicklableResultError(SerializationError):
    """An asset returned a value that cannot be pickled."""

    def __init__(self, message: str, *, asset_name: str | None, type_name: str) -> None:
        super().__init__(message)
        self.asset_name = asset_name
        self.type_name = type_name


class StoreError(KazeflowError):
    """The store cannot be opened, read or written."""

    def __init__(self, message: str, *, path: Any = None) -> None:
        super().__init__(message)
        self.path = path


class SchemaVersionError(StoreError):
    """The metadata database was written by a newer kazeflow."""


class IntegrityError(StoreError):
    """A stored object's bytes do not match its recorded hash."""

    def __init__(self, message: str, *, data_version: str, path: Any = None) -> None:
        super().__init__(message, path=path)
        self.data_version = data_version


class ObjectNotFoundError(StoreError, LookupError):
    """A materialization or object that the store does not have."""


class NotFreshError(ObjectNotFoundError):
    """``Flow.load`` of an asset that is stale or missing: no materialization matches
    its current code, config and upstreams (``.status`` says why)."""

    def __init__(self, message: str, *, status: AssetStatus) -> None:
        super().__init__(message)
        self.status = status


class FlowRunError(KazeflowError):
    """Some assets of a run failed; ``__cause__`` is the first failing asset's exception
    (in plan order), so an uncaught failure shows its traceback.

    Attributes:
        result: the partial :class:`RunResult` (what did succeed).
        errors: asset name → the exception it raised.
    """

    def __init__(self, message: str, *, result: RunResult,
                 errors: Mapping[str, BaseException] | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.errors = dict(errors or {})


class WorkerDiedError(KazeflowError):
    """A worker process died (segfault, ``os._exit``, a signal) while running an asset."""

    def __init__(self, message: str, *, exitcode: int | None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


def last_line(error: str | None) -> str:
    """The last line of a recorded error text (a traceback ends with the exception)."""
    lines = (error or "").strip().splitlines()
    return lines[-1].strip() if lines else ""
