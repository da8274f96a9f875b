"""Squeeze and Unsqueeze: shapes, unchanged ROIs and specs, round trip, spatial axes refused."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("SQ_RAW")
AFFS = gp.ArrayKey("SQ_AFFS")
VS = (4, 4)


def _source(tmp_path):
    path = tmp_path / "sq.zarr"
    write_array(path, "raw", np.arange(30, dtype=np.float32).reshape(5, 6), VS, offset=(4, 8))
    write_array(path, "affs", np.arange(60, dtype=np.uint8).reshape(2, 5, 6), VS, offset=(4, 8))
    return gp.ZarrSource(path, {RAW: "raw", AFFS: "affs"})


def _request(*keys):
    return gp.BatchRequest({k: gp.ArraySpec(roi=gp.Roi((8, 12), (8, 12))) for k in keys})


def test_squeeze_unsqueeze_round_trip(tmp_path):
    pipeline = _source(tmp_path) + gp.Unsqueeze([RAW, AFFS]) + gp.Unsqueeze([RAW], axis=1) + gp.Squeeze([RAW])
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(RAW, AFFS))
    assert batch[RAW].data.shape == (1, 2, 3) and batch[AFFS].data.shape == (1, 2, 2, 3)
    assert batch[RAW].spec.roi == batch[AFFS].spec.roi == gp.Roi((8, 12), (8, 12))
    np.testing.assert_array_equal(batch[RAW].data[0], np.arange(30).reshape(5, 6)[1:3, 1:4])
    np.testing.assert_array_equal(batch[AFFS].data[0], np.arange(60).reshape(2, 5, 6)[:, 1:3, 1:4])


def test_squeeze_only_requested_keys(tmp_path):
    pipeline = _source(tmp_path) + gp.Unsqueeze([RAW, AFFS]) + gp.Squeeze([RAW, AFFS])
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(AFFS))
    assert list(batch) == [AFFS] and batch[AFFS].data.shape == (2, 2, 3)


def test_spatial_axes_refused(tmp_path):
    with gp.build(_source(tmp_path) + gp.Squeeze([RAW])) as pipeline:
        with pytest.raises(SpecError, match="non-spatial"):
            pipeline.request_batch(_request(RAW))
    with gp.build(_source(tmp_path) + gp.Squeeze([AFFS])) as pipeline:
        with pytest.raises(SpecError, match="length 1"):
            pipeline.request_batch(_request(AFFS))  # two channels
    with gp.build(_source(tmp_path) + gp.Unsqueeze([RAW], axis=1)) as pipeline:
        with pytest.raises(SpecError, match="non-spatial"):
            pipeline.request_batch(_request(RAW))
    with pytest.raises(ValueError, match="axis"):
        gp.Squeeze([RAW], axis=-1)
