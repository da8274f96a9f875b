"""GrowBoundary: hand-checked cubes, only_xy, batch borders, masks, and gunpowder's per-label erosion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array
from daskseg.nodes.grow_boundary import grow_boundary

LABELS = gp.ArrayKey("GB_LABELS")
MASK = gp.ArrayKey("GB_MASK")
VS = (40, 4, 4)


def _source(tmp_path, labels, mask=None, offset=(0, 0, 0), mask_offset=None):
    path = tmp_path / "gb.zarr"
    write_array(path, "labels", labels, VS, offset=offset)
    datasets = {LABELS: "labels"}
    if mask is not None:
        write_array(path, "mask", mask, VS, offset=mask_offset or offset)
        datasets[MASK] = "mask"
    return gp.ZarrSource(path, datasets)


def _request(roi, *keys):
    request = gp.BatchRequest()
    for key in keys or (LABELS,):
        request[key] = gp.ArraySpec(roi=roi)
    return request


def _touching_cubes():
    """Background everywhere, cube 1 at [1:5, 2:8, 2:6] and cube 2 at [1:5, 2:8, 6:10] touching in x."""
    labels = np.zeros((6, 10, 12), dtype=np.uint64)
    labels[1:5, 2:8, 2:6] = 1
    labels[1:5, 2:8, 6:10] = 2
    return labels


def _reference(labels, steps, background=0, only_xy=False, mask=None):
    """gunpowder's definition: erode every label (plus masked-out voxels) with scipy, border_value=1."""
    if only_xy:
        sections = [
            _reference(labels[z], steps, background, False, None if mask is None else mask[z]) for z in range(len(labels))
        ]
        return np.stack(sections)
    foreground = np.zeros(labels.shape, dtype=bool)
    for label in np.unique(labels):
        if label == background:
            continue
        region = labels == label
        if mask is not None:
            region |= mask == 0
        foreground |= ndimage.binary_erosion(region, iterations=steps, border_value=1)
    out = labels.copy()
    out[~foreground] = background
    return out


def test_touching_cubes_only_xy(tmp_path):
    labels = _touching_cubes()
    source = _source(tmp_path, labels)
    pipeline = source + gp.GrowBoundary(LABELS, steps=1, only_xy=True)
    with gp.build(pipeline):
        out = pipeline.request_batch(_request(source.spec[LABELS].roi))[LABELS].data
    expected = np.zeros_like(labels)
    # eroded by one voxel in y and x wherever a cube meets background or the other cube; z untouched
    expected[1:5, 3:7, 3:5] = 1
    expected[1:5, 3:7, 7:9] = 2
    np.testing.assert_array_equal(out, expected)


def test_touching_cubes_3d(tmp_path):
    labels = _touching_cubes()
    source = _source(tmp_path, labels)
    pipeline = source + gp.GrowBoundary(LABELS, steps=1)
    with gp.build(pipeline):
        out = pipeline.request_batch(_request(source.spec[LABELS].roi))[LABELS].data
    expected = np.zeros_like(labels)
    expected[2:4, 3:7, 3:5] = 1
    expected[2:4, 3:7, 7:9] = 2
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_boundary_is_steps_wide_on_each_side(steps):
    # two objects filling the whole array, meeting at x = 8: no background, no border erosion
    labels = np.ones((3, 5, 16), dtype=np.uint64)
    labels[..., 8:] = 7
    out = grow_boundary(labels, steps, axes=(1, 2))
    background_columns = np.flatnonzero((out == 0).all(axis=(0, 1)))
    np.testing.assert_array_equal(background_columns, np.arange(8 - steps, 8 + steps))
    assert (out[..., : 8 - steps] == 1).all() and (out[..., 8 + steps :] == 7).all()
    assert (labels[..., 8:] == 7).all()  # input untouched


def test_only_xy_leaves_z_interfaces():
    labels = np.ones((6, 5, 5), dtype=np.uint64)
    labels[3:] = 2  # the objects meet between z = 2 and z = 3
    np.testing.assert_array_equal(grow_boundary(labels, 2, axes=(1, 2)), labels)
    grown = grow_boundary(labels, 2)
    assert (grown[1:5] == 0).all() and (grown[0] == 1).all() and (grown[5] == 2).all()


def test_background_value_and_steps_zero():
    labels = np.full((4, 4), 5, dtype=np.int32)
    labels[:, 2:] = 6
    np.testing.assert_array_equal(grow_boundary(labels, 0), labels)
    out = grow_boundary(labels, 1, background=9)
    np.testing.assert_array_equal(out, [[5, 9, 9, 6]] * 4)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("only_xy", [False, True])
