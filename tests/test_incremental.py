"""The core promise: never serve a stale result, never recompute a fresh one."""

import pytest

from kazeflow import Config, Flow, asset
from kazeflow.assets import registry


def chain(calls, multiplier_default=1):
    """raw -> doubled -> report, recording every execution in ``calls``."""

    @asset
    def raw():
        calls.append("raw")
        return [1, 2, 3]

    @asset(config_schema=Config)
    def doubled(config, raw):
        calls.append("doubled")
        return [x * config.get("factor", 2) for x in raw]

    @asset
    def report(doubled):
        calls.append("report")
        return sum(doubled)


def test_second_run_executes_nothing(any_store):
    calls = []
    chain(calls)
    flow = Flow(["report"], store=any_store)
    first = flow.run()
    assert first["report"] == 12 and calls == ["raw", "doubled", "report"]
    second = flow.run()
    assert calls == ["raw", "doubled", "report"]
    assert second.materialized == () and second.reused == ("raw", "doubled", "report")
    assert second["report"] == 12 and dict(second) == dict(first)


def test_config_change_reruns_the_asset_and_its_downstream_only(any_store):
    calls = []
    chain(calls)
    flow = Flow(["report"], store=any_store)
    flow.run()
    calls.clear()
    result = flow.run(config={"doubled": {"factor": 3}})
    assert calls == ["doubled", "report"] and result["report"] == 18
    calls.clear()
    result = flow.run()  # back to the first config: its materialization is reused
    assert calls == [] and result["report"] == 12


def test_identical_bytes_from_a_rerun_upstream_spare_the_downstream(any_store):
    calls = []

    @asset
    def source():
        calls.append("source v1")
        return {"rows": 3}

    @asset
    def summary(source):
        calls.append("summary")
        return source["rows"] * 10

    flow = Flow(["summary"], store=any_store)
    flow.run()

    @asset  # new code, same bytes: early cut-off
    def source():  # noqa: F811
        calls.append("source v2")
        return dict(rows=3)

    calls.clear()
    result = Flow(["summary"], store=any_store).run()
    assert calls == ["source v2"] and result.reused == ("summary",)
    assert result.materialized == ("source",)

    @asset  # new code, different bytes: downstream runs
    def source():  # noqa: F811
        calls.append("source v3")
        return {"rows": 4}

    calls.clear()
    result = Flow(["summary"], store=any_store).run()
    assert calls == ["source v3", "summary"] and result["summary"] == 40


def test_cache_false_always_runs_but_cutoff_spares_downstream(any_store):
    calls = []

    @asset(cache=False)
    def clock():
        calls.append("clock")
        return "noon"

    @asset
    def greeting(clock):
        calls.append("greeting")
        return f"good {clock}"

    flow = Flow(["greeting"], store=any_store)
    flow.run()
    calls.clear()
    result = flow.run()
    assert calls == ["clock"] and result.reused == ("greeting",)
    statuses = flow.status()
    assert statuses["clock"].state == "stale"
    assert [r.kind for r in statuses["clock"].reasons] == ["cache_disabled"]


def test_force_true_reexecutes_everything_and_is_recorded(any_store):
    calls = []
    chain(calls)
    flow = Flow(["report"], store=any_store)
    flow.run()
    calls.clear()
    result = flow.run(force=True)
    assert calls == ["raw", "doubled", "report"]
    assert result.materialized == ("raw", "doubled", "report")
    newest = flow.history(limit=3)
    assert {m.asset_name for m in newest} == {"raw", "doubled", "report"}
    assert all(m.forced and m.run_id == result.run_id for m in newest)


def test_force_one_asset_keeps_downstream_when_its_bytes_are_unchanged(any_store):
    calls = []
    chain(calls)
    flow = Flow(["report"], store=any_store)
    flow.run()
    calls.clear()
    result = flow.run(force=["doubled"])
    assert calls == ["doubled"] and result.reused == ("raw", "report")
    with pytest.raises(KeyError, match="did you mean 'doubled'"):
        flow.run(force=["dubled"])


def test_force_one_asset_reruns_downstream_when_its_bytes_change(any_store):
    state = {"n": 0}

    @asset(cache=True)
    def counter():
        state["n"] += 1
        return state["n"]

    @asset
    def shown(counter):
        return f"#{counter}"

    flow = Flow(["shown"], store=any_store)
    assert flow.run()["shown"] == "#1"
    result = flow.run(force=["counter"])
    assert result.materialized == ("counter", "shown") and result["shown"] == "#2"


def test_asset_objects_as_deps_and_explicit_assets(any_store):
    @asset
    def base():
        return 2

    @asset(deps=[base])
    def top(base):
        return base + 1

    registry.clear()  # only the explicit objects remain
    assert Flow(assets=[top], store=any_store).run()["top"] == 3


