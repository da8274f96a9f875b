"""Blockwise evaluation on a real LocalCluster equals the in-memory scores of the whole arrays, for
block shapes that do and do not divide the volume, with masks, offsets, HDF5 and resumed runs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from dask_fixtures import local_client
from distributed import get_task_stream

from daskseg.blockwise import evaluate, plan_evaluate
from daskseg.blockwise.done import read_done
from daskseg.errors import DatasetError, GeometryError
from daskseg.io import write_array
from daskseg.segment import SegmentError, cremi_scores

VS = (4, 2, 2)
SHAPE = (7, 13, 11)


@pytest.fixture(scope="module")
def client():
    with local_client(n_workers=2) as c:
        yield c


def labels(seed: int, shape=SHAPE, high=6, dtype=np.uint64) -> np.ndarray:
    """Blobs of a few labels (so objects span blocks), 0 included."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, high, size=tuple(-(-s // 3) for s in shape))
    return np.kron(coarse, np.ones((3, 3, 3), int))[tuple(slice(0, s) for s in shape)].astype(dtype)


@pytest.fixture
def volumes(tmp_path):
    gt = labels(0)
    seg = labels(1, dtype=np.uint32)
    seg[labels(2) == 1] = 0  # some unsegmented voxels inside objects
    write_array(tmp_path / "gt.zarr", "volumes/labels", gt, VS, offset=(40, 10, 20), chunk_shape=(3, 4, 4))
    write_array(tmp_path / "seg.zarr", "volumes/segmentation", seg, VS, offset=(40, 10, 20), chunk_shape=(4, 5, 3))
    return tmp_path, seg, gt


def assert_scores_equal(result, expected):
    for name, value in expected.items():
        assert getattr(result, name) == pytest.approx(value, abs=1e-9, rel=0), name


@pytest.mark.parametrize("block_shape", [(2, 4, 3), (3, 5, 4), (7, 13, 11), (1, 13, 2), (20, 20, 20)])
def test_blockwise_scores_equal_the_in_memory_scores(client, volumes, block_shape):
    tmp_path, seg, gt = volumes
    result = evaluate(f"{tmp_path}/seg.zarr/volumes/segmentation", f"{tmp_path}/gt.zarr/volumes/labels",
                      block_shape=block_shape, client=client, progress=False)
    expected = cremi_scores(seg, gt)
    assert_scores_equal(result, expected)
    assert result.voxels == seg.size and result.num_blocks == result.processed
    assert result.num_blocks == np.prod([-(-s // min(b, s)) for s, b in zip(SHAPE, block_shape)])
    # the work directory (next to the segmentation) is gone after scoring
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".daskseg-evaluate")]


def test_differences_to_in_memory_are_at_rounding_level(client, volumes):
    tmp_path, seg, gt = volumes
    result = evaluate(f"{tmp_path}/seg.zarr/volumes/segmentation", f"{tmp_path}/gt.zarr/volumes/labels",
                      block_shape=(2, 3, 5), client=client, progress=False, fan_in=2)
    expected = cremi_scores(seg, gt)
    assert max(abs(result.scores()[k] - v) for k, v in expected.items()) < 1e-12


def test_the_intersection_of_offset_rois_with_a_mask(client, tmp_path):
    gt = labels(3, shape=(8, 12, 12))
    seg = labels(4, shape=(6, 14, 10))
    mask = (np.random.default_rng(5).random((9, 12, 12)) < 0.7).astype(np.uint8)
    # gt at z 0..32, seg at z 8..32 (voxels 2..8 of gt), y -4..24 vs 0..24, x 0..20 vs 0..24
    write_array(tmp_path / "gt.zarr", "gt", gt, VS, offset=(0, 0, 0))
    write_array(tmp_path / "seg.hdf", "volumes/seg", seg, VS, offset=(8, -4, 0))
    write_array(tmp_path / "mask.zarr", "mask", mask, VS, offset=(4, 0, 0))
    result = evaluate(f"{tmp_path}/seg.hdf/volumes/seg", f"{tmp_path}/gt.zarr/gt", f"{tmp_path}/mask.zarr/mask",
                      block_shape=(4, 5, 4), client=client, progress=False)
    # common ROI: z 8..32 -> gt 2..8, seg 0..6, mask 1..7; y 0..24 -> gt 0..12, seg 2..14; x 0..20
    g, s, m = gt[2:8, :, :10], seg[0:6, 2:14, :], mask[1:7, :, :10]
    assert (tuple(result.roi.offset), tuple(result.roi.shape)) == ((8, 0, 0), (24, 24, 20))
    assert_scores_equal(result, cremi_scores(s, g, mask=m))
    assert result.voxels == int(m.sum())


def test_dashboard_names_say_the_stage_and_the_client_gets_only_scores(client, volumes):
    tmp_path, seg, gt = volumes
    with get_task_stream(client) as stream:
        evaluate(f"{tmp_path}/seg.zarr/volumes/segmentation", f"{tmp_path}/gt.zarr/volumes/labels",
                 block_shape=(2, 4, 4), client=client, progress=False, fan_in=3)
    keys = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in stream.data]
    blocks = [k for k in keys if k.startswith("evaluate-block-")]
    sums = [k for k in keys if k.startswith("evaluate-sum-")]
    assert blocks and len([k for k in keys if k.startswith("evaluate-scores-")]) == 1
    # 4 x 4 x 3 = 48 blocks: 16 leaves, then 6, 2, 1 (fan_in 3)
    assert len(sums) == 16 + 6 + 2 + 1
    assert {k.split("-")[2] for k in sums} == {"0", "1", "2", "3"}
    assert set(keys) == set(blocks) | set(sums) | {k for k in keys if k.startswith("evaluate-scores-")}


