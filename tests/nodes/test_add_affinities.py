"""AddAffinities: hand-listed affinities, ROIs and the grown upstream request, masks, background."""

from __future__ import annotations

import numpy as np
import pytest
from recording import Recorder

import daskseg as gp
from daskseg.errors import RequestError, SpecError
from daskseg.io import write_array
from daskseg.nodes.add_affinities import seg_to_affgraph

LABELS = gp.ArrayKey("AA_LABELS")
AFFS = gp.ArrayKey("AA_AFFS")
LABELS_MASK = gp.ArrayKey("AA_LABELS_MASK")
UNLABELLED = gp.ArrayKey("AA_UNLABELLED")
AFFS_MASK = gp.ArrayKey("AA_AFFS_MASK")
VS = gp.Coordinate((40, 4, 4))
NHOOD = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]

# 2 x 3 x 3 labels; 0 is background
HAND_LABELS = np.array(
    [
        [[1, 1, 2], [1, 1, 2], [0, 0, 2]],
        [[1, 1, 2], [1, 3, 2], [0, 0, 0]],
    ],
    dtype=np.uint64,
)
# every affinity of HAND_LABELS for NHOOD, listed by hand (neighbour outside the array: 0)
HAND_AFFS = np.array(
    [
        # z: voxel (z, y, x) with (z - 1, y, x)
        [[[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[1, 1, 1], [1, 0, 1], [0, 0, 0]]],
        # y: voxel (z, y, x) with (z, y - 1, x)
        [[[0, 0, 0], [1, 1, 1], [0, 0, 1]], [[0, 0, 0], [1, 0, 1], [0, 0, 0]]],
        # x: voxel (z, y, x) with (z, y, x - 1)
        [[[0, 1, 0], [0, 1, 0], [0, 0, 0]], [[0, 1, 0], [0, 0, 0], [0, 0, 0]]],
    ],
    dtype=bool,
)


def _source(tmp_path, arrays, offset=(0, 0, 0)):
    path = tmp_path / "aa.zarr"
    for key, data in arrays.items():
        write_array(path, key.identifier.lower(), data, VS, offset=offset)
    return gp.ZarrSource(path, {key: key.identifier.lower() for key in arrays})


def test_seg_to_affgraph_hand_listed():
    np.testing.assert_array_equal(seg_to_affgraph(HAND_LABELS, np.array(NHOOD)), HAND_AFFS)


def test_positive_and_long_range_offsets():
    labels = np.array([[[3, 3, 0, 3, 5, 5]]], dtype=np.uint64)
    affs = seg_to_affgraph(labels, np.array([[0, 0, 1], [0, 0, -2], [0, 0, 2]]))
    np.testing.assert_array_equal(affs[0, 0, 0], [1, 0, 0, 0, 1, 0])  # with the right neighbour
    np.testing.assert_array_equal(affs[1, 0, 0], [0, 0, 0, 1, 0, 0])  # two to the left
    np.testing.assert_array_equal(affs[2, 0, 0], [0, 1, 0, 0, 0, 0])  # two to the right
    assert not seg_to_affgraph(np.zeros((2, 2, 2), np.uint64), np.array(NHOOD)).any()  # background never affine


def test_pipeline_rois_request_and_values(tmp_path):
    source = _source(tmp_path, {LABELS: HAND_LABELS}, offset=(400, 40, 80))
    record = Recorder()
    pipeline = source + record + gp.AddAffinities(NHOOD, LABELS, AFFS)
    with gp.build(pipeline):
        spec = pipeline.spec[AFFS]
        # the affinities need one voxel of context below in every axis
        assert spec.roi == gp.Roi((440, 44, 84), (40, 8, 8))
        assert spec.dtype == np.uint8 and spec.interpolatable is False and spec.voxel_size == VS
        request = gp.BatchRequest()
        request[AFFS] = gp.ArraySpec(roi=spec.roi)
        request[LABELS] = gp.ArraySpec(roi=spec.roi)
        batch = pipeline.request_batch(request)
    upstream = record.requests[-1]
    assert upstream[LABELS].roi == spec.roi.grow(VS, (0, 0, 0)) == source.spec[LABELS].roi
    assert AFFS not in upstream
    affs = batch[AFFS]
    assert affs.spec.roi == spec.roi and affs.data.dtype == np.uint8 and affs.data.shape == (3, 1, 2, 2)
    np.testing.assert_array_equal(affs.data, HAND_AFFS[:, 1:, 1:, 1:])
    # labels come back cropped to what was asked
    assert batch[LABELS].spec.roi == spec.roi
    np.testing.assert_array_equal(batch[LABELS].data, HAND_LABELS[1:, 1:, 1:])
    np.testing.assert_array_equal(batch.affinity_neighborhood, NHOOD)


def test_larger_volume_against_direct_comparison(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, size=(6, 7, 8)).repeat(2, 1).repeat(2, 2).astype(np.uint64)
    source = _source(tmp_path, {LABELS: labels})
    nhood = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [0, 2, 0], [0, 0, -3]]
    pipeline = source + gp.AddAffinities(nhood, LABELS, AFFS, dtype=np.float32)
    roi = gp.Roi((40, 8, 12), (160, 16, 20))  # voxels z 1:5, y 2:6, x 3:8
    request = gp.BatchRequest()
    request[AFFS] = gp.ArraySpec(roi=roi)
    with gp.build(pipeline):
        affs = pipeline.request_batch(request)[AFFS].data
    assert affs.dtype == np.float32 and affs.shape == (5, 4, 4, 5)
    for c, (dz, dy, dx) in enumerate(nhood):
        for z in range(4):
            for y in range(4):
                for x in range(5):
                    p = labels[1 + z, 2 + y, 3 + x]
                    q = labels[1 + z + dz, 2 + y + dy, 3 + x + dx]
                    assert affs[c, z, y, x] == float(p == q and p != 0)


