"""`daskseg segment` against a separately started scheduler with two worker processes: a worker
SIGKILLed in the middle of a stage, and the client SIGKILLed and run again, both end in the
segmentation of an undisturbed run, byte for byte."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from distributed import Client
from scipy import ndimage as ndi

from daskseg.blockwise import Runner, segment
from daskseg.io import open_dataset, write_array
from daskseg.report import gt_affinities

from .conftest import start_cluster
from .helpers import (
    array_bytes,
    done_marks,
    kill_worker,
    poll,
    run_cli,
    start_cli,
    workers_import_tests,  # noqa: F401  (autouse fixture)
)

pytestmark = pytest.mark.integration

VOXEL_SIZE = (8, 4, 4)
SHAPE = (16, 64, 64)
BLOCK_SHAPE = (4, 16, 16)
NUM_BLOCKS = 4 * 4 * 4
THRESHOLDS = "0.6,0.8"


@pytest.fixture(scope="module")
def affs(tmp_path_factory):
    rng = np.random.default_rng(11)
    seeds = np.zeros(SHAPE, np.int64)
    seeds[tuple(rng.integers(0, SHAPE, (60, 3)).T)] = np.arange(1, 61)
    _, index = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[tuple(index)].astype(np.uint64)
    data = np.clip(gt_affinities(labels) * 0.7 + rng.random((3, *SHAPE)) * 0.45, 0, 1).astype(np.float32)
    path = tmp_path_factory.mktemp("affs") / "pred.zarr"
    write_array(path, "volumes/pred_affs", data, VOXEL_SIZE, chunk_shape=BLOCK_SHAPE)
    return f"{path}/volumes/pred_affs"


def cli_args(affs_path: str, out: str, scheduler: str) -> list[str]:
    return ["segment", "--affs", affs_path, "--out", out, "--thresholds", THRESHOLDS, "--scheduler", scheduler,
            "--block-shape", ",".join(map(str, BLOCK_SHAPE)), "--no-progress"]


def chunks(array_dir: str) -> dict[str, bytes]:
    """The stored chunks of a Zarr array (metadata, which names paths, left out)."""
    return {k: v for k, v in array_bytes(array_dir).items() if os.path.basename(k) != "zarr.json"}


def outputs(out: str) -> list[str]:
    container, name = out.split(".zarr/")
    base = os.path.join(container + ".zarr", os.path.dirname(name))
    return [os.path.join(base, "fragments")] + [f"{container}.zarr/{name}_{t}" for t in THRESHOLDS.split(",")]


@pytest.fixture(scope="module")
def undisturbed(process_cluster, affs, tmp_path_factory):
    out = f"{tmp_path_factory.mktemp('undisturbed')}/seg.zarr/volumes/segmentation"
    result = run_cli(cli_args(affs, out, process_cluster.address))
    return out, result


def test_cli_segment_runs_on_the_separately_started_workers(process_cluster, undisturbed):
    out, result = undisturbed
    assert result.returncode == 0, result.stderr
    for path in outputs(out):
        assert done_marks(path).tolist() == [1] * NUM_BLOCKS, path
    with Client(process_cluster.address, timeout=30) as client:
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    # (Dask groups the keys agglomerate-L<level>-block-… of every level under "agglomerate")
    for stage in ("fragments-block", "edges-block", "agglomerate", "relabel-block"):
        assert stage in prefixes, prefixes
    seg = open_dataset(out.split(".zarr/")[0] + ".zarr", "volumes/segmentation_0.6").read()
    assert 10 < len(np.unique(seg)) < 200


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["fragments", "edges", "agglomerate-L0", "relabel"])
def test_worker_killed_mid_stage_gives_the_undisturbed_segmentation(tmp_path, affs, undisturbed, stage):
    reference, _ = undisturbed
    out = f"{tmp_path}/seg.zarr/volumes/segmentation"
    cluster = start_cluster(str(tmp_path / "cluster"), workers=2)
    killed = []

    def kill_in_stage(task, block) -> None:
        # a third of the stage done, the rest in flight or to come: the worker dies mid-stage
        if task.name == stage and not killed and len(killed_marks) == NUM_BLOCKS // 3:
            killed.extend(kill_worker(cluster, "cpu-1"))
        if task.name == stage:
            killed_marks.append(block.index)

    killed_marks: list = []
    try:
        with Client(cluster.address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            with Runner(client, on_block_done=kill_in_stage, progress=False) as runner:
                result = segment(affs, out, [float(t) for t in THRESHOLDS.split(",")], block_shape=BLOCK_SHAPE,
                                 runner=runner)
            assert len(client.scheduler_info()["workers"]) == 1
    finally:
        cluster.stop()
    assert killed, "the worker was not killed"
    assert all(s.processed == s.num_blocks for s in result.stages)
    for path, ref in zip(outputs(out), outputs(reference)):
        assert done_marks(path).tolist() == [1] * NUM_BLOCKS
        assert chunks(path) == chunks(ref), path


def test_client_killed_mid_segment_then_rerun_gives_the_same_bytes(process_cluster, affs, undisturbed, tmp_path):
    reference, _ = undisturbed
    out = f"{tmp_path}/seg.zarr/volumes/segmentation"
    args = cli_args(affs, out, process_cluster.address)
    edges_dir = os.path.join(os.path.dirname(os.path.dirname(out)).replace(".zarr", ".graph"), "volumes",
                             "segmentation", "edges")
    client = start_cli(args)
    try:
        poll(lambda: (m := done_marks(edges_dir)) is not None and 0 < int(m.sum()) < NUM_BLOCKS - 4, 120,
             "some but not all edge blocks recorded done", interval=0.005)
        client.kill()
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=30)
        client.stdout.close()
        client.stderr.close()
    assert client.returncode == -9
    done_at_kill = int(done_marks(edges_dir).sum())
    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stderr
    skipped = int(re.search(r", (\d+) done before", rerun.stdout).group(1))
    assert skipped >= NUM_BLOCKS + done_at_kill  # all fragments and the edges done at the kill
    for path, ref in zip(outputs(out), outputs(reference)):
        assert chunks(path) == chunks(ref), path
