"""History, runs and loading past values."""

import dataclasses

import pytest

from kazeflow import Config, Flow, ObjectNotFoundError, asset


def numbered():
    @asset(config_schema=Config)
    def number(config, context):
        context.add_metadata(rows=config.get("n", 0), note="counted")
        return config.get("n", 0)


def test_history_records_every_materialization_with_its_facts(any_store):
    numbered()
    flow = Flow(["number"], store=any_store)
    first = flow.run(config={"number": {"n": 1}})
    second = flow.run(config={"number": {"n": 2}})
    history = flow.history("number")
    assert [m.config for m in history] == [{"n": 2}, {"n": 1}]
    newest = history[0]
    assert newest.run_id == second.run_id and history[1].run_id == first.run_id
    assert newest.status == "materialized" and newest.size > 0
    assert newest.user_metadata == {"rows": 2, "note": "counted"}
    assert newest.ended_at >= newest.started_at and newest.duration >= 0
    assert len(newest.cache_key) == len(newest.code_hash) == len(newest.data_version) == 64
    assert newest.upstream_versions == {} and newest.started.tzinfo is not None
    assert flow.history(limit=1) == [newest]


def test_runs_are_listed_newest_first_with_counts(any_store):
    numbered()
    flow = Flow(["number"], store=any_store)
    a = flow.run()
    b = flow.run()
    runs = flow.runs()
    assert [r.run_id for r in runs] == [b.run_id, a.run_id]
    assert (runs[0].status, runs[0].n_materialized, runs[0].n_reused) == ("succeeded", 0, 1)
    assert (runs[1].n_materialized, runs[1].selection) == (1, ("number",))
    assert flow.runs(limit=1)[0].run_id == b.run_id


def test_load_newest_any_past_version_by_prefix_or_id(any_store):
    numbered()
    flow = Flow(["number"], store=any_store)
    flow.run(config={"number": {"n": 1}})
    flow.run(config={"number": {"n": 2}})
    old, new = flow.history("number")[1], flow.history("number")[0]
    assert any_store.load("number") == 2  # the newest by name
    assert flow.load("number", version=old.data_version) == 1
    assert flow.load("number", version=old.data_version[:10]) == 1
    assert flow.load("number", version=old.id) == 1 and flow.load("number", new.id) == 2
    with pytest.raises(ObjectNotFoundError, match="has no version 'zzzz'"):
        flow.load("number", version="zzzz")
    with pytest.raises(ObjectNotFoundError, match="has no materialization.*run the flow"):
        any_store.load("never_defined")


def test_record_fields_follow_the_table_columns():
    from kazeflow.results import Materialization
    from kazeflow.store._models import materializations

    assert [c.name for c in materializations.columns] == [
        f.name for f in dataclasses.fields(Materialization)]


def test_a_record_read_from_a_row_equals_one_built_by_its_constructor():
    from kazeflow.results import Materialization
    from kazeflow.store._records import materialization as _materialization

    row = (7, "r" * 32, "clean", "k" * 64, "c" * 64, "h" * 64, '{"n":2}', '{"raw":"ab"}',
           "d" * 64, 12, 1.0, 2.5, 1.5, "materialized", 1, None, '{"rows":3}',
           '{"numpy":"2.1.0"}')
    built = Materialization(7, "r" * 32, "clean", "k" * 64, "c" * 64, "h" * 64, {"n": 2},
                            {"raw": "ab"}, "d" * 64, 12, 1.0, 2.5, 1.5, "materialized",
                            True, None, {"rows": 3}, {"numpy": "2.1.0"})
    record = _materialization(row)
    assert record == built and repr(record) == repr(built) and record.forced is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.size = 0  # type: ignore[misc]
    old = _materialization(row[:15] + (None, None, None))  # made before libraries were kept
    assert old.user_metadata == {} and old.libraries == {}


@pytest.mark.parametrize("names_as_json", [True, False])
def test_latest_records_are_the_newest_successful_ones(store, monkeypatch, names_as_json):
    """One index probe per name where the database reads a JSON list of names (SQLite,
    PostgreSQL); elsewhere the whole history is grouped. Both give the same records."""
    from kazeflow.store import _sql

    if not names_as_json:
        monkeypatch.setattr(_sql, "JSON_NAMES", {})

    @asset(config_schema=Config)
    def counted(config):
        if config.get("fail"):
            raise ValueError("no")
        return config.get("n", 0)

    @asset
    def other():
        return "x"

    flow = Flow(["counted", "other"], store=store)
    for n in (1, 2, 3):
        flow.run(config={"counted": {"n": n}})
    with pytest.raises(Exception, match="no"):
        flow.run(config={"counted": {"fail": True}})  # a failure is never the latest
    newest = {r.asset_name: r for r in reversed(flow.history()) if r.status == "materialized"}
    latest = store.metadata.latest(["counted", "other", "never"])
    keys = store.metadata.latest_keys(["counted", "other", "never"])
    assert latest == newest and set(keys) == {"counted", "other"}
    assert store.load("counted", latest["counted"].data_version) == 3
    assert keys["counted"].id == latest["counted"].id
