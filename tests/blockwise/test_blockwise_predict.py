"""predict() on real LocalClusters with cheap numpy processors: equal to one pass over the whole
volume, resumable to the same bytes, and clear about bad inputs, outputs and layouts."""

from __future__ import annotations

import functools
import hashlib
import os
import time

import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr
from dask_fixtures import local_client
from ome_checks import check_output
from test_block_processor import BoxTiles, scan_reference

import daskseg as gp
from daskseg.blockwise import (
    AlignmentError,
    BlockGrid,
    BlocksFailedError,
    FunctionProcessor,
    LayoutMismatchError,
    predict,
)
from daskseg.blockwise.done import read_done
from daskseg.errors import DatasetError, GeometryError
from daskseg.io import create_dataset, open_dataset, write_array

VOXEL = (2, 1, 1)
OFFSET = (10, 0, 0)
SHAPE = (12, 20, 22)
SENTINEL = 7.0


def mean3(x: np.ndarray) -> np.ndarray:
    """3x3x3 mean by direct correlation: the same sums in the same order wherever a block is cut."""
    return ndi.correlate(x.astype(np.float64), np.full((3, 3, 3), 1 / 27), mode="constant")


def mean3_fails_on_sentinel(x: np.ndarray) -> np.ndarray:
    if (x == SENTINEL).any():
        raise RuntimeError("sentinel voxel in this block")
    return mean3(x)


MEAN3 = FunctionProcessor(mean3, context=1, name="mean3")


@pytest.fixture(scope="module")
def client():
    with local_client(n_workers=2) as c:
        yield c


@pytest.fixture
def raw_path(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.random(SHAPE).astype(np.float32)
    write_array(tmp_path / "in.zarr", "volumes/raw", raw, VOXEL, offset=OFFSET, chunk_shape=(4, 8, 8))
    return tmp_path / "in.zarr", raw


def expected_mean(raw: np.ndarray, roi: gp.Roi) -> np.ndarray:
    """scipy over the whole volume, cropped to ``roi``."""
    full = mean3(raw)
    begin = (roi.begin - gp.Coordinate(OFFSET)) / gp.Coordinate(VOXEL)
    end = (roi.end - gp.Coordinate(OFFSET)) / gp.Coordinate(VOXEL)
    return full[tuple(slice(b, e) for b, e in zip(begin, end))].astype(np.float32)


def chunk_bytes(array_dir) -> dict[str, str]:
    """Hash of every stored chunk file of a Zarr array, by relative path."""
    out = {}
    for root, _, files in os.walk(os.path.join(array_dir, "c")):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, array_dir)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


@pytest.mark.parametrize("block_shape", [(2, 8, 6), (3, 5, 7), (10, 18, 20)])
def test_output_equals_one_pass_over_the_whole_volume(client, raw_path, tmp_path, block_shape):
    container, raw = raw_path
    result = predict(
        raw=f"{container}/volumes/raw", out=f"{tmp_path}/out.zarr/volumes/pred", processor=MEAN3,
        block_shape=block_shape, client=client,
    )
    # the tutorial's default ROI: raw ROI shrunk by the whole context (2 voxels) on each side
    roi = gp.Roi((14, 2, 2), (16, 16, 18))
    assert result.roi == roi
    assert result.processed == result.num_blocks == np.prod(result.grid_shape)
    out = open_dataset(tmp_path / "out.zarr", "volumes/pred")
    assert out.roi == roi and out.voxel_size == gp.Coordinate(VOXEL)
    np.testing.assert_array_equal(out.read(), expected_mean(raw, roi))
    marks = read_done(tmp_path / "out.zarr/volumes/pred")[1]
    assert marks.all() and len(marks) == result.num_blocks


def test_explicit_roi_largest_valid(client, raw_path, tmp_path):
    container, raw = raw_path
    roi = gp.Roi((12, 1, 1), (20, 18, 20))  # raw ROI shrunk by one voxel of context each side
    predict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/p", processor=MEAN3, roi="12:32,1:19,1:21",
            block_shape=(4, 6, 6), client=client)
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "p").read(), expected_mean(raw, roi))


