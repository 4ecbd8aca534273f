"""kazeflow: a persistent, incremental asset materializer.

Declare assets with :func:`asset`, group them in a :class:`Flow` and run it: results are
stored content-addressed, every materialization is recorded, and only what is stale runs.
"""

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
from kazeflow.flow import Flow
from kazeflow.results import AssetStatus, Materialization, Reason, Run, RunResult
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
