"""Normalize: dtype-based factors, explicit factors, the spec's dtype."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW, LABELS = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS")
VS = gp.Coordinate((4, 2, 2))


def pipeline_for(tmp_path, data, *nodes):
    path = tmp_path / "n.zarr"
    write_array(path, "raw", data, VS)
    pipeline = gp.ZarrSource(path, {RAW: "raw"})
    for node in nodes:
        pipeline = pipeline + node
    return pipeline


def whole(data, **kwargs):
    return gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), gp.Coordinate(data.shape[-3:]) * VS), **kwargs)})


def run(pipeline, request):
    with gp.build(pipeline):
        return pipeline.request_batch(request)[RAW]


def test_uint8_is_scaled_to_unit_range(tmp_path):
    data = np.array([0, 51, 102, 255, 1, 254, 128, 3], dtype=np.uint8).reshape(2, 2, 2)
    pipeline = pipeline_for(tmp_path, data, gp.Normalize(RAW))
    out = run(pipeline, whole(data))
    assert out.data.dtype == np.float32 and out.spec.dtype == np.float32
    assert out.data[0, 0, 0] == 0.0 and out.data[0, 1, 1] == 1.0  # 255 -> exactly 1
    np.testing.assert_allclose(out.data[0, 0, 1], 0.2, rtol=1e-6)  # 51 / 255
    np.testing.assert_allclose(out.data, data / 255.0, rtol=1e-6)
    assert out.data.min() >= 0 and out.data.max() <= 1


def test_uint16_uses_65535(tmp_path):
    data = np.array([0, 65535, 13107, 1], dtype=np.uint16).reshape(1, 2, 2)
    out = run(pipeline_for(tmp_path, data, gp.Normalize(RAW)), whole(data))
    np.testing.assert_allclose(out.data.ravel(), [0, 1, 0.2, 1 / 65535], rtol=1e-6)


def test_float_in_unit_range_passes_and_outside_raises(tmp_path):
    data = np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32).reshape(1, 2, 2)
    out = run(pipeline_for(tmp_path, data, gp.Normalize(RAW)), whole(data))
    np.testing.assert_array_equal(out.data, data)
    bad = data * 3
    with pytest.raises(ValueError, match="RAW.*factor"):
        run(pipeline_for(tmp_path, bad, gp.Normalize(RAW)), whole(bad))


def test_explicit_factor_and_dtype(tmp_path):
    data = np.array([-4, 0, 8, 1000], dtype=np.int32).reshape(1, 2, 2)
    out = run(pipeline_for(tmp_path, data, gp.Normalize(RAW, factor=0.25, dtype=np.float64)), whole(data))
    assert out.data.dtype == np.float64
    np.testing.assert_array_equal(out.data.ravel(), [-1.0, 0.0, 2.0, 250.0])
    with pytest.raises(ValueError, match="RAW.*int32.*factor"):
        run(pipeline_for(tmp_path, data, gp.Normalize(RAW)), whole(data))


def test_spec_dtype_is_updated_and_float_requests_pass(tmp_path):
    data = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    source_and_norm = pipeline_for(tmp_path, data, gp.Normalize(RAW))
    with gp.build(source_and_norm):
        assert source_and_norm.spec[RAW].dtype == np.float32
        assert source_and_norm.spec[RAW].roi == gp.Roi((0, 0, 0), (8, 4, 4))
        out = source_and_norm.request_batch(whole(data, dtype=np.float32))[RAW]
    np.testing.assert_allclose(out.data, data / 255, rtol=1e-6)


def test_crop_of_normalized_matches_normalized_crop(tmp_path):
    data = (np.arange(4 * 6 * 6) * 7 % 256).astype(np.uint8).reshape(4, 6, 6)
    pipeline = pipeline_for(tmp_path, data, gp.Normalize(RAW))
    roi = gp.Roi((4, 2, 6), (8, 6, 4))
    out = run(pipeline, gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))
    np.testing.assert_allclose(out.data, data[1:3, 1:4, 3:5] / 255, rtol=1e-6)


def test_unknown_key_is_a_spec_error(tmp_path):
    data = np.zeros((1, 1, 1), dtype=np.uint8)
    with pytest.raises(SpecError, match="LABELS"):
        with gp.build(pipeline_for(tmp_path, data, gp.Normalize(LABELS))):
            pass
