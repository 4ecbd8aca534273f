"""End to end: one flow run sequentially on a local store, and with Dask on PostgreSQL
metadata and S3 objects (moto on loopback), gives identical data versions; a second Dask
run reuses everything; a second "machine" (another process, its own working folder, the
same URLs) sees every asset fresh."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
from _services import require

from kazeflow import Flow, Store

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

distributed = require("distributed", "dask")

PIPELINE = textwrap.dedent("""
    from kazeflow import Flow, asset

    @asset
    def raw():
        return [{"id": i, "value": i * i % 97} for i in range(5000)]

    @asset
    def cleaned(raw):
        return [row for row in raw if row["value"] % 3]

    @asset
    def stats(cleaned):
        return {"n": len(cleaned), "total": sum(row["value"] for row in cleaned)}

    @asset
    def labels(raw):
        return frozenset(f"label-{row['value']}" for row in raw)

    @asset
    def report(stats, labels):
        return {**stats, "labels": len(labels)}

    ASSETS = [raw, cleaned, stats, labels, report]
    flow = Flow(["report"])
""")


def test_local_sequential_and_dask_on_postgres_and_s3_agree(tmp_path, postgres_url, s3_url):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "e2e_pipeline.py").write_text(PIPELINE)
    sys.path.insert(0, str(tmp_path / "project"))  # workers start with this sys.path
    try:
        pipeline = importlib.import_module("e2e_pipeline")
        local = Flow(["report"], assets=pipeline.ASSETS, store=tmp_path / "local")
        local.run()
        expected = {name: local.store.materialization(name).data_version
                    for name in local.status()}

        shared = Store(tmp_path / "machine-one", metadata=postgres_url, objects=s3_url)
        flow = Flow(["report"], assets=pipeline.ASSETS, store=shared)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            first = flow.run(executor=client)
            assert sorted(first.materialized) == sorted(expected)
            assert {name: shared.materialization(name).data_version
                    for name in expected} == expected
            again = flow.run(executor=client)
            assert sorted(again.reused) == sorted(expected) and not again.materialized
        assert again["report"] == local.load("report")
        assert shared.verify().ok
        shared.close()
    finally:
        sys.path.remove(str(tmp_path / "project"))
        sys.modules.pop("e2e_pipeline", None)

    (tmp_path / "machine-two").mkdir()
    env = {**os.environ, "KAZEFLOW_METADATA_URL": postgres_url,
           "KAZEFLOW_OBJECTS_URL": s3_url}
    status = subprocess.run(
        [sys.executable, "-m", "kazeflow", "status", "--json",
         str(tmp_path / "project" / "e2e_pipeline.py:flow")],
        cwd=tmp_path / "machine-two", env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    states = {row["asset_name"]: row["state"] for row in json.loads(status.stdout)}
    assert states == {name: "fresh" for name in expected}
