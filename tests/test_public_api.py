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


def test_a_run_with_nothing_to_do_imports_no_logging_yet_warnings_still_show(tmp_path):
    """In a new process, a warm run loads neither :mod:`logging` nor
    ``concurrent.futures`` (kazeflow's logger is looked up on first use), and a warning
    logged later, with logging never configured, still reaches stderr."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent("""
        import sys
        from kazeflow import Flow, asset

        SETTINGS = dict(rate=2)  # a module-level value a call computes

        @asset
        def one():
            return 1

        @asset
        def two(one):
            return one + SETTINGS["rate"]

        if __name__ == "__main__":
            flow = Flow(["one"], store=sys.argv[1])
            flow.run()
            lazy = ("logging", "concurrent.futures")
            print(sorted(m for m in lazy if m in sys.modules))
            if sys.argv[2] == "warn":
                Flow(["two"], store=sys.argv[1]).run()
                print(sorted(m for m in lazy if m in sys.modules))
    """))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, str(script), str(tmp_path / "s"), *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    run("quiet")  # materializes `one`: assets ran, logging may load
    warm = run("quiet")
    assert warm.stdout.splitlines() == ["[]"] and warm.stderr == ""
    warned = run("warn")
    assert warned.stdout.splitlines() == ["[]", "['concurrent.futures', 'logging']"]
    assert "asset 'two'" in warned.stderr and "SETTINGS" in warned.stderr, warned.stderr
