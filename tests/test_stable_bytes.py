"""Equal tables, equal bytes: a pandas DataFrame gets one data version however it was
built, so a re-run that gives the same table spares its downstream."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas, or "
                                          "the [test] extra)")


def frames() -> tuple[dict[str, object], dict[str, object]]:
    """Two tables, each built several ways: one block or one per column, C or Fortran
    order, columns added one by one, reordered; with mixed dtypes."""
    n = 1000
    ints = np.arange(n, dtype=np.int64)
    floats = np.linspace(0, 1, n)
    two_d = np.column_stack([floats, floats * 2, floats * 3])
    numeric = {
        "from a 2-D array": pd.DataFrame(two_d, columns=["a", "b", "c"]),
        "from a Fortran array": pd.DataFrame(np.asfortranarray(two_d),
                                             columns=["a", "b", "c"]),
        "from a dict": pd.DataFrame({"a": floats, "b": floats * 2, "c": floats * 3}),
        "reordered": pd.DataFrame({"c": floats * 3, "a": floats,
                                   "b": floats * 2})[["a", "b", "c"]],
    }
    by_column = pd.DataFrame(index=pd.RangeIndex(n))
    for i, name in enumerate("abc"):
        by_column[name] = two_d[:, i].copy()
    numeric["column by column"] = by_column
    mixed = {"id": ints, "x": floats, "label": [f"r{i}" for i in range(n)],
             "y": ints * 2, "when": pd.date_range("2024-01-01", periods=n, freq="h"),
             "kind": pd.Categorical(["p", "q"] * (n // 2))}
    added = pd.DataFrame(index=pd.RangeIndex(n))
    for name, column in mixed.items():
        added[name] = column
    return numeric, {"from a dict": pd.DataFrame(mixed), "column by column": added,
                     "consolidated copy": added.copy()}


def test_dataframes_with_the_same_data_get_the_same_data_version(store):
    for group in frames():
        versions = {}
        for how, frame in group.items():
            versions[how], _ = store.objects.put(frame)
            loaded = store.objects.load(versions[how])
            assert loaded.equals(frame) and list(loaded.dtypes) == list(frame.dtypes)
            assert list(loaded.columns) == list(frame.columns)
        assert len(set(versions.values())) == 1, versions


def test_a_dataframe_laid_out_canonically_is_not_copied():
    from kazeflow.store import _frames

    frame = pd.DataFrame({"a": np.arange(10), "b": np.linspace(0, 1, 10)})
    assert _frames.canonical_frame(frame) is frame
    split = pd.DataFrame(index=pd.RangeIndex(10))
    split["a"], split["b"], split["c"] = np.arange(10), np.arange(10.0), np.arange(10)
    rebuilt = _frames.canonical_frame(split)
    assert rebuilt is not split and rebuilt.equals(split)
    assert _frames.canonical_frame(rebuilt) is rebuilt  # once is enough


def test_a_rerun_giving_the_same_table_built_another_way_spares_the_downstream(store):
    from kazeflow import Flow, asset

    built = {"how": "dict"}
    calls = []

    @asset(cache=False)
    def table():
        if built["how"] == "dict":
            return pd.DataFrame({"a": np.arange(5), "b": np.arange(5) * 2})
        frame = pd.DataFrame(index=pd.RangeIndex(5))
        frame["a"], frame["b"] = np.arange(5), np.arange(5) * 2
        return frame

    @asset
    def total(table):
        calls.append("total")
        return int(table.to_numpy().sum())

    flow = Flow(["total"], store=store)
    assert flow.run()["total"] == 30
    built["how"] = "column by column"
    assert flow.run().reused == ("total",) and calls == ["total"]