def test_groups_of_blocks_per_task(client, raw_path, tmp_path):
    container, raw = raw_path
    result = predict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/p", processor=MEAN3, block_shape=(2, 4, 6),
                     blocks_per_task=7, client=client, max_in_flight=3)
    assert result.processed == result.num_blocks == 4 * 4 * 3
    assert result.tasks == 7  # 48 blocks in groups of 7
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "p").read(),
                                  expected_mean(raw, gp.Roi((14, 2, 2), (16, 16, 18))))


def test_cheap_blocks_are_grouped_automatically(client, raw_path, tmp_path):
    """'auto' (the default) packs cheap blocks into fewer tasks; the output is unchanged."""
    container, raw = raw_path
    result = predict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/p", processor=MEAN3, block_shape=(1, 2, 2),
                     client=client)
    assert result.processed == result.num_blocks == 8 * 8 * 9
    assert result.tasks < result.num_blocks / 4
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "p").read(),
                                  expected_mean(raw, gp.Roi((14, 2, 2), (16, 16, 18))))


def test_time_limit_is_per_block_of_a_task(raw_path):
    from daskseg.blockwise.predict import open_input, run_task
    from daskseg.errors import BlockTimeoutError

    container, _ = raw_path
    raw = open_input(f"{container}/volumes/raw")
    grid = BlockGrid(gp.Roi((14, 2, 2), (6, 2, 2)), (1, 2, 2), raw.voxel_size, (2, 1, 1), (2, 1, 1))
    slow = FunctionProcessor(functools.partial(sleep_then_mean3, 0.35), context=1, name="slow")
    out = create_dataset(container.parent / "slow.zarr", "p", grid.output_roi, raw.voxel_size, "float32", chunk_shape=(1, 2, 2))
    # 1.05 s of sleep for 3 blocks: over one block's 1 s, within 3 x 1 s (room for a busy machine)
    times = run_task((0, 1, 2), grid, slow, raw, out, None, 1.0)
    assert times["blocks"] == 3
    with pytest.raises(BlockTimeoutError):
        run_task((0,), grid, FunctionProcessor(functools.partial(sleep_then_mean3, 2.5), context=1), raw, out, None, 1.0)


def sleep_then_mean3(seconds: float, x: np.ndarray) -> np.ndarray:
    time.sleep(seconds)
    return mean3(x)


def test_blocks_ask_for_a_gpu_when_workers_declare_one(raw_path, tmp_path):
    from distributed import Client, Nanny, Scheduler, SpecCluster, get_task_stream

    container, raw = raw_path
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    workers = {
        "gpu": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}, "host": "127.0.0.1"}},
        "cpu": {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1"}},
    }
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
        gpu_worker = [a for a, w in client.scheduler_info()["workers"].items() if w["resources"]][0]
        with get_task_stream(client) as stream:
            predict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/p", processor=MEAN3, block_shape=(4, 8, 6),
                    client=client)
    ran_on = {t["worker"] for t in stream.data if t["key"].startswith("predict-block-")}
    assert ran_on == {gpu_worker}
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "p").read(),
                                  expected_mean(raw, gp.Roi((14, 2, 2), (16, 16, 18))))


def test_metadata_for_viewers(client, raw_path, tmp_path):
    container, _ = raw_path
    predict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/volumes/pred", processor=MEAN3,
            block_shape=(8, 8, 8), client=client)
    attrs = dict(zarr.open_array(f"{tmp_path}/o.zarr/volumes/pred/s0").attrs)
    assert attrs["voxel_size"] == list(VOXEL) and attrs["resolution"] == list(VOXEL)
    assert attrs["offset"] == [14, 2, 2]
    assert attrs["axis_names"] == ["z", "y", "x"] and attrs["units"] == ["nm"] * 3
    assert attrs["daskseg"]["producer"]["name"] == "mean3"
    ome = dict(zarr.open_group(f"{tmp_path}/o.zarr/volumes/pred").attrs)["ome"]
    (entry,) = ome["multiscales"]
    transforms = entry["datasets"][0]["coordinateTransformations"]
    assert transforms[0]["scale"] == [2.0, 1.0, 1.0] and transforms[1]["translation"] == [14.0, 2.0, 2.0]
    check_output(f"{tmp_path}/o.zarr", "volumes/pred", VOXEL, (14, 2, 2))


