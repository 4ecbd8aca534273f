"""The public surface: exactly the names in __all__, each documented."""

import importlib

import pytest

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


def test_every_error_class_kazeflow_defines_derives_from_the_root():
    import inspect
    import pkgutil

    modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(
        kazeflow.__path__, "kazeflow.") if not m.name.endswith("__main__")]
    defined = {obj for module in modules for _, obj in inspect.getmembers(module, inspect.isclass)
               if issubclass(obj, Exception) and obj.__module__ == module.__name__
               and not obj.__name__.startswith("_")}  # private control flow stays inside
    assert defined and all(issubclass(e, kazeflow.KazeflowError) for e in defined), [
        e for e in defined if not issubclass(e, kazeflow.KazeflowError)]


def test_import_kazeflow_loads_the_engine_and_the_store_on_first_use():
    import subprocess
    import sys

    probe = ("import sys, kazeflow\n"
             "before = {m for m in sys.modules if m.startswith('kazeflow.')}\n"
             "kazeflow.Flow, kazeflow.Store\n"
             "after = {m for m in sys.modules if m.startswith('kazeflow.')}\n"
             "print(sorted(before)); print('kazeflow.flow' in after, 'kazeflow.store' in after)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == str(["kazeflow.assets", "kazeflow.config", "kazeflow.context",
                          "kazeflow.errors", "kazeflow.results"])
    assert out[1] == "True True"
    assert set(kazeflow.__all__) <= set(dir(kazeflow))
    with pytest.raises(AttributeError, match="no attribute 'Flw'"):
        kazeflow.Flw  # noqa: B018
