"""One freshness path: the evaluator's fast path (the newest record's key is the key now
and its object is there) decides exactly as the full decision would, and a warm run
takes it: no lookup per asset when nothing changed."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from _sqlwatch import watch_sql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kazeflow import Config, Flow, asset
from kazeflow.assets import registry
from kazeflow.running._evaluate import Evaluator
from kazeflow.running._prepare import Lookups
from kazeflow.store import Store


def diamond(left_version: int) -> list:
    """src → left, right → join, and src → always (cache=False); ``left`` collapses
    src's values to two, so equal upstream versions come back under other configs."""
    registry.clear()

    @asset(config_schema=Config)
    def src(config):
        return config.get("n", 0)

    @asset(code_version=str(left_version))
    def left(src):
        return src % 2

    @asset
    def right(src):
        return src * 10

    @asset
    def join(left, right):
        return (left, right)

    @asset(cache=False)
    def always(src):
        return src

    return [src, left, right, join, always]


NAMES = ["src", "left", "right", "join", "always"]

runs = st.tuples(st.just("run"), st.integers(0, 2), st.integers(0, 1),
                 st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
deletes = st.tuples(st.just("delete"), st.sampled_from(NAMES))


def delete_newest_object(store: Store, name: str) -> None:
    records = [r for r in store.history(name) if r.data_version is not None]
    if records:
        dv = records[0].data_version
        (store.root / "objects" / dv[:2] / dv[2:]).unlink(missing_ok=True)


def walk(flow: Flow, evaluator: Evaluator, full_only: bool) -> list[tuple]:
    """Each planned asset's decision, in plan order, as status() takes them."""
    versions: dict[str, str] = {}
    decisions = []
    for name in flow.asset_names:
        if full_only:
            decision = evaluator.decide(evaluator.inputs(name, versions), explain=True)
        else:
            decision = evaluator.evaluate(name, versions, explain=True)
        reuse = decision.reuse
        if reuse is not None:
            versions[name] = reuse.data_version
        decisions.append((name, decision.state, decision.cache_key,
                          None if reuse is None else (reuse.id, reuse.data_version),
                          [r.kind for r in decision.reasons]))
    return decisions


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(st.one_of(runs, deletes), min_size=1, max_size=6),
       n=st.integers(0, 2), left_version=st.integers(0, 1),
       full_records=st.booleans())
def test_the_fast_path_decides_as_the_full_decision(history, n, left_version, full_records):
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "store") as store:
        for step in history:
            if step[0] == "run":
                _, run_n, run_version, forced = step
                Flow(assets=diamond(run_version), store=store).run(
                    config={"src": {"n": run_n}}, force=forced)
            else:
                delete_newest_object(store, step[1])
        flow = Flow(assets=diamond(left_version), store=store)
        prepared = flow._prepare({"src": {"n": n}}, Lookups.in_folder(None), save=False)

        def evaluator() -> Evaluator:
            return Evaluator(store.metadata, store.objects, prepared,
                             full_records=full_records)

        fast, full = walk(flow, evaluator(), False), walk(flow, evaluator(), True)
        assert fast == full
        # and status() is that walk
        statuses = flow.status(config={"src": {"n": n}})
        assert [(s.asset_name, s.state, [r.kind for r in s.reasons]) for s in
                statuses.values()] == [(d[0], d[1], d[4]) for d in full]


def chain(length: int) -> list:
    """``length`` assets, each downstream of the one before."""
    registry.clear()

    def step_function(i: int):
        def step():
            return i
        return step

    return [asset(name=f"a{i}", deps=[f"a{i - 1}"] if i else None)(step_function(i))
            for i in range(length)]


def warm_run_statements(root: Path, length: int) -> list[str]:
    """The SQL statements of a warm run of ``chain(length)``, in a store opened anew."""
    Flow(assets=chain(length), store=root).run()  # cold
    statements: list[str] = []
    with Store(root) as store, watch_sql(store, lambda key, sql, params, many:
                                         statements.append(sql)):
        result = Flow(assets=chain(length), store=store).run()
    assert len(result.reused) == length
    return statements


def test_a_warm_run_takes_the_fast_path_for_every_asset(tmp_path):
    short = warm_run_statements(tmp_path / "short", 5)
    long = warm_run_statements(tmp_path / "long", 60)
    per_asset = [s for s in long if re.search(r"WHERE m\.(cache_key|id) =", s)]
    assert any("INSERT INTO runs" in s for s in long)  # the trace sees the run
    assert per_asset == []  # no lookup by key, no full record fetched
    assert len(long) == len(short)  # what a warm run asks does not grow with the plan
