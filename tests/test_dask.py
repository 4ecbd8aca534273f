"""The Dask executor on a real ``LocalCluster`` of two worker processes: the same
results, data versions, history and status as a sequential run; a failing asset or a
dying worker fails only its asset."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
from _services import require

from kazeflow import Flow, FlowRunError, asset
from kazeflow.executors import DaskExecutor

distributed = require("distributed", "dask")


@pytest.fixture(scope="module")
def client():
    import dask

    # a task whose worker dies fails at once (by default Dask tries 3 more workers)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def diamond(outcomes: dict[str, str] | None = None) -> list:
    """source -> (left, right) -> joined; ``outcomes`` makes an asset fail or die."""
    outcomes = outcomes or {}

    def act(name: str) -> None:
        if outcomes.get(name) == "fail":
            raise ValueError(f"{name} failed on purpose")
        if outcomes.get(name) == "die":
            os._exit(3)

    @asset
    def source():
        act("source")
        return list(range(1000))

    @asset
    def left(source):
        act("left")
        return sum(source)

    @asset
    def right(source):
        act("right")
        return [x * 2 for x in source]

    @asset
    def joined(left, right):
        act("joined")
        return {"left": left, "right": sum(right)}

    return [source, left, right, joined]


def _versions(flow: Flow) -> dict[str, str | None]:
    return {name: flow.store.materialization(name).data_version
            for name in ("source", "left", "right", "joined")}


def test_a_dask_run_matches_a_sequential_one(client, tmp_path):
    dask_flow = Flow(assets=diamond(), store=tmp_path / "dask")
    result = dask_flow.run(executor=client)
    assert sorted(result.materialized) == ["joined", "left", "right", "source"]
    assert result["joined"] == {"left": 499500, "right": 999000}
    sequential = Flow(assets=diamond(), store=tmp_path / "sequential")
    sequential.run()
    assert _versions(dask_flow) == _versions(sequential)
    assert {n: s.state for n, s in dask_flow.status().items()} == \
        {n: s.state for n, s in sequential.status().items()}
    again = dask_flow.run(executor=DaskExecutor(client))
    assert sorted(again.reused) == ["joined", "left", "right", "source"]
    assert [m.status for m in dask_flow.history("joined")] == ["materialized"]
    assert dask_flow.store.verify().ok


def test_a_failing_asset_and_a_dying_worker_fail_only_their_assets(client, tmp_path):
    flow = Flow(assets=diamond({"left": "fail", "right": "die"}), store=tmp_path / "s")
    with pytest.raises(FlowRunError) as info:
        flow.run(executor=client)
    errors = {name: str(exc) for name, exc in info.value.errors.items()}
    assert set(errors) == {"left", "right"}
    assert "left failed on purpose" in errors["left"]
    assert "Dask worker running it died" in errors["right"]
    assert flow.store.materialization("source").data_version is not None
    client.wait_for_workers(2, timeout=60)  # the nannies start new ones
    fixed = Flow(assets=diamond(), store=tmp_path / "s")
    result = fixed.run(executor=client)
    assert result.reused == ("source",)
    assert result["joined"] == {"left": 499500, "right": 999000}
    assert fixed.store.verify().ok


def test_a_scheduler_address_makes_a_client_of_its_own(client, tmp_path):
    executor = DaskExecutor(client.scheduler.address)
    try:
        assert executor.max_workers == 2
        flow = Flow(assets=diamond(), store=tmp_path / "s")
        assert flow.run(executor=executor)["left"] == 499500
    finally:
        executor.shutdown()
    assert executor.client.status == "closed"
    again = Flow(assets=diamond(), store=tmp_path / "s").run(executor=client.scheduler.address)
    assert sorted(again.reused) == ["joined", "left", "right", "source"]


def test_an_unreachable_scheduler_is_a_clear_error():
    from kazeflow import KazeflowError

    with pytest.raises(KazeflowError, match="cannot reach the Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=1)


def test_import_kazeflow_does_not_import_dask():
    code = ("import sys, kazeflow, kazeflow.executors; "
            "print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


class _Measured(DaskExecutor):
    """Records the pickled size of what goes to the cluster and what comes back."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self.sizes: list[int] = []

    def submit(self, fn, /, *args):
        self.sizes.append(len(pickle.dumps(args)))
        future = super().submit(fn, *args)
        future.add_done_callback(lambda done: self.sizes.append(len(pickle.dumps(
            done.result()))))
        return future


def test_values_stay_in_the_store_only_data_versions_travel(client, tmp_path):
    @asset
    def big():
        return b"x" * (8 << 20)

    @asset
    def size(big):
        return len(big)

    executor = _Measured(client)
    assert Flow(assets=[big, size], store=tmp_path / "s").run(executor=executor)["size"] \
        == 8 << 20
    assert len(executor.sizes) == 4 and max(executor.sizes) < 10_000, executor.sizes
