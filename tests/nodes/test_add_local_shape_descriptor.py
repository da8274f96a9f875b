"""AddLocalShapeDescriptor: the grown upstream request, values against the function on the whole
array, provided ROI, masks, components, downsampling and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import daskseg as gp
from daskseg.errors import ArgumentError, DaskSegError
from daskseg.io import write_array
from daskseg.local_shape_descriptor import get_local_shape_descriptors

LABELS = gp.ArrayKey("LSD_LABELS")
LSDS = gp.ArrayKey("LSD_LSDS")
LSDS_MASK = gp.ArrayKey("LSD_LSDS_MASK")
LABELS_MASK = gp.ArrayKey("LSD_LABELS_MASK")
UNLABELLED = gp.ArrayKey("LSD_UNLABELLED")
VS = gp.Coordinate((2, 1, 1))
SHAPE = (20, 30, 32)


def _labels(seed=0):
    rng = np.random.default_rng(seed)
    seeds = np.zeros(SHAPE, dtype=np.uint64)
    for i, point in enumerate(rng.integers(0, SHAPE, size=(10, 3))):
        seeds[tuple(point)] = 100 + i
    _, nearest = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[tuple(nearest)]
    labels[:, 10, :] = 0
    return labels


def _source(tmp_path, arrays):
    path = tmp_path / "lsd.zarr"
    for key, data in arrays.items():
        write_array(path, key.identifier.lower(), data, VS)
    return gp.ZarrSource(path, {key: key.identifier.lower() for key in arrays})


def _request(roi, *keys):
    request = gp.BatchRequest()
    for key in keys:
        request[key] = gp.ArraySpec(roi=roi)
    return request


def test_values_context_and_provided_roi(tmp_path):
    labels = _labels()
    node = gp.AddLocalShapeDescriptor(LABELS, LSDS, sigma=(4.0, 2.0, 2.0))
    pipeline = _source(tmp_path, {LABELS: labels}) + node
    roi = gp.Roi((12, 9, 10), (8, 12, 14))
    with gp.build(pipeline) as p:
        # Gaussian truncated at 3 sigma: 6 voxels on every axis, i.e. 12 nm in z
        assert node.context == gp.Coordinate((12, 6, 6))
        assert p.spec[LSDS].roi == gp.Roi((12, 6, 6), (16, 18, 20))
        batch = p.request_batch(_request(roi, LSDS, LABELS))
    region = (slice(6, 10), slice(9, 21), slice(10, 24))
    expected = get_local_shape_descriptors(labels, (4.0, 2.0, 2.0), voxel_size=VS, region=region)
    assert batch[LSDS].data.shape == (10, 4, 12, 14) and batch[LSDS].data.dtype == np.float32
    np.testing.assert_allclose(batch[LSDS].data, expected, atol=1e-6)
    assert batch[LSDS].spec.roi == roi
    # labels were requested grown by the context and are delivered cropped to the request
    assert batch[LABELS].spec.roi == roi
    np.testing.assert_array_equal(batch[LABELS].data, labels[region])


def test_request_beyond_context_fails(tmp_path):
    pipeline = _source(tmp_path, {LABELS: _labels()}) + gp.AddLocalShapeDescriptor(LABELS, LSDS, sigma=2.0)
    with gp.build(pipeline) as p, pytest.raises(DaskSegError):
        p.request_batch(_request(gp.Roi((0, 0, 0), (8, 8, 8)), LSDS))


def test_masks(tmp_path):
    labels = _labels(1)
    labels_mask = np.ones(SHAPE, dtype=np.uint8)
    labels_mask[:, :, 20:] = 0
    unlabelled = np.ones(SHAPE, dtype=np.uint8)
    unlabelled[6:, :, :] = 0
    arrays = {LABELS: labels, LABELS_MASK: labels_mask, UNLABELLED: unlabelled}
    roi = gp.Roi((8, 10, 10), (12, 10, 14))
    region = (slice(4, 10), slice(10, 20), slice(10, 24))
    plain = _source(tmp_path, arrays) + gp.AddLocalShapeDescriptor(LABELS, LSDS, lsds_mask=LSDS_MASK, sigma=2.0)
    with gp.build(plain) as p:
        batch = p.request_batch(_request(roi, LSDS, LSDS_MASK))
    mask = batch[LSDS_MASK].data
    assert mask.shape == (10, 6, 10, 14) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask, np.broadcast_to(labels[region] != 0, mask.shape))

    masked = _source(tmp_path, arrays) + gp.AddLocalShapeDescriptor(
        LABELS, LSDS, lsds_mask=LSDS_MASK, labels_mask=LABELS_MASK, unlabelled=UNLABELLED, sigma=2.0, components="09"
    )
    with gp.build(masked) as p:
        batch = p.request_batch(_request(roi, LSDS_MASK))  # the mask alone
    expected = (labels_mask[region] != 0) & (unlabelled[region] != 0)
    assert batch[LSDS_MASK].data.shape == (2, 6, 10, 14)
    np.testing.assert_array_equal(batch[LSDS_MASK].data[1], expected)
    assert 0 < expected.sum() < expected.size


def test_components_mode_and_downsample_reach_the_function(tmp_path):
    labels = _labels(2)
    roi = gp.Roi((8, 10, 10), (8, 12, 12))
    region = (slice(4, 8), slice(10, 22), slice(10, 22))
    node = gp.AddLocalShapeDescriptor(
        LABELS, LSDS, sigma=(8.0, 4.0, 4.0), mode="sphere", components="3459", downsample=2
    )
    with gp.build(_source(tmp_path, {LABELS: labels}) + node) as p:
        got = p.request_batch(_request(roi, LSDS))[LSDS].data
    # sphere of radius 4 voxels, 2 once downsampled: lsds' kernel reaches 2 downsampled voxels
    assert node.context == gp.Coordinate((8, 4, 4))
    expected = get_local_shape_descriptors(
        labels, (8.0, 4.0, 4.0), voxel_size=(2, 1, 1), region=region, mode="sphere", components="3459", downsample=2
    )
    assert got.shape == (4, 4, 12, 12)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_bad_arguments(tmp_path):
    with pytest.raises(ArgumentError, match="mode"):
        gp.AddLocalShapeDescriptor(LABELS, LSDS, mode="cube")
    with pytest.raises(ArgumentError, match="components"):
        gp.AddLocalShapeDescriptor(LABELS, LSDS, components="0a")
    with pytest.raises(ArgumentError, match="downsample"):
        gp.AddLocalShapeDescriptor(LABELS, LSDS, downsample=0)
    sphere = gp.AddLocalShapeDescriptor(LABELS, LSDS, sigma=2.0, mode="sphere")
    with (
        pytest.raises(ArgumentError, match="same sigma in voxels"),
        gp.build(_source(tmp_path, {LABELS: _labels()}) + sphere),
    ):
        pass
