"""The quickstart example itself, on SQLite and PostgreSQL metadata."""

import importlib.util
from pathlib import Path

from kazeflow import Flow

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_assets_on_both_backends(any_store):
    spec = importlib.util.spec_from_file_location("quickstart_example", QUICKSTART)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines raw_data and processed_data

    flow = Flow(["processed_data"], store=any_store)
    first = flow.run(config={"processed_data": {"multiplier": 2}})
    assert dict(first) == {"raw_data": [1, 2, 3, 4, 5], "processed_data": 30}
    assert first.materialized == ("raw_data", "processed_data")
    second = flow.run(config={"processed_data": {"multiplier": 2}})
    assert second.materialized == () and second.reused == ("raw_data", "processed_data")
    assert second["processed_data"] == 30
