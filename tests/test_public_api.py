"""The public surface: exactly the names in __all__, each documented."""

import kazeflow
from kazeflow.assets import asset
from kazeflow.config import Config
from kazeflow.flow import Flow

PUBLIC = {
    "Asset", "AssetContext", "AssetStatus", "Config", "ConfigError", "CycleError",
    "DefinitionError", "DuplicateAssetError", "Flow", "FlowRunError", "IntegrityError",
    "KazeflowError", "Materialization", "NotFreshError", "ObjectNotFoundError", "Reason",
    "RecursiveRunError",
    "Run", "RunResult", "SchemaVersionError", "SerializationError", "Store", "StoreError",
    "UnknownAssetError", "UnpicklableResultError", "WorkerDiedError", "asset",
}


def test_all_is_exactly_the_public_names_sorted():
    assert set(kazeflow.__all__) == PUBLIC
    assert list(kazeflow.__all__) == sorted(kazeflow.__all__)


def test_every_public_name_has_a_docstring():
    for name in kazeflow.__all__:
        assert getattr(kazeflow, name).__doc__, name


def test_seed_imports_are_the_reexported_objects():
    assert kazeflow.asset is asset and kazeflow.Flow is Flow and kazeflow.Config is Config


def test_every_error_derives_from_the_root():
    for name in kazeflow.__all__:
        obj = getattr(kazeflow, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, kazeflow.KazeflowError), name
    assert issubclass(kazeflow.ConfigError, ValueError)
