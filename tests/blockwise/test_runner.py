"""The plan/run split: a BlockwiseTask is pure (no Dask), the Runner runs it on a real LocalCluster
with done records, named tasks, settings from daskseg's config, and one cluster for many tasks."""

from __future__ import annotations

import os

import dask.config
import numpy as np
import pytest
from dask_fixtures import local_client

import daskseg as gp
from daskseg.blockwise import BlockGrid, BlocksFailedError, BlockwiseTask, LayoutMismatchError, Runner
from daskseg.blockwise.done import read_done
from daskseg.io import create_dataset, open_dataset

VS = (1, 1, 1)


def fill_index(block, out, *, cancel):
    """Write the block's flat position into its write ROI (cheap, checkable)."""
    value = 1 + sum(i * 10**k for k, i in enumerate(reversed(block.index)))
    out.write(block.write_roi, np.full(tuple(block.write_roi.shape), value, out.dtype))
    return {"voxels": block.write_roi.size}


def fail_on_block_one(block, out, *, cancel):
    if block.index == (0, 0, 1):
        raise RuntimeError("block (0, 0, 1) refuses")
    return fill_index(block, out, cancel=cancel)


def make_task(tmp_path, function=fill_index, name="fill", layout=None, resume=True):
    roi = gp.Roi((0, 0, 0), (4, 4, 6))
    out = create_dataset(tmp_path / "o.zarr", "x", roi, VS, "uint32", chunk_shape=(2, 2, 2))
    grid = BlockGrid(roi, (2, 2, 2), VS)
    return BlockwiseTask(name, grid, function, args=(out,), record_dir=str(tmp_path / "o.zarr" / "x"),
                         layout=layout or {"grid": grid.layout()}, resume=resume, settings="segment")


def expected():
    z, y, x = np.meshgrid(np.arange(4) // 2, np.arange(4) // 2, np.arange(6) // 2, indexing="ij")
    return (1 + x + 10 * y + 100 * z).astype(np.uint32)


@pytest.fixture(scope="module")
def client():
    with local_client(n_workers=2) as c:
        yield c


def test_a_finished_task_starts_no_cluster(tmp_path):
    task = make_task(tmp_path)
    with task.open_record() as record:
        for i in range(len(task.grid)):
            record.mark_done(i)
    runner = Runner(client="tcp://127.0.0.1:1")  # unreachable: connecting would fail
    result = runner.run(task)
    assert (result.skipped, result.processed, result.dashboard_link) == (12, 0, None)
    assert runner._client is None


def test_runs_every_block_with_named_tasks_and_records_them(client, tmp_path):
    from distributed import get_task_stream

    task = make_task(tmp_path)
    seen = []
    with get_task_stream(client) as stream, Runner(client, blocks_per_task=1,
                                                   on_block_done=lambda t, b: seen.append(b.index)) as runner:
        result = runner.run(task)
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "x").read(), expected())
    assert (result.processed, result.tasks, result.voxels) == (12, 12, 96)
    assert result.totals["voxels"] == 96
    assert sorted(seen) == sorted(b.index for b in task.grid)
    keys = {t["key"] for t in stream.data}
    assert {k.rsplit("-", 1)[0] for k in keys} == {"fill-block-" + "-".join(map(str, b.index)) for b in task.grid}
    meta, marks = read_done(tmp_path / "o.zarr" / "x")
    assert marks.all() and meta["layout"]["task"] == "fill"


def test_failed_blocks_are_named_and_the_rest_recorded_then_resumed(client, tmp_path):
    with pytest.raises(BlocksFailedError, match=r"fill-block-0-0-1"):
        Runner(client, retries=0).run(make_task(tmp_path, fail_on_block_one))
    marks = read_done(tmp_path / "o.zarr" / "x")[1]
    assert marks.sum() == 11 and not marks[1]
    result = Runner(client).run(make_task(tmp_path))
    assert (result.skipped, result.processed) == (11, 1)
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "x").read(), expected())


def test_another_layout_is_refused(client, tmp_path):
    Runner(client).run(make_task(tmp_path))
    with pytest.raises(LayoutMismatchError, match="threshold"):
        Runner(client).run(make_task(tmp_path, layout={"threshold": 0.5}))


def test_settings_come_from_the_tasks_section(tmp_path):
    runner = Runner()
    with dask.config.set({"daskseg.segment.retries": 7, "daskseg.segment.max-in-flight": 3,
                          "daskseg.segment.block-timeout": "2 minutes"}):
        assert runner.settings("segment") == (3, 7, 120.0)
    assert Runner(retries=1, max_in_flight="4x", block_timeout=None).settings("segment") == ("4x", 1, None)
    with pytest.raises(ValueError, match="'segmnt'"):  # a misspelt section is refused, not read as the defaults
        runner.settings("segmnt")


def test_the_retries_setting_takes_effect(client, tmp_path):
    """retries=0 from the config: a block failing once is not retried (it would succeed a second time)."""
    flag = tmp_path / "failed_once"
    task = make_task(tmp_path, fail_once_then_fill)
    task = BlockwiseTask(task.name, task.grid, task.function, args=(*task.args, str(flag)),
                         record_dir=task.record_dir, layout=task.layout, settings="segment")
    with dask.config.set({"daskseg.segment.retries": 0}), pytest.raises(BlocksFailedError):
        Runner(client, blocks_per_task=1).run(task)
    os.remove(flag)
    with dask.config.set({"daskseg.segment.retries": 1}):
        assert Runner(client, blocks_per_task=1).run(task).processed == 1


def fail_once_then_fill(block, out, flag, *, cancel):
    if block.index == (1, 1, 2) and not os.path.exists(flag):
        open(flag, "w").close()
        raise RuntimeError("first try fails")
    return fill_index(block, out, cancel=cancel)


def test_one_runner_runs_several_tasks_on_one_cluster(tmp_path):
    with Runner(n_workers=1, blocks_per_task=4) as runner:
        a = runner.run(make_task(tmp_path / "a"))
        first = runner._client
        b = runner.run(make_task(tmp_path / "b", name="other"))
        assert runner._client is first
    assert a.processed == b.processed == 12
    assert b.tasks == 3
