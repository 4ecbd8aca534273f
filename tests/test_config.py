"""Config: a read-only mapping, and typed schemas validated before anything runs."""

import pytest

from kazeflow import Config, ConfigError, Flow, asset


class Train(Config):
    epochs: int = 10
    lr: float
    mode: str | None = None
    layers: list[int] = [32]


def test_plain_config_is_a_read_only_mapping():
    cfg = Config({"multiplier": 2})
    assert cfg.get("multiplier") == 2 and cfg["multiplier"] == 2 and "multiplier" in cfg
    assert list(cfg) == ["multiplier"] and cfg.to_dict() == {"multiplier": 2}
    assert cfg.get("absent", 7) == 7 and cfg.multiplier == 2
    with pytest.raises(AttributeError, match="read-only"):
        cfg.multiplier = 3
    with pytest.raises(TypeError):
        cfg["multiplier"] = 3  # type: ignore[index]


def test_typed_schema_applies_defaults_and_gives_attributes():
    cfg = Train({"lr": 0.1})
    assert (cfg.epochs, cfg.lr, cfg.mode, cfg.layers) == (10, 0.1, None, [32])
    assert Train({"lr": 1}).lr == 1  # an int is a fine float


@pytest.mark.parametrize("values, key, message", [
    ({"lr": 0.1, "epoch": 3}, "epoch", "unknown key 'epoch'.*accepts: epochs, lr, mode"),
    ({}, "lr", "missing required field 'lr'"),
    ({"lr": "fast"}, "lr", "field 'lr' must be float, got 'fast'"),
    ({"lr": 0.1, "epochs": True}, "epochs", "field 'epochs' must be int"),
    ({"lr": 0.1, "layers": [1, "x"]}, "layers", "field 'layers' must be list"),
])
def test_typed_schema_rejects_bad_values(values, key, message):
    with pytest.raises(ConfigError, match=message) as info:
        Train(values, asset_name="model")
    assert info.value.key == key and info.value.asset_name == "model"
    assert "for asset 'model'" in str(info.value)


def test_non_json_values_are_rejected():
    with pytest.raises(ConfigError, match="'when' .* is not JSON-able"):
        Config({"when": object()})


def _counting_flow(store, schema=Config):
    calls = []

    @asset(config_schema=schema)
    def model(config):
        calls.append(config.to_dict())
        return 1

    @asset
    def other():
        return 2

    return Flow(["model", "other"], store=store), calls


def test_config_errors_are_raised_before_anything_runs(store):
    flow, calls = _counting_flow(store, Train)
    with pytest.raises(ConfigError, match="missing required field 'lr'"):
        flow.run(config={"model": {}})
    with pytest.raises(ConfigError, match="not an asset of this flow; did you mean 'model'"):
        flow.run(config={"modle": {"lr": 1.0}})
    with pytest.raises(ConfigError, match="'other', which declares no config_schema"):
        flow.run(config={"model": {"lr": 1.0}, "other": {"x": 1}})
    with pytest.raises(ConfigError, match="must map asset names"):
        flow.run(config=[("model", {})])  # type: ignore[arg-type]
    assert calls == [] and flow.runs() == [] and flow.history() == []


def test_effective_config_with_defaults_is_what_is_hashed(store):
    flow, calls = _counting_flow(store, Train)
    flow.run(config={"model": {"lr": 0.5}})
    flow.run(config={"model": {"lr": 0.5, "epochs": 10}})  # the default, spelled out
    assert len(calls) == 1
    flow.run(config={"model": {"lr": 0.5, "epochs": 11}})
    assert len(calls) == 2 and calls[-1]["epochs"] == 11
    assert flow.history("model")[0].config == {"epochs": 11, "layers": [32], "lr": 0.5,
                                               "mode": None}


def test_a_float_field_given_an_int_hashes_like_the_float(store):
    from kazeflow import Flow, asset

    class Rate(Config):
        lr: float = 0.5

    calls = []

    @asset(config_schema=Rate)
    def model(config):
        calls.append(config.lr)
        return config.lr

    flow = Flow(["model"], store=store)
    assert flow.run(config={"model": {"lr": 1}})["model"] == 1.0
    assert flow.run(config={"model": {"lr": 1.0}}).reused == ("model",)
    assert calls == [1.0] and isinstance(calls[0], float)
