"""`daskseg predict` against a separately started scheduler with two worker processes, and what
happens when a worker or the client is SIGKILLed mid-run: the output equals an undisturbed run's,
byte for byte, and every block is recorded done."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from distributed import Client

from daskseg.blockwise import predict
from daskseg.blockwise.processor import cached_setups
from daskseg.io import open_dataset, write_array

from .conftest import start_cluster
from .helpers import (
    SLOW_MAX3,
    array_bytes,
    done_marks,
    expected_max3,
    kill_worker,
    poll,
    run_cli,
    running_on,
    start_cli,
    worker_address,
    workers_import_tests,  # noqa: F401  (autouse fixture)
)

pytestmark = pytest.mark.integration

VOXEL_SIZE = (4, 2, 2)
SHAPE = (18, 66, 66)
ROI = "4:68,2:130,2:130"  # world units: the raw ROI shrunk by the processor's one voxel of context
BLOCK_SHAPE = (4, 32, 32)
NUM_BLOCKS = 4 * 2 * 2
PROCESSOR = "integration.helpers:SLOW_MAX3"


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    data = np.random.default_rng(7).integers(0, 256, SHAPE, dtype=np.uint8)
    path = tmp_path_factory.mktemp("raw") / "in.zarr"
    write_array(path, "volumes/raw", data, VOXEL_SIZE, chunk_shape=(6, 33, 33))
    return f"{path}/volumes/raw", data


def cli_args(raw_path: str, out: str, scheduler: str) -> list[str]:
    return ["predict", "--raw", raw_path, "--out", out, "--processor", PROCESSOR, "--scheduler", scheduler,
            "--roi", ROI, "--block-shape", ",".join(map(str, BLOCK_SHAPE)), "--no-progress"]


def read_output(out: str) -> np.ndarray:
    container, name = out.split(".zarr/")
    return open_dataset(container + ".zarr", name).read()


@pytest.fixture(scope="module")
def undisturbed(process_cluster, raw, tmp_path_factory):
    """`daskseg predict --scheduler ADDRESS` run once, undisturbed: the reference of the fault tests."""
    raw_path, _ = raw
    out = f"{tmp_path_factory.mktemp('undisturbed')}/out.zarr/volumes/pred"
    result = run_cli(cli_args(raw_path, out, process_cluster.address))
    return out, result


def test_cli_predict_runs_on_the_separately_started_workers(process_cluster, raw, undisturbed):
    _, data = raw
    out, result = undisturbed
    assert result.returncode == 0, result.stderr
    assert f"{NUM_BLOCKS} blocks of {BLOCK_SHAPE} voxels" in result.stdout
    np.testing.assert_array_equal(read_output(out), expected_max3(data))
    assert done_marks(out).tolist() == [1] * NUM_BLOCKS
    with Client(process_cluster.address, timeout=30) as client:
        # both worker processes of the cluster set up the processor, i.e. ran blocks
        assert sorted(client.run(cached_setups).values()) == [1, 1]
        counts = client.run_on_scheduler(
            lambda dask_scheduler: dict(dask_scheduler.task_prefixes["predict-block"].state_counts)
        )
    tasks = int(re.search(r"\((\d+) tasks\)", result.stdout).group(1))
    assert NUM_BLOCKS / 4 <= tasks <= NUM_BLOCKS  # 0.2 s blocks: a few share a task
    assert counts["memory"] >= tasks


@pytest.mark.slow
def test_worker_killed_mid_predict_gives_the_undisturbed_output(tmp_path, raw, undisturbed):
    raw_path, _ = raw
    reference, _ = undisturbed
    out = f"{tmp_path}/out.zarr/volumes/pred"
    cluster = start_cluster(str(tmp_path / "cluster"), workers=2)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = predict(
                processor=SLOW_MAX3, raw=raw_path, out=out, roi=ROI, block_shape=BLOCK_SHAPE,
                client=cluster.address, progress=False,
            )
        except BaseException as e:  # re-raised in the test's thread
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    try:
        with Client(cluster.address, timeout=60) as monitor:
            monitor.wait_for_workers(2, timeout=120)
            victim = worker_address(monitor, "cpu-1")
            thread.start()

            def victim_busy_mid_job() -> bool:
                marks = done_marks(out)
                return (
                    marks is not None
                    and 0 < int(marks.sum()) < NUM_BLOCKS - 2
                    and bool(running_on(monitor, victim, "predict-block"))
                )

            poll(victim_busy_mid_job, 60, "worker cpu-1 running a block with some blocks done")
            kill_worker(cluster, "cpu-1")
            thread.join(timeout=120)
            assert not thread.is_alive(), "predict did not finish after the worker was killed"
            # the scheduler saw a task die with the worker (it was running a block when killed)
            suspicious = monitor.run_on_scheduler(
                lambda dask_scheduler: dask_scheduler.task_prefixes["predict-block"].suspicious
            )
            assert len(monitor.scheduler_info()["workers"]) == 1
    finally:
        cluster.stop()
        thread.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    assert suspicious >= 1
    assert (result.num_blocks, result.processed, result.skipped) == (NUM_BLOCKS, NUM_BLOCKS, 0)
    assert done_marks(out).tolist() == [1] * NUM_BLOCKS
    assert np.array_equal(read_output(out), read_output(reference))
    assert array_bytes(out) == array_bytes(reference)


def test_client_killed_mid_predict_then_rerun_skips_finished_blocks(process_cluster, raw, undisturbed, tmp_path):
    raw_path, _ = raw
    reference, _ = undisturbed
    out = f"{tmp_path}/out.zarr/volumes/pred"
    args = cli_args(raw_path, out, process_cluster.address)
    client = start_cli(args)
    try:
        poll(
            lambda: (m := done_marks(out)) is not None and 0 < int(m.sum()) < NUM_BLOCKS - 2,
            90,
            "some but not all blocks recorded done",
        )
        client.kill()
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=30)
        client.stdout.close()
        client.stderr.close()
    assert client.returncode == -9
    done_at_kill = int(done_marks(out).sum())
    assert 0 < done_at_kill < NUM_BLOCKS

    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stderr
    m = re.search(r": (\d+) blocks of .*, (\d+) done before", rerun.stdout)
    assert m, rerun.stdout
    processed, skipped = int(m.group(1)), int(m.group(2))
    assert skipped == done_at_kill
    assert processed == NUM_BLOCKS - skipped
    assert done_marks(out).tolist() == [1] * NUM_BLOCKS
    assert np.array_equal(read_output(out), read_output(reference))
    assert array_bytes(out) == array_bytes(reference)