def test_matches_per_label_erosion(seed, only_xy):
    rng = np.random.default_rng(seed)
    # blocky random labels with background and many objects
    labels = rng.integers(0, 6, size=(4, 6, 6)).repeat(2, 0).repeat(2, 1).repeat(2, 2).astype(np.uint64)
    labels = labels[:, : 11 - seed % 3, :]
    steps = 1 + seed % 3
    axes = (1, 2) if only_xy else None
    np.testing.assert_array_equal(grow_boundary(labels, steps, axes=axes), _reference(labels, steps, only_xy=only_xy))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("only_xy", [False, True])
def test_mask_matches_per_label_erosion(seed, only_xy):
    rng = np.random.default_rng(100 + seed)
    labels = rng.integers(0, 4, size=(4, 5, 5)).repeat(2, 0).repeat(2, 1).repeat(2, 2).astype(np.uint64)
    mask = (rng.random((4, 5, 5)) < 0.7).repeat(2, 0).repeat(2, 1).repeat(2, 2).astype(np.uint8)
    steps = 1 + seed % 3
    axes = (1, 2) if only_xy else None
    out = grow_boundary(labels, steps, axes=axes, mask=mask)
    np.testing.assert_array_equal(out, _reference(labels, steps, only_xy=only_xy, mask=mask))


def test_mask_stops_growth_towards_unknown():
    labels = np.ones((1, 4, 8), dtype=np.uint64)
    labels[..., 4:] = 0  # background on the right ...
    mask = np.ones_like(labels, dtype=np.uint8)
    mask[..., 4:] = 0  # ... but it is unknown, not real background
    np.testing.assert_array_equal(grow_boundary(labels, 2, axes=(1, 2), mask=mask), labels)
    without = grow_boundary(labels, 2, axes=(1, 2))
    assert (without[..., 2:4] == 0).all() and (without[..., :2] == 1).all()


def test_no_growth_at_batch_border(tmp_path):
    labels = np.ones((4, 12, 12), dtype=np.uint64)
    labels[:, :, 6:] = 2
    source = _source(tmp_path, labels, offset=(40, 8, 8))
    pipeline = source + gp.GrowBoundary(LABELS, steps=2, only_xy=True)
    # a request inside the volume: its borders are not object borders
    roi = gp.Roi((80, 16, 16), (80, 24, 24))  # voxels z 1:3, y 2:8, x 2:8
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(roi))
    out = batch[LABELS].data
    assert batch[LABELS].spec.roi == roi
    expected = labels[1:3, 2:8, 2:8].copy()
    expected[..., 2:6] = 0  # x 4:8 in the volume, two voxels either side of x = 6
    np.testing.assert_array_equal(out, expected)
    with gp.build(source):
        untouched = source.request_batch(_request(roi))[LABELS].data
    np.testing.assert_array_equal(untouched, labels[1:3, 2:8, 2:8])


def test_mask_in_pipeline_only_where_mask_overlaps(tmp_path):
    labels = np.ones((2, 6, 12), dtype=np.uint64)
    labels[..., 6:] = 2
    mask = np.ones((2, 6, 6), dtype=np.uint8)  # covers x 3:9 of the labels
    source = _source(tmp_path, labels, mask=mask, mask_offset=(0, 0, 12))
    pipeline = source + gp.GrowBoundary(LABELS, mask=MASK, steps=1, only_xy=True)
    request = _request(gp.Roi((0, 0, 12), (80, 24, 24)))  # x 3:9, inside the mask
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert MASK not in batch
    expected = labels[..., 3:9].copy()
    expected[..., 2:4] = 0
    np.testing.assert_array_equal(batch[LABELS].data, expected)


def test_errors(tmp_path):
    source = _source(tmp_path, _touching_cubes())
    with pytest.raises(ValueError, match="steps"):
        gp.GrowBoundary(LABELS, steps=-1)
    with pytest.raises(SpecError, match="GB_MASK"):
        with gp.build(source + gp.GrowBoundary(LABELS, mask=MASK)):
            pass



def test_mask_smaller_than_labels(tmp_path):
    labels = np.ones((2, 6, 12), dtype=np.uint64)
    labels[..., 6:] = 2
    mask = np.ones((2, 6, 4), dtype=np.uint8)  # covers only x 4:8 of the labels
    source = _source(tmp_path, labels, mask=mask, mask_offset=(0, 0, 16))
    pipeline = source + gp.GrowBoundary(LABELS, mask=MASK, steps=2, only_xy=True)
    with gp.build(pipeline):
        out = pipeline.request_batch(_request(gp.Roi((0, 0, 0), (80, 24, 48))))[LABELS].data
    expected = labels.copy()
    expected[..., 4:8] = 0  # grown inside the mask's ROI only, and not at its border
    np.testing.assert_array_equal(out, expected)
