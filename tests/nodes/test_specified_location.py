"""SpecifiedLocation: batches centred on given world locations, in order, skipping ones outside."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("SL_RAW")


def _source(tmp_path):
    path = tmp_path / "sl.zarr"
    write_array(path, "raw", np.arange(100, dtype=np.uint8).reshape(10, 10), (2, 2))
    return gp.ZarrSource(path, {RAW: "raw"})  # ROI [0, 20) x [0, 20)


def _request():
    return gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))})


def test_batches_are_centred_on_the_locations_in_order_and_out_of_range_ones_skipped(tmp_path):
    locations = [(4, 4), (100, 100), (11, 9), (18, 18)]
    extra = ["a", "b", "c", "d"]
    pipeline = _source(tmp_path) + gp.SpecifiedLocation(locations, extra_data=extra)
    with gp.build(pipeline):
        first = pipeline.request_batch(_request())[RAW]
        second = pipeline.request_batch(_request())[RAW]
        third = pipeline.request_batch(_request())[RAW]
    # (4, 4): request centre (2, 2) -> shift (2, 2) -> world [2, 6)^2 -> voxels [1, 3)^2
    assert first.spec.roi == gp.Roi((0, 0), (4, 4))
    np.testing.assert_array_equal(first.data, [[11, 12], [21, 22]])
    assert first.attrs["specified_location_extra_data"] == "a"
    # (100, 100) does not fit and is skipped; (11, 9): shift (9, 7) rounds to (8, 8) -> voxels [4, 6)^2
    np.testing.assert_array_equal(second.data, [[44, 45], [54, 55]])
    assert second.attrs["specified_location_extra_data"] == "c"
    # (18, 18): shift (16, 16) -> world [16, 20)^2, the last voxels
    np.testing.assert_array_equal(third.data, [[88, 89], [98, 99]])


def test_random_choice_is_repeatable_for_a_seed_and_nothing_fitting_is_an_error(tmp_path):
    pipeline = _source(tmp_path) + gp.SpecifiedLocation([(4, 4), (10, 10), (16, 16)], choose_randomly=True)
    with gp.build(pipeline):
        runs = []
        for _ in range(2):
            out = []
            for seed in range(5):
                request = _request()
                request.random_seed = seed
                out.append(pipeline.request_batch(request)[RAW].data[0, 0])
            runs.append(out)
    assert runs[0] == runs[1] and set(runs[0]) <= {11, 44, 77}
    bad = _source(tmp_path) + gp.SpecifiedLocation([(100, 100)])
    with gp.build(bad):
        with pytest.raises(ValueError, match="none of the 1 locations"):
            bad.request_batch(_request())
    with pytest.raises(AssertionError, match="extra_data"):
        gp.SpecifiedLocation([(1, 1)], extra_data=[1, 2])
