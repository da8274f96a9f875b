"""IntensityScaleShift: values, dtype in spec and data, ROI unchanged."""

from __future__ import annotations

import numpy as np

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("ISS_RAW")
VS = (4, 4)


def _pipeline(tmp_path, raw, scale, shift):
    path = tmp_path / "iss.zarr"
    write_array(path, "raw", raw, VS, offset=(8, 4))
    return gp.ZarrSource(path, {RAW: "raw"}) + gp.IntensityScaleShift(RAW, scale, shift)


def test_float_to_minus_one_one(tmp_path):
    raw = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    pipeline = _pipeline(tmp_path, raw, 2, -1)
    roi = gp.Roi((12, 8), (8, 12))
    with gp.build(pipeline):
        assert pipeline.spec[RAW].dtype == np.float32
        out = pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))[RAW]
    assert out.spec.roi == roi and out.data.dtype == np.float32
    np.testing.assert_allclose(out.data, raw[1:3, 1:4] * 2 - 1, rtol=1e-6)


def test_integer_input_becomes_float(tmp_path):
    raw = np.arange(12, dtype=np.uint8).reshape(3, 4)
    pipeline = _pipeline(tmp_path, raw, 0.5, 1.0)
    with gp.build(pipeline):
        assert pipeline.spec[RAW].dtype == np.float64
        # asking for the output dtype must not ask the source for it
        request = gp.BatchRequest({RAW: gp.ArraySpec(roi=pipeline.spec[RAW].roi, dtype=np.float64)})
        out = pipeline.request_batch(request)[RAW]
    assert out.data.dtype == np.float64 and out.spec.dtype == np.float64
    np.testing.assert_array_equal(out.data, raw * 0.5 + 1.0)
