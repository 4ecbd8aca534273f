from kazeflow import Config, Flow, asset


def test_quickstart_shape_on_both_backends(any_store):
    @asset
    def raw_data():
        return [1, 2, 3, 4, 5]

    @asset(deps=["raw_data"], config_schema=Config)
    def processed_data(config: Config, raw_data):
        return sum(raw_data) * config.get("multiplier", 1)

    flow = Flow(["processed_data"], store=any_store)
    first = flow.run(config={"processed_data": {"multiplier": 2}})
    assert dict(first) == {"raw_data": [1, 2, 3, 4, 5], "processed_data": 30}
    assert first.materialized == ("raw_data", "processed_data")
    second = flow.run(config={"processed_data": {"multiplier": 2}})
    assert second.materialized == () and second.reused == ("raw_data", "processed_data")
    assert second["processed_data"] == 30
