"""Flow.status(): fresh / stale / missing with reasons as data, agreeing with run()."""

from kazeflow import Config, Flow, asset
from kazeflow.assets import registry


def pipeline(factor_default=2, with_total=True):
    @asset
    def raw():
        return [1, 2, 3]

    @asset(config_schema=Config)
    def scaled(config, raw):
        return [x * config.get("factor", factor_default) for x in raw]

    if with_total:
        @asset
        def total(scaled):
            return sum(scaled)


def states(flow, **kwargs):
    return {name: s.state for name, s in flow.status(**kwargs).items()}


def test_never_materialized_then_fresh(any_store):
    pipeline()
    flow = Flow(["total"], store=any_store)
    statuses = flow.status()
    assert {n: s.state for n, s in statuses.items()} == {
        "raw": "missing", "scaled": "missing", "total": "missing"}  # downstream too
    assert {n: [r.kind for r in s.reasons] for n, s in statuses.items()} == {
        n: ["never_materialized"] for n in ("raw", "scaled", "total")}
    assert flow.runs() == []  # status executes nothing and records no run
    flow.run()
    assert states(flow) == {"raw": "fresh", "scaled": "fresh", "total": "fresh"}
    fresh = flow.status()["total"]
    assert fresh.last is not None and fresh.cache_key == fresh.last.cache_key


def test_config_change_is_explained_with_old_and_new_config(any_store):
    pipeline()
    flow = Flow(["total"], store=any_store)
    flow.run()
    statuses = flow.status(config={"scaled": {"factor": 5}})
    assert states(flow, config={"scaled": {"factor": 5}}) == {
        "raw": "fresh", "scaled": "stale", "total": "stale"}
    reason = statuses["scaled"].reasons[0]
    assert reason.kind == "config_changed" and str(reason) == "config changed"
    assert reason.details == {"old_config": {}, "new_config": {"factor": 5}}
    assert [r.kind for r in statuses["total"].reasons] == ["upstream_stale"]


def test_upstream_change_names_the_upstream_and_its_versions(any_store):
    pipeline()
    flow = Flow(["total"], store=any_store)
    flow.run()
    old_raw = flow.history("raw")[0].data_version
    Flow(["scaled"], store=any_store).run(config={"scaled": {"factor": 3}})
    statuses = flow.status(config={"scaled": {"factor": 3}})
    reason = statuses["total"].reasons[0]
    assert statuses["scaled"].state == "fresh" and statuses["total"].state == "stale"
    assert reason.kind == "upstream_changed" and str(reason) == "upstream 'scaled' changed"
    assert reason.details["upstream"] == "scaled"
    assert reason.details["new_data_version"] == flow.history("scaled")[0].data_version
    assert flow.history("raw")[0].data_version == old_raw


def test_code_change_reason_carries_hashes_and_a_diff(any_store):
    pipeline()
    flow = Flow(["total"], store=any_store)
    flow.run()

    registry.clear()
    pipeline(with_total=False)

    @asset
    def total(scaled):
        return sum(scaled) + 1

    reason = Flow(["total"], store=any_store).status()["total"].reasons[0]
    assert reason.kind == "code_changed"
    assert reason.details["old_code_hash"] != reason.details["new_code_hash"]
    assert any(name.endswith("total") for name in reason.details["changed"])
    assert "-    return sum(scaled)\n" in reason.details["diff"]
    assert "+    return sum(scaled) + 1\n" in reason.details["diff"]


def test_missing_object_is_reported_and_rematerialized(any_store):
    pipeline()
    flow = Flow(["total"], store=any_store)
    flow.run()
    record = flow.history("scaled")[0]
    any_store.objects.path(record.data_version).unlink()
    statuses = flow.status()
    assert statuses["scaled"].state == "missing"
    assert statuses["scaled"].reasons[0].kind == "object_missing"
    assert str(statuses["scaled"].reasons[0]) == "stored object missing or corrupt"
    result = flow.run()
    assert result.materialized == ("scaled",) and result.reused == ("raw", "total")
    assert any_store.objects.path(record.data_version).exists()


def test_status_agrees_with_what_run_then_does(any_store):
    pipeline()
    flow = Flow(["total"], store=any_store)
    flow.run()
    for config in ({"scaled": {"factor": 4}}, {"scaled": {"factor": 4}}, None):
        predicted = states(flow, config=config)
        result = flow.run(config=config)
        assert {n for n, s in predicted.items() if s == "fresh"} == set(result.reused)
        assert {n for n, s in predicted.items() if s != "fresh"} == set(result.materialized)
