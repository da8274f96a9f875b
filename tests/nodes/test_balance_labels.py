"""BalanceLabels: balanced class sums, hand-computed clipping, masks, slabs, ROIs and errors."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

AFFS = gp.ArrayKey("BL_AFFS")
SCALES = gp.ArrayKey("BL_SCALES")
MASK = gp.ArrayKey("BL_MASK")
VS = (40, 4, 4)


def _source(tmp_path, arrays):
    path = tmp_path / "bl.zarr"
    for key, data in arrays.items():
        write_array(path, key.identifier.lower(), data, VS)
    return gp.ZarrSource(path, {key: key.identifier.lower() for key in arrays})


def _scales(tmp_path, labels, mask=None, roi=None, **kwargs):
    arrays = {AFFS: labels} if mask is None else {AFFS: labels, MASK: mask}
    source = _source(tmp_path, arrays)
    pipeline = source + gp.BalanceLabels(AFFS, SCALES, mask=None if mask is None else MASK, **kwargs)
    with gp.build(pipeline):
        request = gp.BatchRequest()
        request[SCALES] = gp.ArraySpec(roi=roi or pipeline.spec[AFFS].roi)
        batch = pipeline.request_batch(request)
    return batch[SCALES]


def _labels(shape, positives, seed=0):
    """uint8 labels of ``shape`` with exactly ``positives`` ones at random places."""
    flat = np.zeros(int(np.prod(shape)), dtype=np.uint8)
    flat[np.random.default_rng(seed).choice(flat.size, positives, replace=False)] = 1
    return flat.reshape(shape)


def test_balanced_sums_within_clip_range(tmp_path):
    labels = _labels((3, 2, 4, 4), 30)  # 30 of 96 positive
    scales = _scales(tmp_path, labels)
    data = scales.data
    assert data.dtype == np.float32 and data.shape == labels.shape
    # frac_pos = 30/96: w_pos = 1/(2*30/96) = 1.6, w_neg = 1/(2*66/96) = 96/132
    np.testing.assert_allclose(data[labels == 1], 1.6, rtol=1e-6)
    np.testing.assert_allclose(data[labels == 0], 96 / 132, rtol=1e-6)
    np.testing.assert_allclose(data[labels == 1].sum(), data[labels == 0].sum(), rtol=1e-6)
    np.testing.assert_allclose(data.sum(), labels.size, rtol=1e-6)


def test_clipping_hand_computed(tmp_path):
    labels = _labels((1, 4, 5, 5), 1)  # 1 of 100 positive: fractions 0.01 and 0.99
    data = _scales(tmp_path, labels).data
    # clipped to 0.05 and 0.95
    np.testing.assert_allclose(data[labels == 1], 1 / (2 * 0.05), rtol=1e-6)
    np.testing.assert_allclose(data[labels == 0], 1 / (2 * 0.95), rtol=1e-6)
    data = _scales(tmp_path, labels, clipmin=0.2, clipmax=0.7).data
    np.testing.assert_allclose(data[labels == 1], 1 / (2 * 0.2), rtol=1e-6)
    np.testing.assert_allclose(data[labels == 0], 1 / (2 * 0.7), rtol=1e-6)


def test_mask_zeroes_and_restricts_fractions(tmp_path):
    labels = np.zeros((2, 4, 4), dtype=np.uint8)
    labels[:, :, :1] = 1  # 8 positives
    mask = np.ones_like(labels)
    mask[:, :, 3] = 0  # 8 masked out, all negative: 8 of 24 masked-in are positive
    data = _scales(tmp_path, labels, mask=mask).data
    assert (data[mask == 0] == 0).all()
    np.testing.assert_allclose(data[(mask == 1) & (labels == 1)], 1 / (2 * 8 / 24), rtol=1e-6)
    np.testing.assert_allclose(data[(mask == 1) & (labels == 0)], 1 / (2 * 16 / 24), rtol=1e-6)


def test_slab_per_channel(tmp_path):
    labels = np.zeros((2, 1, 4, 4), dtype=np.uint8)
    labels[0, 0, 0, :] = 1  # channel 0: 4 of 16 positive
    labels[1, 0, :2, :] = 1  # channel 1: 8 of 16 positive
    data = _scales(tmp_path, labels, slab=(1, -1, -1, -1)).data
    np.testing.assert_allclose(data[0][labels[0] == 1], 2.0, rtol=1e-6)
    np.testing.assert_allclose(data[0][labels[0] == 0], 1 / (2 * 0.75), rtol=1e-6)
    np.testing.assert_allclose(data[1], 1.0, rtol=1e-6)
    # without slab, one balance over all 32: 12 positive
    data = _scales(tmp_path, labels).data
    np.testing.assert_allclose(data[labels == 1], 1 / (2 * 12 / 32), rtol=1e-6)


def test_multiclass(tmp_path):
    labels = np.array([[[0, 0, 1, 2], [2, 2, 2, 2]]], dtype=np.uint8)  # fractions 2/8, 1/8, 5/8
    data = _scales(tmp_path, labels, num_classes=3, clipmin=None, clipmax=None).data
    expected = np.choose(labels, [1 / (3 * 2 / 8), 1 / (3 * 1 / 8), 1 / (3 * 5 / 8)])
    np.testing.assert_allclose(data, expected, rtol=1e-6)
    for c in range(3):
        np.testing.assert_allclose(data[labels == c].sum(), 8 / 3, rtol=1e-6)


def test_roi_is_requested_scales_roi(tmp_path):
    labels = np.ones((1, 4, 8, 8), dtype=np.uint8)  # mostly positive ...
    labels[:, 1:3, 2:6, 2:6] = _labels((1, 2, 4, 4), 8)  # ... but 8 of 32 inside the requested ROI
    roi = gp.Roi((40, 8, 8), (80, 16, 16))  # voxels 1:3, 2:6, 2:6
    scales = _scales(tmp_path, labels, roi=roi)
    assert scales.spec.roi == roi and scales.spec.voxel_size == VS and scales.data.shape == (1, 2, 4, 4)
    part = labels[:, 1:3, 2:6, 2:6]
    np.testing.assert_allclose(scales.data[part == 1], 1 / (2 * 0.25), rtol=1e-6)
    np.testing.assert_allclose(scales.data[part == 0], 1 / (2 * 0.75), rtol=1e-6)


def test_labels_out_of_range(tmp_path):
    labels = np.array([[[0, 1, 2]]], dtype=np.uint8)
    with pytest.raises(ValueError, match="num_classes"):
        _scales(tmp_path, labels)


def test_tutorial_label_chain(tmp_path):
    """GrowBoundary + AddAffinities + BalanceLabels as in the tutorial, one request for affs and weights."""
    labels_key = gp.ArrayKey("BL_LABELS")
    rng = np.random.default_rng(1)
    labels = rng.integers(1, 40, size=(5, 6, 6)).repeat(2, 0).repeat(4, 1).repeat(4, 2).astype(np.uint64)
    source = _source(tmp_path, {labels_key: labels})
    pipeline = (
        source
        + gp.GrowBoundary(labels_key, steps=1, only_xy=True)
        + gp.AddAffinities([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], labels_key, AFFS)
        + gp.BalanceLabels(AFFS, SCALES)
    )
    roi = gp.Roi((80, 16, 16), (240, 64, 64))
    request = gp.BatchRequest({AFFS: gp.ArraySpec(roi=roi), SCALES: gp.ArraySpec(roi=roi)})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    affs, scales = batch[AFFS], batch[SCALES]
    assert affs.spec.roi == scales.spec.roi == request[AFFS].roi
    assert affs.data.shape == scales.data.shape == (3, 6, 16, 16)
    frac = affs.data.mean()
    assert 0.05 < frac < 0.95
    np.testing.assert_allclose(scales.data[affs.data == 1].sum(), scales.data[affs.data == 0].sum(), rtol=1e-5)
