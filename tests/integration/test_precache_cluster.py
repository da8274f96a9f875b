"""PreCache producing training batches on a separately started cluster (``client=<address>``), and
surviving a SIGKILLed worker: the batch sequence equals the undisturbed one, nothing lost or doubled."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import Client, get_task_stream

import daskseg as gp
from daskseg.io import write_array
from daskseg.nodes.pre_cache import batch_seed

from .conftest import start_cluster
from .helpers import (
    SimulatedWork,
    digest,
    kill_worker,
    running_on,
    wait_until_idle,
    worker_address,
    workers_import_tests,  # noqa: F401  (autouse fixture)
)

pytestmark = pytest.mark.integration

RAW = gp.ArrayKey("RAW")
LABELS = gp.ArrayKey("LABELS")
SEED = 1234
VOXEL_SIZE = (4, 2, 2)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("sample") / "sample.zarr"
    write_array(path, "volumes/raw", rng.integers(0, 256, (24, 96, 96), dtype=np.uint8), VOXEL_SIZE)
    write_array(path, "volumes/labels", rng.integers(1, 20, (24, 96, 96), dtype=np.uint64), VOXEL_SIZE)
    return str(path)


def upstream(path: str, work_seconds: float):
    return (
        gp.ZarrSource(path, {RAW: "volumes/raw", LABELS: "volumes/labels"})
        + gp.Normalize(RAW)
        + gp.RandomLocation()
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.IntensityAugment(RAW, 0.9, 1.1, -0.1, 0.1)
        + SimulatedWork(work_seconds)
    )


def request() -> gp.BatchRequest:
    r = gp.BatchRequest()
    r.add(RAW, (32, 40, 40))
    r.add(LABELS, (16, 20, 20))
    return r


def expected_digests(path: str, n: int) -> list[tuple[str, str]]:
    """Batch ``i`` of PreCache's first series, made in this process: the upstream for seed ``batch_seed(SEED, 0, i)``."""
    pipeline = upstream(path, 0.0)
    out = []
    with gp.build(pipeline):
        for i in range(n):
            r = request()
            r.random_seed = batch_seed(SEED, 0, i)
            batch = pipeline.request_batch(r)
            out.append((digest(batch, RAW), digest(batch, LABELS)))
    return out


def test_precache_produces_batches_on_the_cluster_at_an_address(process_cluster, sample):
    n = 8
    pipeline = upstream(sample, 0.05) + gp.PreCache(cache_size=4, client=process_cluster.address, ordered=True, seed=SEED)
    with Client(process_cluster.address, timeout=30) as monitor, get_task_stream(monitor) as stream:
        with gp.build(pipeline):
            got = [(digest(b, RAW), digest(b, LABELS)) for b in (pipeline.request_batch(request()) for _ in range(n))]
        workers = set(monitor.scheduler_info()["workers"])
    wait_until_idle(process_cluster.address)
    assert got == expected_digests(sample, n)
    assert len(set(got)) == n  # the batches differ (the seeds reached the random nodes)
    ran = {t["worker"] for t in stream.data if str(t["key"]).startswith("daskseg-batch-")}
    assert ran == workers and len(ran) == 2  # made by both worker processes of the cluster


@pytest.mark.slow
def test_worker_killed_during_batch_production_loses_and_doubles_nothing(tmp_path, sample):
    n = 14
    cluster = start_cluster(str(tmp_path / "cluster"), workers=2)
    try:
        with Client(cluster.address, timeout=60) as monitor:
            monitor.wait_for_workers(2, timeout=120)
            victim = worker_address(monitor, "cpu-1")
            pipeline = upstream(sample, 0.2) + gp.PreCache(cache_size=6, client=cluster.address, ordered=True, seed=SEED)
            got, killed_after = [], None
            with gp.build(pipeline):
                for i in range(n):  # the training loop
                    batch = pipeline.request_batch(request())
                    got.append((digest(batch, RAW), digest(batch, LABELS)))
                    if killed_after is None and i >= 2 and running_on(monitor, victim, "daskseg-batch-"):
                        kill_worker(cluster, "cpu-1")
                        killed_after = i
            assert killed_after is not None, "worker cpu-1 never had a batch task to lose"
            assert killed_after < n - 3
            suspicious = monitor.run_on_scheduler(
                lambda dask_scheduler: dask_scheduler.task_prefixes["daskseg-batch"].suspicious
            )
            assert len(monitor.scheduler_info()["workers"]) == 1
        wait_until_idle(cluster.address)
    finally:
        cluster.stop()
    assert suspicious >= 1  # a batch task was running on the worker when it died, and was redone
    assert got == expected_digests(sample, n)
