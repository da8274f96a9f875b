"""DownSample and UpSample: voxel sizes, ROIs and data against hand-computed arrays."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("DS_RAW")
LOW = gp.ArrayKey("DS_LOW")
HIGH = gp.ArrayKey("DS_HIGH")


def _source(tmp_path, data, vs):
    path = tmp_path / "ds.zarr"
    write_array(path, "raw", data, vs)
    return gp.ZarrSource(path, {RAW: "raw"})


def test_downsample_takes_every_factor_th_voxel_from_the_roi_begin(tmp_path):
    data = np.arange(36, dtype=np.uint8).reshape(6, 6)
    pipeline = _source(tmp_path, data, (2, 2)) + gp.DownSample(RAW, (2, 3), LOW)
    with gp.build(pipeline):
        assert pipeline.spec[LOW].voxel_size == (4, 6)
        assert pipeline.spec[LOW].roi == gp.Roi((0, 0), (12, 12))
        roi = gp.Roi((4, 0), (8, 12))
        batch = pipeline.request_batch(gp.BatchRequest({LOW: gp.ArraySpec(roi=roi)}))
    out = batch[LOW]
    assert out.spec.roi == roi and out.spec.voxel_size == (4, 6)
    # voxel rows 2..5 every 2nd -> 2, 4; columns 0..5 every 3rd -> 0, 3
    np.testing.assert_array_equal(out.data, [[12, 15], [24, 27]])


def test_downsample_int_factor_and_channels(tmp_path):
    data = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    path = tmp_path / "c.zarr"
    write_array(path, "raw", data, (1, 1))
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.DownSample(RAW, 2, LOW)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({LOW: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))}))
    np.testing.assert_array_equal(batch[LOW].data, data[:, ::2, ::2])


def test_upsample_repeats_voxels_and_crops_to_the_request(tmp_path):
    data = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    pipeline = _source(tmp_path, data, (4, 4)) + gp.UpSample(RAW, 2, HIGH)
    with gp.build(pipeline):
        assert pipeline.spec[HIGH].voxel_size == (2, 2)
        roi = gp.Roi((2, 0), (4, 8))  # not on the source's 4-grid: upstream is asked for the grown ROI
        batch = pipeline.request_batch(gp.BatchRequest({HIGH: gp.ArraySpec(roi=roi)}))
    assert batch[HIGH].spec.roi == roi
    np.testing.assert_array_equal(batch[HIGH].data, [[1, 1, 2, 2], [3, 3, 4, 4]])


def test_upsample_refuses_a_factor_that_does_not_divide_the_voxel_size(tmp_path):
    pipeline = _source(tmp_path, np.zeros((2, 2), np.uint8), (4, 4)) + gp.UpSample(RAW, gp.Coordinate(3, 1), HIGH)
    with pytest.raises(ValueError, match="not divisible"):
        with gp.build(pipeline):
            pass


def test_bad_arguments_are_value_and_assertion_errors():
    for make in (lambda: gp.DownSample("raw", 2, LOW), lambda: gp.UpSample(RAW, 2.5, HIGH)):
        with pytest.raises(ValueError):
            make()
        with pytest.raises(AssertionError):
            make()
