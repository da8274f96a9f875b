"""MergeProvider: requests split by key, batches joined, disjoint keys enforced."""

from __future__ import annotations

import numpy as np
import pytest
from recording import Recorder

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW, LABELS, MASK = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS"), gp.ArrayKey("MASK")
VS = gp.Coordinate((4, 2, 2))


@pytest.fixture
def two_files(tmp_path):
    raw = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = (np.arange(3 * 4 * 5, dtype=np.uint64) * 3).reshape(3, 4, 5)
    write_array(tmp_path / "raw.zarr", "raw", raw, VS, offset=(4, 0, 2))
    write_array(tmp_path / "labels.hdf", "labels", labels, VS, offset=(4, 0, 2))
    write_array(tmp_path / "labels.hdf", "mask", (labels % 2).astype(np.uint8), VS, offset=(4, 0, 2))
    return tmp_path, raw, labels


def test_keys_are_served_by_their_providers(two_files):
    path, raw, labels = two_files
    rec_raw, rec_lab = Recorder(), Recorder()
    pipeline = (
        gp.ZarrSource(path / "raw.zarr", {RAW: "raw"}) + rec_raw,
        gp.Hdf5Source(path / "labels.hdf", {LABELS: "labels", MASK: "mask"}) + rec_lab,
    ) + gp.MergeProvider()
    roi = gp.Roi((8, 2, 4), VS * (2, 3, 4))
    with gp.build(pipeline):
        assert set(pipeline.spec) == {RAW, LABELS, MASK}
        assert pipeline.spec[LABELS].dtype == np.uint64 and pipeline.spec[RAW].dtype == np.uint8
        batch = pipeline.request_batch(
            gp.BatchRequest({RAW: gp.ArraySpec(roi=roi), LABELS: gp.ArraySpec(roi=roi)}, random_seed=11)
        )
        assert set(batch) == {RAW, LABELS}
        np.testing.assert_array_equal(batch[RAW].data, raw[1:3, 1:4, 1:5])
        np.testing.assert_array_equal(batch[LABELS].data, labels[1:3, 1:4, 1:5])
        # each upstream saw only its own keys, with the request's seed
        assert [set(r) for r in rec_raw.requests] == [{RAW}] and [set(r) for r in rec_lab.requests] == [{LABELS}]
        assert rec_raw.requests[0].random_seed == rec_lab.requests[0].random_seed == 11

        # a request for one provider's keys does not touch the other
        pipeline.request_batch(gp.BatchRequest({MASK: gp.ArraySpec(roi=roi)}))
        assert len(rec_raw.requests) == 1 and [set(r) for r in rec_lab.requests][-1] == {MASK}


def test_a_key_provided_twice_raises_naming_both(two_files):
    path, *_ = two_files
    write_array(path / "more.zarr", "raw", np.zeros((2, 2, 2), dtype=np.uint8), VS)
    pipeline = (
        gp.ZarrSource(path / "raw.zarr", {RAW: "raw"}),
        gp.ZarrSource(path / "more.zarr", {RAW: "raw"}),
    ) + gp.MergeProvider()
    with pytest.raises(SpecError, match=r"RAW is provided by both ZarrSource\[raw.zarr\] and ZarrSource\[more.zarr\]"):
        with gp.build(pipeline):
            pass