def test_tiles_fall_where_one_scan_puts_them(client, tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 255, (9, 19, 21)).astype(np.uint8)
    write_array(tmp_path / "in.zarr", "raw", raw, (1, 1, 1))
    processor = BoxTiles()
    expected = scan_reference(raw, processor)
    for i, block_shape in enumerate([(2, 4, 4), (4, 8, 12), (6, 16, 20)]):
        predict(raw=f"{tmp_path}/in.zarr/raw", out=f"{tmp_path}/out{i}.zarr/affs", processor=processor,
                roi=gp.Roi((1, 1, 1), (7, 17, 19)), block_shape=block_shape, client=client)
        np.testing.assert_array_equal(open_dataset(tmp_path / f"out{i}.zarr", "affs").read(), expected)
    with pytest.raises(Exception, match="multiple of the network's output shape"):
        predict(raw=f"{tmp_path}/in.zarr/raw", out=f"{tmp_path}/bad.zarr/affs", processor=processor,
                block_shape=(3, 4, 4), client=client)


@pytest.mark.slow
def test_hdf5_input_uint8_output_one_worker_started_by_predict(tmp_path):
    rng = np.random.default_rng(2)
    raw = rng.random(SHAPE).astype(np.float32)
    write_array(tmp_path / "in.hdf", "volumes/raw", raw, VOXEL, offset=OFFSET)
    roi = gp.Roi((12, 1, 1), (20, 18, 20))
    result = predict(raw=f"{tmp_path}/in.hdf/volumes/raw", out=f"{tmp_path}/o.zarr/pred", processor=MEAN3, roi=roi,
                     block_shape=(5, 9, 10), n_workers=1, dtype="uint8")
    assert result.processed == 8
    got = open_dataset(tmp_path / "o.zarr", "pred").read()
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.rint(expected_mean(raw, roi) * np.float32(255)).astype(np.uint8))
    assert dict(zarr.open_array(f"{tmp_path}/o.zarr/pred/s0").attrs)["daskseg"]["value_scale"] == 255


@pytest.mark.parametrize("blocks_per_task", [1, 5])
def test_failed_blocks_are_named_and_a_rerun_finishes_them(client, raw_path, tmp_path, blocks_per_task):
    """Only the blocks that fail are named, also when they ran in a group (which is split up and rerun)."""
    container, raw = raw_path
    data = raw.copy()
    data[6, 10, 11] = SENTINEL
    write_array(container, "volumes/raw", data, VOXEL, offset=OFFSET, chunk_shape=(4, 8, 8))
    out = f"{tmp_path}/o.zarr/pred"
    flaky = FunctionProcessor(mean3_fails_on_sentinel, context=1, name="mean3")
    with pytest.raises(BlocksFailedError) as info:
        predict(raw=f"{container}/volumes/raw", out=out, processor=flaky, block_shape=(4, 4, 4), client=client,
                retries=0, blocks_per_task=blocks_per_task)
    # the failed blocks are exactly those whose read ROI holds the sentinel voxel (z = 10 + 6 * 2)
    sentinel = gp.Coordinate((22, 10, 11))
    from daskseg.blockwise import BlockGrid

    grid = BlockGrid(gp.Roi((14, 2, 2), (16, 16, 18)), (4, 4, 4), VOXEL, (2, 1, 1))
    expected_failed = {b.index for b in grid if b.read_roi.contains(sentinel)}
    failed = {tuple(int(v) for v in f.key.split("-")[2:5]) for f in info.value.failures}
    assert failed == expected_failed and len(failed) >= 1
    assert all(f.key.startswith("predict-block-") for f in info.value.failures)
    assert "run again" in str(info.value)
    marks = read_done(tmp_path / "o.zarr/pred")[1]
    assert marks.sum() == len(grid) - len(failed)

    result = predict(raw=f"{container}/volumes/raw", out=out, processor=MEAN3, block_shape=(4, 4, 4), client=client)
    assert result.processed == len(failed) and result.skipped == len(grid) - len(failed)
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "pred").read(),
                                  expected_mean(data, gp.Roi((14, 2, 2), (16, 16, 18))))


