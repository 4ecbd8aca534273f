"""``Flow.load`` returns what the flow would produce now, and a Flow carries its config."""

from __future__ import annotations

import pytest

from kazeflow import Config, ConfigError, Flow, NotFreshError, UnknownAssetError, asset
from kazeflow.assets import registry


def project(factor: int) -> list:
    """raw → scaled(config: factor)."""
    registry.clear()

    @asset
    def raw():
        return [1, 2, 3]

    @asset(config_schema=Config)
    def scaled(config, raw):
        return [x * config.get("factor", factor) for x in raw]

    return [raw, scaled]


def test_load_gives_the_current_materialization_or_says_why_not(store):
    flow = Flow(["scaled"], assets=project(2), store=store)
    with pytest.raises(NotFreshError, match=r"'scaled' is missing \(never materialized\).*"
                                            r"Store.load\('scaled'\)"):
        flow.load("scaled")
    flow.run(config={"scaled": {"factor": 10}})
    flow.run(config={"scaled": {"factor": 3}})
    assert flow.load("scaled", config={"scaled": {"factor": 10}}) == [10, 20, 30]  # older
    assert flow.load("scaled", config={"scaled": {"factor": 3}}) == [3, 6, 9]
    with pytest.raises(NotFreshError, match="'scaled' is stale") as info:
        flow.load("scaled")  # its default config never ran
    assert info.value.status.state == "stale"
    assert store.load("scaled") == [3, 6, 9]  # the newest by name, as before
    with pytest.raises(UnknownAssetError, match="load\\(\\) names an"):
        flow.load("nope")


def test_two_projects_sharing_a_store_never_load_each_others_values(store):
    Flow(["scaled"], assets=project(2), store=store).run()
    other = Flow(["scaled"], assets=project(5), store=store)  # other code, same names
    assert other.load("raw") == [1, 2, 3]  # the same code: the same materialization
    with pytest.raises(NotFreshError, match="'scaled' is stale \\(code changed\\)"):
        other.load("scaled")
    other.run()
    assert other.load("scaled") == [5, 10, 15]
    assert Flow(["scaled"], assets=project(2), store=store).load("scaled") == [2, 4, 6]


def test_a_flow_carries_its_config_for_run_status_and_load(store):
    settings = {"scaled": {"factor": 7}}
    flow = Flow(["scaled"], assets=project(2), store=store, config=settings)
    settings["scaled"]["factor"] = 100  # the flow keeps its own copy
    assert flow.run()["scaled"] == [7, 14, 21]
    assert {n: s.state for n, s in flow.status().items()} == {"raw": "fresh",
                                                              "scaled": "fresh"}
    assert flow.load("scaled") == [7, 14, 21]
    assert flow.status(config={})["scaled"].state == "stale"  # a given config wins
    assert "config={'scaled': {'factor': 7}}" in repr(flow)


def test_bad_flow_config_is_refused_when_the_flow_is_made(store):
    with pytest.raises(ConfigError, match="'scald', which is not an asset.*did you mean"):
        Flow(["scaled"], assets=project(2), store=store, config={"scald": {"factor": 1}})
    assert not store.exists()  # refused before the store was touched
