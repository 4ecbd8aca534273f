"""kazeflow: a persistent, incremental asset materializer.

Declare assets with :func:`asset`, group them in a :class:`Flow` and run it: results are
stored content-addressed, every materialization is recorded, and only what is stale runs.

``Flow`` and ``Store`` load the engine and the store on first use, so that importing
kazeflow (the command line's ``--help``, a module that only declares assets) stays cheap.
"""

from typing import TYPE_CHECKING, Any

from kazeflow.assets import Asset, asset
from kazeflow.config import Config
from kazeflow.context import AssetContext
from kazeflow.errors import (
    ConfigError,
    CycleError,
    DefinitionError,
    DuplicateAssetError,
    FlowRunError,
    IntegrityError,
    KazeflowError,
    NotFreshError,
    ObjectNotFoundError,
    RecursiveRunError,
    SchemaVersionError,
    SerializationError,
    StoreError,
    UnknownAssetError,
    UnpicklableResultError,
    WorkerDiedError,
)
from kazeflow.results import AssetStatus, Materialization, Reason, Run, RunResult

if TYPE_CHECKING:
    from kazeflow.flow import Flow
    from kazeflow.store import Store

__version__ = "0.1.0"

__all__ = [
    "Asset",
    "AssetContext",
    "AssetStatus",
    "Config",
    "ConfigError",
    "CycleError",
    "DefinitionError",
    "DuplicateAssetError",
    "Flow",
    "FlowRunError",
    "IntegrityError",
    "KazeflowError",
    "Materialization",
    "NotFreshError",
    "ObjectNotFoundError",
    "Reason",
    "RecursiveRunError",
    "Run",
    "RunResult",
    "SchemaVersionError",
    "SerializationError",
    "Store",
    "StoreError",
    "UnknownAssetError",
    "UnpicklableResultError",
    "WorkerDiedError",
    "asset",
]

#: Public names loaded on first use: name → its module.
_LAZY = {"Flow": "kazeflow.flow", "Store": "kazeflow.store"}


if not TYPE_CHECKING:  # type checkers see the imports above
    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'kazeflow' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
