"""The scheduler's Prometheus endpoint (``/metrics`` on the dashboard port) shows daskseg's task
prefixes, ``predict-block`` and ``daskseg-batch``, while a prediction or batch production runs."""

from __future__ import annotations

import threading
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import daskseg as gp
from daskseg.blockwise import predict
from daskseg.io import write_array

from .helpers import (
    SLOW_MAX3,
    SimulatedWork,
    poll,
    wait_until_idle,
    workers_import_tests,  # noqa: F401  (autouse fixture)
)

pytestmark = pytest.mark.integration

RAW = gp.ArrayKey("RAW")
NUM_BLOCKS = 4 * 2 * 2  # output (8, 32, 32) voxels in blocks of (2, 16, 16)


def prefix_states(cluster) -> dict[str, dict[str, float]]:
    """``dask_scheduler_prefix_state_totals`` from ``/metrics``: task prefix -> state -> count."""
    url = f"http://127.0.0.1:{cluster.dashboard_port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        text = response.read().decode()
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "dask_scheduler_prefix_state_totals":
            for sample in family.samples:
                prefix = sample.labels["task_prefix_name"]
                out.setdefault(prefix, {})[sample.labels["state"]] = sample.value
    return out


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    path = tmp_path_factory.mktemp("raw") / "in.zarr"
    data = np.random.default_rng(0).integers(0, 256, (10, 34, 34), dtype=np.uint8)
    write_array(path, "volumes/raw", data, (4, 2, 2))
    return str(path)


def test_metrics_show_predict_blocks_while_predict_runs(process_cluster, raw, tmp_path):
    assert "predict-block" not in prefix_states(process_cluster)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = predict(
                processor=SLOW_MAX3, raw=f"{raw}/volumes/raw", out=f"{tmp_path}/out.zarr/pred",
                roi="4:36,2:66,2:66", block_shape=(2, 16, 16), client=process_cluster.address, progress=False,
            )
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        def seen_while_running():
            running = thread.is_alive()
            states = prefix_states(process_cluster).get("predict-block", {})
            # tasks have started and not all have finished: the job is running
            return running and states.get("processing", 0) > 0 and states

        seen = poll(seen_while_running, 60, "predict-block tasks in /metrics while predict runs", interval=0.05)
    finally:
        thread.join(timeout=120)
    if "error" in outcome:
        raise outcome["error"]
    assert outcome["result"].num_blocks == NUM_BLOCKS
    assert seen["processing"] > 0
    # every task of the run (cheap blocks may share one) is counted as finished
    assert prefix_states(process_cluster)["predict-block"]["memory"] >= outcome["result"].tasks >= NUM_BLOCKS / 4


def test_metrics_show_batch_tasks_while_precache_produces(process_cluster, raw):
    assert "daskseg-batch" not in prefix_states(process_cluster)
    pipeline = (
        gp.ZarrSource(raw, {RAW: "volumes/raw"})
        + gp.RandomLocation()
        + SimulatedWork(0.1)
        + gp.PreCache(cache_size=4, client=process_cluster.address, seed=0)
    )
    request = gp.BatchRequest()
    request.add(RAW, (8, 20, 20))
    with gp.build(pipeline):
        for _ in range(3):
            pipeline.request_batch(request)
        states = poll(
            lambda: prefix_states(process_cluster).get("daskseg-batch", {}).get("processing", 0) > 0
            and prefix_states(process_cluster)["daskseg-batch"],
            60,
            "daskseg-batch tasks in /metrics while PreCache runs",
            interval=0.05,
        )
    wait_until_idle(process_cluster.address)
    assert states["memory"] >= 3  # the three batches delivered (and the ones queued behind them)