def test_interrupted_run_resumes_to_the_same_bytes(client, raw_path, tmp_path):
    container, _ = raw_path
    raw = f"{container}/volumes/raw"
    predict(raw=raw, out=f"{tmp_path}/ref.zarr/pred", processor=MEAN3, block_shape=(4, 4, 6), client=client)

    done = []

    def stop_after_five(block):
        done.append(block.index)
        if len(done) == 5:
            raise KeyboardInterrupt  # what Ctrl-C does in the client loop

    with pytest.raises(KeyboardInterrupt):
        predict(raw=raw, out=f"{tmp_path}/run.zarr/pred", processor=MEAN3, block_shape=(4, 4, 6), client=client,
                on_block_done=stop_after_five)
    marks = read_done(tmp_path / "run.zarr/pred")[1]
    assert 5 <= marks.sum() < len(marks)
    result = predict(raw=raw, out=f"{tmp_path}/run.zarr/pred", processor=MEAN3, block_shape=(4, 4, 6), client=client)
    assert result.skipped == marks.sum() and result.skipped + result.processed == result.num_blocks
    assert chunk_bytes(tmp_path / "run.zarr/pred") == chunk_bytes(tmp_path / "ref.zarr/pred")
    # a finished output is not touched again
    again = predict(raw=raw, out=f"{tmp_path}/run.zarr/pred", processor=MEAN3, block_shape=(4, 4, 6), client=client)
    assert again.processed == 0 and again.skipped == again.num_blocks


def test_changed_layout_is_refused_unless_starting_over(client, raw_path, tmp_path):
    container, raw = raw_path
    args = dict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/pred", client=client)
    predict(processor=MEAN3, block_shape=(2, 8, 6), **args)
    with pytest.raises(LayoutMismatchError, match=r"block_shape: was \[2, 8, 6\], now \[4, 8, 6\]"):
        predict(processor=MEAN3, block_shape=(4, 8, 6), **args)
    other = FunctionProcessor(mean3, context=1, name="other-filter")
    with pytest.raises(LayoutMismatchError, match="other-filter"):
        predict(processor=other, block_shape=(2, 8, 6), **args)
    result = predict(processor=MEAN3, block_shape=(4, 8, 6), resume=False, **args)
    assert result.skipped == 0 and result.processed == result.num_blocks


def test_blocks_must_cover_whole_chunks_and_shards(client, raw_path, tmp_path):
    container, raw = raw_path
    raw_name = f"{container}/volumes/raw"
    predict(raw=raw_name, out=f"{tmp_path}/o.zarr/pred", processor=MEAN3, block_shape=(4, 8, 8), client=client,
            resume=False)
    with pytest.raises(AlignmentError, match=r"chunks/shards of \(4, 8, 8\)"):
        predict(raw=raw_name, out=f"{tmp_path}/o.zarr/pred", processor=MEAN3, block_shape=(2, 8, 8), client=client,
                resume=False)
    # a sharded output: tasks must write whole shards
    roi = gp.Roi((14, 2, 2), (16, 16, 18))
    zarr.create_array(f"{tmp_path}/s.zarr/pred", shape=(8, 16, 18), chunks=(2, 4, 6), shards=(4, 8, 12),
                      dtype="float32", attributes={"voxel_size": list(VOXEL), "offset": [14, 2, 2]})
    with pytest.raises(AlignmentError, match=r"\(4, 8, 12\)"):
        predict(raw=raw_name, out=f"{tmp_path}/s.zarr/pred", processor=MEAN3, block_shape=(2, 4, 6), client=client)
    predict(raw=raw_name, out=f"{tmp_path}/s.zarr/pred", processor=MEAN3, block_shape=(4, 8, 12), client=client)
    np.testing.assert_array_equal(open_dataset(tmp_path / "s.zarr", "pred").read(), expected_mean(raw, roi))


def test_clear_errors_before_any_work(raw_path, tmp_path):
    container, _ = raw_path
    raw = f"{container}/volumes/raw"
    out = f"{tmp_path}/o.zarr/pred"
    with pytest.raises(DatasetError, match=r"volumes/raw"):
        predict(raw=f"{container}/volumes/nope", out=out, processor=MEAN3)
    with pytest.raises(DatasetError, match="does not exist"):
        predict(raw=f"{tmp_path}/missing.zarr/raw", out=out, processor=MEAN3)
    huge = FunctionProcessor(mean3, context=(8, 1, 1), name="huge")
    with pytest.raises(GeometryError, match="does not fit the data"):
        predict(raw=raw, out=out, processor=huge)
    with pytest.raises(GeometryError, match="lies outside the data"):
        predict(raw=raw, out=out, processor=MEAN3, roi=gp.Roi((10, 0, 0), (8, 8, 8)))
    with pytest.raises(DatasetError, match="Zarr"):
        predict(raw=raw, out=f"{tmp_path}/o.hdf/pred", processor=MEAN3)
    assert not os.path.exists(tmp_path / "o.zarr")


