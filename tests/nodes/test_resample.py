"""Resample: voxel sizes and ROIs, nearest-neighbour values by hand, linear interpolation invariants."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("RS_RAW")
OUT = gp.ArrayKey("RS_OUT")


def _source(tmp_path, data, vs):
    path = tmp_path / "rs.zarr"
    write_array(path, "raw", data, vs)
    return gp.ZarrSource(path, {RAW: "raw"})


def test_nearest_upsampling_repeats_voxels(tmp_path):
    data = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint64)  # uint64: not interpolatable -> nearest
    pipeline = _source(tmp_path, data, (4, 4)) + gp.Resample(RAW, (2, 2), OUT)
    with gp.build(pipeline):
        assert pipeline.spec[OUT].voxel_size == (2, 2) and pipeline.spec[OUT].roi == gp.Roi((0, 0), (8, 12))
        roi = gp.Roi((0, 4), (8, 4))
        batch = pipeline.request_batch(gp.BatchRequest({OUT: gp.ArraySpec(roi=roi)}))
    assert batch[OUT].spec.roi == roi
    np.testing.assert_array_equal(batch[OUT].data, [[2, 2], [2, 2], [5, 5], [5, 5]])


def test_linear_downsampling_of_a_ramp_averages_and_keeps_constants(tmp_path):
    data = np.tile(np.arange(8, dtype=np.float32), (4, 1))  # a ramp along x, constant along y
    pipeline = _source(tmp_path, data, (1, 1)) + gp.Resample(RAW, (2, 2), OUT)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({OUT: gp.ArraySpec(roi=gp.Roi((0, 2), (4, 4)))}))
    out = batch[OUT].data
    assert out.shape == (2, 2) and out.dtype == np.float32
    # the new voxels cover x in [2, 4) and [4, 6): their centres 2.5 and 4.5 on the ramp
    np.testing.assert_allclose(out, [[2.5, 4.5], [2.5, 4.5]], atol=1e-5)


def test_bad_arguments():
    with pytest.raises(AssertionError, match="interp_order"):
        gp.Resample(RAW, (2, 2), OUT, interp_order=7)
    with pytest.raises(ValueError):
        gp.Resample("raw", (2, 2), OUT)
