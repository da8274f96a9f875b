"""Unsqueeze: a new leading axis, specs and ROIs unchanged, single keys accepted."""

from __future__ import annotations

import numpy as np

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("USQ_RAW")
VS = (40, 4, 4)


def test_unsqueeze_adds_leading_axes(tmp_path):
    path = tmp_path / "usq.zarr"
    raw = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    write_array(path, "raw", raw, VS)
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.Unsqueeze(RAW) + gp.Unsqueeze([RAW], axis=0)
    with gp.build(pipeline):
        spec = pipeline.spec[RAW]
        batch = pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=spec.roi)}))
    assert spec.roi == gp.Roi((0, 0, 0), (120, 16, 20)) and spec.dtype == np.float32
    out = batch[RAW]
    assert out.data.shape == (1, 1, 3, 4, 5) and out.spec.roi == spec.roi and out.spec.voxel_size == VS
    np.testing.assert_array_equal(out.data[0, 0], raw)