def test_an_interrupted_evaluation_resumes(client, volumes):
    tmp_path, seg, gt = volumes
    args = (f"{tmp_path}/seg.zarr/volumes/segmentation", f"{tmp_path}/gt.zarr/volumes/labels")
    work = tmp_path / "work"
    # count half of the blocks, as a run stopped half-way would have
    task = plan_evaluate(*args, block_shape=(3, 5, 4), work_dir=work)
    with task.open_record() as record:
        for flat in range(len(task.grid) // 2):
            task.function(task.grid.block(flat), *task.args)
            record.mark_done(flat)
    result = evaluate(*args, block_shape=(3, 5, 4), client=client, work_dir=work, keep_tables=True, progress=False)
    assert (result.skipped, result.processed) == (len(task.grid) // 2, len(task.grid) - len(task.grid) // 2)
    assert_scores_equal(result, cremi_scores(seg, gt))
    assert read_done(work)[1].all()
    again = evaluate(*args, block_shape=(3, 5, 4), client=client, work_dir=work, progress=False)
    assert again.skipped == len(task.grid) and again.processed == 0
    assert_scores_equal(again, cremi_scores(seg, gt))
    assert not work.exists()


def test_bad_inputs_are_named_before_anything_runs(tmp_path):
    gt = labels(0)
    write_array(tmp_path / "a.zarr", "gt", gt, VS)
    write_array(tmp_path / "a.zarr", "other_vs", gt, (4, 4, 4))
    write_array(tmp_path / "a.zarr", "far", gt, VS, offset=(4000, 0, 0))
    write_array(tmp_path / "a.zarr", "float", gt.astype(np.float32), VS)
    gt_path = f"{tmp_path}/a.zarr/gt"
    with pytest.raises(GeometryError, match=r"voxel sizes differ: the segmentation .*other_vs has voxel size \(4, 4, 4\), the ground truth"):
        plan_evaluate(f"{tmp_path}/a.zarr/other_vs", gt_path)
    with pytest.raises(GeometryError, match="do not overlap"):
        plan_evaluate(f"{tmp_path}/a.zarr/far", gt_path)
    with pytest.raises(SegmentError, match="float32 values; labels must be integers"):
        plan_evaluate(f"{tmp_path}/a.zarr/float", gt_path)
    with pytest.raises(GeometryError, match=r"voxel sizes differ: .* the mask .* has voxel size \(4, 4, 4\)"):
        plan_evaluate(gt_path, gt_path, f"{tmp_path}/a.zarr/other_vs")
    with pytest.raises(DatasetError, match="no array 'missing'"):
        plan_evaluate(f"{tmp_path}/a.zarr/missing", gt_path)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".daskseg-evaluate")]
