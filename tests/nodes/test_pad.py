"""Pad: larger or unbounded ROIs, constant and reflect filling, minimal upstream reads."""

from __future__ import annotations

import numpy as np
import pytest
from recording import Recorder

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW, AFFS, LABELS = gp.ArrayKey("RAW"), gp.ArrayKey("AFFINITIES"), gp.ArrayKey("LABELS")
VS = gp.Coordinate((4, 2, 2))
OFFSET = gp.Coordinate((8, 4, 4))
DATA = (np.arange(2 * 3 * 4) + 1).astype(np.uint8).reshape(2, 3, 4)  # ROI [8:16, 4:10, 4:12]
DATA_ROI = gp.Roi(OFFSET, gp.Coordinate(DATA.shape) * VS)


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "pad.zarr"
    write_array(p, "raw", DATA, VS, offset=OFFSET)
    write_array(p, "affs", np.stack([DATA, DATA * 2]).astype(np.float32), VS, offset=OFFSET)
    return p


def run(pipeline, key, roi):
    with gp.build(pipeline):
        return pipeline.request_batch(gp.BatchRequest({key: gp.ArraySpec(roi=roi)}))[key]


def test_spec_grows_by_size(path):
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.Pad(RAW, (4, 2, 6))
    with gp.build(pipeline):
        assert pipeline.spec[RAW].roi == gp.Roi((4, 2, -2), (16, 10, 20))
    unbounded = gp.ZarrSource(path, {RAW: "raw"}) + gp.Pad(RAW, None)
    with gp.build(unbounded):
        assert unbounded.spec[RAW].roi.unbounded


def test_constant_padding_around_a_partial_overlap(path):
    recorder = Recorder()
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + recorder + gp.Pad(RAW, (4, 2, 2), value=200)
    roi = gp.Roi((4, 2, 8), (8, 6, 6))  # one z-section and one y-row before the data, x inside
    out = run(pipeline, RAW, roi)
    # by hand: voxels z 1, y 1..2, x 0..2 of the request are data voxels z 0, y 0..1, x 2..4 (x 4 is outside)
    expected = np.full((2, 3, 3), 200, dtype=np.uint8)
    expected[1, 1:3, 0:2] = DATA[0, 0:2, 2:4]
    assert out.spec.roi == roi and out.data.dtype == np.uint8
    np.testing.assert_array_equal(out.data, expected)
    # upstream was asked for the overlap only
    assert recorder.requests[-1][RAW].roi == roi.intersect(DATA_ROI) == gp.Roi((8, 4, 8), (4, 4, 4))


def test_default_value_is_zero_and_unbounded_padding_far_away(path):
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.Pad(RAW, None)
    roi = gp.Roi((-400, 1000, 4), (8, 2, 4))  # entirely outside the data
    out = run(pipeline, RAW, roi)
    assert out.spec.roi == roi
    np.testing.assert_array_equal(out.data, np.zeros((2, 1, 2), dtype=np.uint8))
    whole = gp.Roi(OFFSET - VS, DATA_ROI.shape + VS * 2)
    out = run(pipeline, RAW, whole)
    np.testing.assert_array_equal(out.data, np.pad(DATA, 1))


def test_channels_are_kept_and_filled(path):
    pipeline = gp.ZarrSource(path, {AFFS: "affs"}) + gp.Pad(AFFS, None, value=-1)
    roi = gp.Roi((12, 8, 10), (8, 4, 4))
    out = run(pipeline, AFFS, roi)
    assert out.data.shape == (2, 2, 2, 2)
    expected = np.full((2, 2, 2, 2), -1, dtype=np.float32)
    # by hand: the request covers data voxels z 1..2, y 2..3, x 3..4, of which only (1, 2, 3) exists
    expected[:, 0, 0, 0] = np.stack([DATA, DATA * 2])[:, 1, 2, 3]
    np.testing.assert_array_equal(out.data, expected)
    outside = run(pipeline, AFFS, gp.Roi((100, 100, 100), (4, 2, 2)))
    np.testing.assert_array_equal(outside.data, np.full((2, 1, 1, 1), -1, dtype=np.float32))


def test_reflect_mode_mirrors_without_repeating_the_border(path):
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.Pad(RAW, (4, 4, 4), mode="reflect")
    roi = gp.Roi(OFFSET - (4, 4, 4), DATA_ROI.shape + (8, 8, 8))
    out = run(pipeline, RAW, roi)
    np.testing.assert_array_equal(out.data, np.pad(DATA, ((1, 1), (2, 2), (2, 2)), mode="reflect"))
    # by hand along x for one row: [3 2 | 1 2 3 4 | 3 2]
    np.testing.assert_array_equal(out.data[1, 2], [3, 2, 1, 2, 3, 4, 3, 2])


def test_requests_for_other_keys_pass_untouched(path):
    recorder = Recorder()
    pipeline = gp.ZarrSource(path, {RAW: "raw", AFFS: "affs"}) + recorder + gp.Pad(RAW, None)
    roi = gp.Roi(OFFSET, VS)
    out = run(pipeline, AFFS, roi)
    assert out.data.shape == (2, 1, 1, 1) and set(recorder.requests[-1]) == {AFFS}


def test_pad_errors(path):
    with pytest.raises(SpecError, match=r"\(4, 3, 2\).*\(4, 2, 2\)"):
        with gp.build(gp.ZarrSource(path, {RAW: "raw"}) + gp.Pad(RAW, (4, 3, 2))):
            pass
    with pytest.raises(SpecError, match="LABELS.*not provided"):
        with gp.build(gp.ZarrSource(path, {RAW: "raw"}) + gp.Pad(LABELS, None)):
            pass
    with pytest.raises(ValueError, match="mode"):
        gp.Pad(RAW, None, mode="edge")
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.Pad(RAW, None, mode="reflect")
    with pytest.raises(SpecError, match="reflect"):
        run(pipeline, RAW, gp.Roi((1000, 0, 0), VS))
