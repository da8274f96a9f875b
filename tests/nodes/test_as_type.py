"""AsType: dtype in spec and data, in place or to a new key, ROIs, upstream dtype not asked for."""

from __future__ import annotations

import numpy as np

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("AT_RAW")
RAW_U8 = gp.ArrayKey("AT_RAW_U8")
VS = (4, 4)


def _source(tmp_path):
    path = tmp_path / "at.zarr"
    write_array(path, "raw", np.linspace(0, 300, 24, dtype=np.float32).reshape(4, 6), VS)
    return gp.ZarrSource(path, {RAW: "raw"})


def test_in_place(tmp_path):
    pipeline = _source(tmp_path) + gp.AsType(RAW, np.int16)
    roi = gp.Roi((4, 4), (8, 12))
    with gp.build(pipeline):
        assert pipeline.spec[RAW].dtype == np.int16
        # asking for the cast dtype must not ask upstream for it
        out = pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi, dtype=np.int16)}))[RAW]
    expected = np.linspace(0, 300, 24, dtype=np.float32).reshape(4, 6)[1:3, 1:4].astype(np.int16)
    assert out.data.dtype == np.int16 and out.spec.dtype == np.int16 and out.spec.roi == roi
    np.testing.assert_array_equal(out.data, expected)


def test_new_key(tmp_path):
    pipeline = _source(tmp_path) + gp.AsType(RAW, "uint8", target=RAW_U8)
    with gp.build(pipeline):
        assert pipeline.spec[RAW].dtype == np.float32 and pipeline.spec[RAW_U8].dtype == np.uint8
        request = gp.BatchRequest()
        request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (16, 24)))
        request[RAW_U8] = gp.ArraySpec(roi=gp.Roi((4, 4), (8, 8)))
        batch = pipeline.request_batch(request)
    data = np.linspace(0, 300, 24, dtype=np.float32).reshape(4, 6)
    assert batch[RAW].data.dtype == np.float32 and batch[RAW].spec.roi == gp.Roi((0, 0), (16, 24))
    np.testing.assert_array_equal(batch[RAW].data, data)
    assert batch[RAW_U8].data.dtype == np.uint8 and batch[RAW_U8].spec.roi == gp.Roi((4, 4), (8, 8))
    np.testing.assert_array_equal(batch[RAW_U8].data, data[1:3, 1:3].astype(np.uint8))
