"""Planning: upstream closure, topological order, cycles and unknown names."""

import graphlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kazeflow import CycleError, Flow, UnknownAssetError, asset
from kazeflow.assets import Asset
from kazeflow.running._plan import plan


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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 11), max_size=4), min_size=1, max_size=12),
       st.lists(st.integers(0, 11), max_size=3))
def test_the_plan_is_a_topological_order_of_the_closure_or_names_a_real_cycle(
        edges, selected):
    """Against graphlib as the oracle: the plan holds the selection and everything
    upstream, each asset after its deps; a graph that loops raises CycleError with a
    path in which each asset depends on the next."""
    names = [f"n{i}" for i in range(len(edges))]
    universe = {}
    for name, targets in zip(names, edges, strict=True):
        deps = tuple(dict.fromkeys(f"n{d % len(edges)}" for d in targets))
        universe[name] = Asset(name=name, fn=lambda: None, deps=deps, inputs=deps)
    selection = [names[i % len(names)] for i in selected] or None
    closure, pending = set(), list(selection or names)
    while pending:
        name = pending.pop()
        if name not in closure:
            closure.add(name)
            pending.extend(universe[name].deps)
    try:
        graphlib.TopologicalSorter({n: universe[n].deps for n in closure}).prepare()
        loops = False
    except graphlib.CycleError:
        loops = True
    if loops:
        with pytest.raises(CycleError) as info:
            plan(universe, selection)
        cycle = info.value.cycle
        assert cycle[0] == cycle[-1] and len(cycle) >= 2
        assert all(after in universe[before].deps
                   for before, after in zip(cycle, cycle[1:], strict=False))
        return
    order = [a.name for a in plan(universe, selection)]
    assert sorted(order) == sorted(closure)
    position = {name: i for i, name in enumerate(order)}
    assert all(position[dep] < position[name] for name in order
               for dep in universe[name].deps)
