"""Planning: upstream closure, topological order, cycles and unknown names."""

import pytest

from kazeflow import CycleError, Flow, UnknownAssetError, asset


def test_plan_is_selection_plus_upstream_in_order():
    @asset
    def a():
        return 1

    @asset
    def b(a):
        return a

    @asset
    def c(a, b):
        return a + b

    @asset
    def unrelated():
        return 0

    assert Flow(["c"]).asset_names == ("a", "b", "c")
    assert set(Flow().asset_names) == {"a", "b", "c", "unrelated"}
    assert Flow(["b"]).asset_names == ("a", "b")


def test_cycles_are_reported_with_their_path():
    @asset
    def x(z):
        return 1

    @asset
    def y(x):
        return 1

    @asset
    def z(y):
        return 1

    with pytest.raises(CycleError) as info:
        Flow(["z"])
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {"x", "y", "z"}
    assert " -> ".join(cycle) in str(info.value)


def test_unknown_names_suggest_the_closest():
    @asset
    def processed_data():
        return 1

    with pytest.raises(UnknownAssetError, match="did you mean 'processed_data'") as info:
        Flow(["procesed_data"])
    assert info.value.suggestions == ("processed_data",)

    @asset
    def report(proccessed_data):
        return 1

    with pytest.raises(UnknownAssetError,
                       match="asset 'report' depends on an unknown asset 'proccessed_data'"):
        Flow(["report"])