def test_output_under_a_regular_file(raw_path, tmp_path):
    """A path that cannot become a directory (its parent is a file) is refused before any block runs
    (a read-only directory is no test here: CI runs as root, which writes there anyway)."""
    container, _ = raw_path
    blocker = tmp_path / "results"
    blocker.write_text("not a directory\n")
    with pytest.raises(DatasetError, match="is a file, not a directory"):
        predict(raw=f"{container}/volumes/raw", out=f"{blocker}/o.zarr/pred", processor=MEAN3)
    assert blocker.read_text() == "not a directory\n"


@pytest.mark.skipif(os.access("/proc/sys", os.W_OK), reason="needs a read-only file system at /proc/sys")
def test_output_on_a_read_only_file_system(raw_path):
    container, _ = raw_path
    with pytest.raises(DatasetError, match="not writable"):
        predict(raw=f"{container}/volumes/raw", out="/proc/sys/daskseg-test.zarr/pred", processor=MEAN3)


class SteppedMean3(FunctionProcessor):
    """``mean3`` that asks for blocks of multiples of (2, 3, 3) voxels, as a network's output shape does."""

    def __init__(self):
        super().__init__(mean3, context=1, name="stepped-mean3")
        self.block_step = gp.Coordinate((2, 3, 3))
        self.min_block_shape = gp.Coordinate((2, 3, 3))


def test_the_default_block_shape_resumes_when_the_roi_is_smaller_than_a_block(client, raw_path, tmp_path):
    """The default block shape depends on the inputs only: a new output's chunks, clipped to its
    shape, do not change it, so the same call again resumes instead of refusing the layout."""
    container, raw = raw_path
    roi = gp.Roi((12, 1, 1), (20, 17, 19))  # (10, 17, 19) voxels: smaller than one default block
    args = dict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/pred", roi=roi, processor=SteppedMean3(),
                client=client)
    first = predict(**args)
    assert first.processed == first.num_blocks == 1
    assert tuple(first.block_shape) == (10, 18, 21)  # the step's multiples covering the ROI
    assert open_dataset(tmp_path / "o.zarr", "pred").chunk_shape == (10, 17, 19)  # clipped to the shape
    again = predict(**args)
    assert again.skipped == 1 and again.processed == 0 and tuple(again.block_shape) == (10, 18, 21)
    np.testing.assert_array_equal(open_dataset(tmp_path / "o.zarr", "pred").read(), expected_mean(raw, roi))


def fail_counting_tries(x: np.ndarray, log: str, deterministic: bool) -> np.ndarray:
    """Record a try in ``log``, then fail: with an error that recurs (unusable data), or one that may not."""
    from daskseg.errors import InputDataError

    with open(log, "a") as f:
        f.write("try\n")
    if deterministic:
        raise InputDataError("this block's data cannot be used")
    raise RuntimeError("a passing hiccup")


@pytest.mark.parametrize("deterministic, tries", [(True, 1), (False, 3)])
def test_a_deterministic_error_is_not_retried(client, raw_path, tmp_path, deterministic, tries):
    container, _ = raw_path
    log = tmp_path / "tries.log"
    function = functools.partial(fail_counting_tries, log=str(log), deterministic=deterministic)
    processor = FunctionProcessor(function, context=1, name=f"fails-{deterministic}")
    with pytest.raises(BlocksFailedError) as excinfo:
        predict(raw=f"{container}/volumes/raw", out=f"{tmp_path}/o.zarr/pred", processor=processor,
                block_shape=(10, 18, 20), retries=2, client=client)
    assert "1 of 1 blocks failed" in str(excinfo.value)
    assert ("not retried" in str(excinfo.value)) == deterministic
    assert log.read_text().count("try") == tries
