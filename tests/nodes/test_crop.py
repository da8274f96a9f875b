"""Crop: a given ROI, crop fractions and absolute amounts, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import RequestError, SpecError
from daskseg.io import write_array

RAW, LABELS = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS")
VS = gp.Coordinate((4, 2, 2))
DATA = np.arange(10 * 10 * 10, dtype=np.uint16).reshape(10, 10, 10)  # ROI [0:40, 0:20, 0:20]


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "crop.zarr"
    write_array(p, "raw", DATA, VS)
    write_array(p, "labels", DATA.astype(np.uint64), VS)
    return p


def provided(path, crop):
    pipeline = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + crop
    with gp.build(pipeline):
        return pipeline.spec[RAW].roi, pipeline.spec[LABELS].roi


def test_crop_to_roi_limits_requests(path):
    roi = gp.Roi((8, 4, 6), (16, 8, 10))
    pipeline = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + gp.Crop(RAW, roi)
    with gp.build(pipeline):
        assert pipeline.spec[RAW].roi == roi
        assert pipeline.spec[LABELS].roi == gp.Roi((0, 0, 0), (40, 20, 20))  # other keys untouched
        batch = pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))
        np.testing.assert_array_equal(batch[RAW].data, DATA[2:6, 2:6, 3:8])
        outside = gp.Roi((0, 0, 0), VS)
        with pytest.raises(RequestError, match="RAW.*outside"):
            pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=outside)}))


def test_crop_fractions_round_down_to_whole_voxels(path):
    # shape (10, 10, 10) voxels; negative fractions (0.25, 0.5, 0) remove 2 (of 2.5), 5, 0 voxels
    # at the lower end; positive fractions (0, 0, 0.35) remove 3 (of 3.5) voxels at the upper end of x
    raw_roi, labels_roi = provided(path, gp.Crop(RAW, fraction_negative=(0.25, 0.5, 0), fraction_positive=(0, 0, 0.35)))
    assert raw_roi == gp.Roi((8, 10, 0), (32, 10, 14))
    assert labels_roi == gp.Roi((0, 0, 0), (40, 20, 20))
    only_negative, _ = provided(path, gp.Crop(RAW, fraction_negative=(0.1, 0.1, 0.1)))
    assert only_negative == gp.Roi((4, 2, 2), (36, 18, 18))
    only_positive, _ = provided(path, gp.Crop(RAW, fraction_positive=(0.5, 0, 0)))
    assert only_positive == gp.Roi((0, 0, 0), (20, 20, 20))


def test_crop_absolute_amounts(path):
    roi, _ = provided(path, gp.Crop(RAW, abs_negative=(4, 2, 0), abs_positive=(8, 0, 4)))
    assert roi == gp.Roi((4, 2, 0), (28, 18, 16))


def test_crop_errors(path):
    with pytest.raises(ValueError, match="together"):
        gp.Crop(RAW, gp.Roi((0, 0, 0), (4, 2, 2)), fraction_negative=(0.1, 0, 0))
    with pytest.raises(ValueError, match="has to be given"):
        gp.Crop(RAW)
    with pytest.raises(ValueError, match="same side"):
        gp.Crop(RAW, fraction_negative=(0.1, 0, 0), abs_negative=(4, 0, 0))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        gp.Crop(RAW, fraction_negative=(1.0, 0, 0))
    with pytest.raises(SpecError, match="not contained"):
        provided(path, gp.Crop(RAW, gp.Roi((0, 0, 0), (44, 2, 2))))
    with pytest.raises(SpecError, match="leaves nothing"):
        provided(path, gp.Crop(RAW, fraction_negative=(0.6, 0, 0), fraction_positive=(0.4, 0, 0)))
    with pytest.raises(SpecError, match=r"voxel size \(4, 2, 2\)"):
        provided(path, gp.Crop(RAW, abs_negative=(2, 0, 0)))
    with pytest.raises(SpecError, match="AFFS"):
        provided(path, gp.Crop(gp.ArrayKey("AFFS"), gp.Roi((0, 0, 0), VS)))