def test_request_outside_provided_roi(tmp_path):
    source = _source(tmp_path, {LABELS: HAND_LABELS})
    pipeline = source + gp.AddAffinities(NHOOD, LABELS, AFFS)
    request = gp.BatchRequest()
    request[AFFS] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (80, 12, 12)))  # no context for the first voxels
    with gp.build(pipeline):
        with pytest.raises(RequestError, match="AA_AFFS"):
            pipeline.request_batch(request)


def test_affinities_mask_from_labels_mask_and_unlabelled(tmp_path):
    labels = np.array([[[1, 1, 1, 0, 2]]], dtype=np.uint64)
    labels_mask = np.array([[[1, 1, 1, 0, 1]]], dtype=np.uint8)
    unlabelled = np.array([[[1, 1, 0, 0, 1]]], dtype=np.uint8)
    source = _source(tmp_path, {LABELS: labels, LABELS_MASK: labels_mask, UNLABELLED: unlabelled})
    roi = gp.Roi((0, 0, 4), (40, 4, 16))  # x 1:5

    def run(**kwargs):
        pipeline = source + gp.AddAffinities([[0, 0, -1]], LABELS, AFFS, affinities_mask=AFFS_MASK, **kwargs)
        request = gp.BatchRequest()
        request[AFFS] = gp.ArraySpec(roi=roi)
        request[AFFS_MASK] = gp.ArraySpec(roi=roi)
        with gp.build(pipeline):
            batch = pipeline.request_batch(request)
        np.testing.assert_array_equal(batch[AFFS].data[0, 0, 0], [1, 1, 0, 0])
        assert batch[AFFS_MASK].spec.roi == roi and batch[AFFS_MASK].data.dtype == np.uint8
        return batch[AFFS_MASK].data[0, 0, 0]

    np.testing.assert_array_equal(run(), [1, 1, 1, 1])
    # an affinity touching a masked-out voxel (x = 3) is masked out
    np.testing.assert_array_equal(run(labels_mask=LABELS_MASK), [1, 1, 0, 0])
    # only affinities between two unlabelled voxels (x = 2, 3) are masked out
    np.testing.assert_array_equal(run(unlabelled=UNLABELLED), [1, 1, 0, 1])
    np.testing.assert_array_equal(run(labels_mask=LABELS_MASK, unlabelled=UNLABELLED), [1, 1, 0, 0])


def test_autoskip_and_setup_errors(tmp_path):
    source = _source(tmp_path, {LABELS: HAND_LABELS})
    record = Recorder()
    pipeline = source + record + gp.AddAffinities(NHOOD, LABELS, AFFS)
    request = gp.BatchRequest()
    roi = gp.Roi((0, 0, 0), (80, 12, 12))
    request[LABELS] = gp.ArraySpec(roi=roi)
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert AFFS not in batch and record.requests[-1][LABELS].roi == roi
    with pytest.raises(SpecError, match="2D offsets"):
        with gp.build(source + gp.AddAffinities([[0, -1], [-1, 0]], LABELS, AFFS)):
            pass
    with pytest.raises(ValueError, match="affinity_neighborhood"):
        gp.AddAffinities([], LABELS, AFFS)