class Tracked:
    """A value that counts how often it is unpickled."""

    loads: dict[str, int] = {}

    def __init__(self, tag):
        self.tag = tag

    def __reduce__(self):
        return (_rebuild, (self.tag,))


def _rebuild(tag):
    Tracked.loads[tag] = Tracked.loads.get(tag, 0) + 1
    return Tracked(tag)


def tracked_chain(calls):
    @asset
    def first():
        return Tracked("first")

    @asset
    def second(first):
        return Tracked("second")

    @asset
    def third(second):
        calls.append("third")
        return Tracked("third")


def test_fresh_runs_unpickle_nothing_until_a_value_is_read(any_store):
    tracked_chain([])
    flow = Flow(["third"], store=any_store)
    flow.run()
    Tracked.loads.clear()
    result = flow.run()
    assert Tracked.loads == {}
    assert result["third"].tag == "third" and Tracked.loads == {"third": 1}
    result["third"]
    assert Tracked.loads == {"third": 1}  # loaded once, then kept


def test_only_the_inputs_of_executing_assets_are_loaded(any_store):
    calls = []
    tracked_chain(calls)
    Flow(["third"], store=any_store).run()
    Tracked.loads.clear()
    calls.clear()
    Flow(["third"], store=any_store).run(force=["third"])
    assert calls == ["third"] and Tracked.loads == {"second": 1}


def test_runs_report_each_asset_and_why_through_logging_events(any_store, caplog):
    calls = []
    chain(calls)
    flow = Flow(["report"], store=any_store)
    flow.run()
    with caplog.at_level("DEBUG", logger="kazeflow"):
        flow.run(config={"doubled": {"factor": 5}})
    events = [(r.kazeflow_event, getattr(r, "asset_name", None)) for r in caplog.records
              if hasattr(r, "kazeflow_event")]
    assert events == [("reused", "raw"), ("materializing", "doubled"),
                      ("materializing", "report"), ("run_finished", None)]
    why = {r.asset_name: r.getMessage() for r in caplog.records
           if getattr(r, "kazeflow_event", None) == "materializing"}
    assert why["doubled"].endswith("config changed")
    assert why["report"].endswith("upstream 'doubled' changed")
    # Not logging them, a run reads no full records, and decides the same.
    calls.clear()
    with caplog.at_level("INFO", logger="kazeflow"):
        assert flow.run(config={"doubled": {"factor": 8}}).materialized == (
            "doubled", "report")
        assert flow.run(config={"doubled": {"factor": 5}}).reused == (
            "raw", "doubled", "report")
    assert calls == ["doubled", "report"]


def _counter_chain(offset):
    """raw -> doubled -> report, where report's code depends on ``offset``."""
    registry.clear()

    @asset
    def raw():
        return [1, 2, 3]

    @asset(config_schema=Config)
    def doubled(config, raw):
        return [x * config.get("factor", 2) for x in raw]

    @asset
    def report(doubled):
        return sum(doubled) + offset


def test_a_run_stores_the_code_of_an_asset_once(any_store):
    """A re-run with the code of its last record sends no code rows again; new code is
    stored with its record."""
    from _sqlwatch import watch_sql

    _counter_chain(0)
    Flow(["report"], store=any_store).run()
    inserted = []

    def seen(key, statement, parameters, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO CODE_SOURCES"):
            inserted.extend(parameters if executemany else [parameters])

    with watch_sql(any_store, seen):
        result = Flow(["report"], store=any_store).run(config={"doubled": {"factor": 4}})
        assert result.materialized == ("doubled", "report") and inserted == []
        _counter_chain(1)
        result = Flow(["report"], store=any_store).run(config={"doubled": {"factor": 4}})
        assert result.materialized == ("report",) and result["report"] == 25
        assert len(inserted) == 1
    first, second = (any_store.history("report")[i].code_hash for i in (1, 0))
    assert first != second
    assert any_store.metadata.code_components(first) != \
        any_store.metadata.code_components(second) is not None


def test_going_back_to_an_older_config_reuses_a_long_chain(any_store):
    """Every asset's older materialization is found by its key (one lookup each)."""
    calls = []

    @asset(config_schema=Config)
    def head(config):
        calls.append("head")
        return config.get("start", 0)

    def leaf(i):
        return lambda head: calls.append("leaf") or head + i

    leaves = [f"leaf{i}" for i in range(30)]
    for i, name in enumerate(leaves):
        asset(name=name, deps=["head"])(leaf(i))
    flow = Flow(leaves, store=any_store)
    assert flow.run()["leaf29"] == 29
    assert flow.run(config={"head": {"start": 100}})["leaf29"] == 129
    calls.clear()
    result = flow.run()  # the first config again: every asset reuses its first record
    assert calls == [] and result["leaf29"] == 29 and len(result.reused) == 31
    assert all(s.state == "fresh" for s in flow.status().values())
    assert flow.run(config={"head": {"start": 7}})["leaf29"] == 36
    assert len(calls) == 31  # a third config: nothing recorded, everything runs
