"""@asset declarations and the registry."""

import dataclasses
import functools
import inspect

import pytest

from kazeflow import Config, DefinitionError, DuplicateAssetError, Flow, asset
from kazeflow.assets import registry


def test_bare_and_configured_decorators():
    @asset
    def raw_data():
        """Rows as they come."""
        return [1]

    @asset(name="clean", deps=[raw_data], description="cleaned", cache=False)
    def cleaning(raw_data):
        return raw_data

    assert raw_data.name == "raw_data" and raw_data.deps == ()
    assert raw_data.description == "Rows as they come."
    assert cleaning.name == "clean" and cleaning.deps == ("raw_data",)
    assert cleaning.cache is False and cleaning.description == "cleaned"
    assert cleaning([3]) == [3]  # an asset still calls like its function
    assert set(registry.snapshot()) == {"raw_data", "clean"}


def test_a_decorated_asset_has_every_field_its_constructor_gives():
    """@asset fills the frozen dataclass directly (no per-field __setattr__): the result
    must be the asset the constructor builds, field for field, and stay frozen."""
    @asset(config_schema=Config, code_version="v2", pool="gpu", reads=["params.json"],
           track_libraries=True, cache=False)
    def model(config, context, features):
        """Fits."""

    built = dataclasses.replace(model)  # through __init__
    assert {f.name for f in dataclasses.fields(model)} == set(vars(model))
    assert repr(built) == repr(model) and vars(built) == vars(model)
    assert model.inputs == ("features",) and model.takes_config and model.takes_context
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.name = "other"  # type: ignore[misc]


def test_description_is_the_docstrings_first_non_blank_line():
    @asset
    def indented():
        """

        Starts on the third line.
            More detail.
        """

    @asset
    def blank():
        """   """

    assert indented.description == "Starts on the third line."
    assert blank.description is None  # a blank docstring describes nothing


def test_parameters_name_the_upstreams_without_deps():
    @asset(config_schema=Config)
    def joined(config, context, left, right):
        return left + right

    assert joined.deps == ("left", "right") and joined.inputs == ("left", "right")
    assert joined.takes_config and joined.takes_context


def test_deps_that_are_not_parameters_order_the_run(store):
    order = []

    @asset
    def side_effect():
        order.append("side_effect")
        return 1

    @asset(deps=["side_effect"])
    def report():
        order.append("report")
        return 2

    Flow(["report"], store=store).run()
    assert order == ["side_effect", "report"]


def test_two_functions_claiming_one_name_name_both_definitions():
    @asset(name="table")
    def first():
        return 1

    with pytest.raises(DuplicateAssetError) as info:
        @asset(name="table")
        def second():
            return 2

    message = str(info.value)
    assert "'table' is defined twice" in message
    assert f"{__name__}:{first.fn.__code__.co_firstlineno}" in message
    assert "second" in message and "first" in message
    assert len(info.value.definitions) == 2


def test_redefining_the_same_function_replaces_it():
    def define(value):
        @asset
        def cell():
            return value
        return cell

    define(1)
    new = define(2)  # same module and qualname: a re-run notebook cell
    assert registry.snapshot()["cell"] is new


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "my-data"}, "must be a valid Python identifier.*try 'my_data'"),
    ({"name": "class"}, "must be a valid Python identifier"),
    ({"deps": "raw"}, "deps must be a list of names"),
    ({"deps": [3]}, "deps items must be asset names or assets"),
    ({"code_version": ""}, "code_version must be a non-empty string"),
    ({"config_schema": dict}, "config_schema must be Config or a subclass"),
])
def test_bad_declarations_are_refused(kwargs, message):
    with pytest.raises(DefinitionError, match=message):
        @asset(**kwargs)
        def thing():
            return 1


def test_config_parameter_requires_a_schema():
    with pytest.raises(DefinitionError, match="takes a 'config' parameter but declares no"):
        @asset
        def needs(config):
            return 1


def test_parameter_missing_from_explicit_deps_is_refused():
    with pytest.raises(DefinitionError, match="parameter 'other' is not an upstream"):
        @asset(deps=["raw"])
        def mixed(raw, other):
            return 1


@pytest.mark.parametrize("source", [
    "def star(*parts):\n    return 1",
    "def star(**named):\n    return 1",
    "def star(raw, /):\n    return 1",
])
def test_star_args_and_positional_only_are_refused(source):
    namespace: dict = {}
    exec(source, namespace)
    with pytest.raises(DefinitionError, match="asset 'star' .*must be a plain named parameter"):
        asset(namespace["star"])


def test_parameters_are_those_the_call_sees():
    def keyword_only(raw, *, other):
        return raw + other

    assert asset(keyword_only).inputs == ("raw", "other")

    def body(raw, scale):
        return raw * scale

    @functools.wraps(body)
    def wrapper(value):  # shows body's signature, as inspect.signature says
        return value

    assert asset(wrapper).inputs == ("raw", "scale")

    def shown(value):
        return value

    shown.__signature__ = inspect.signature(body)  # type: ignore[attr-defined]
    assert asset(shown).inputs == ("raw", "scale")


@pytest.mark.parametrize("reserved", ["config", "context"])
def test_an_asset_named_like_an_injected_parameter_is_rejected(reserved):
    def fn():
        return 1

    with pytest.raises(DefinitionError, match=f"'{reserved}'.*reserved.*rename"):
        asset(name=reserved)(fn)


def test_an_asset_name_longer_than_the_store_holds_is_rejected():
    def fn():
        return 1

    asset(name="a" * 255)(fn)
    with pytest.raises(DefinitionError, match="256 characters long.*at most 255"):
        asset(name="b" * 256)(fn)
