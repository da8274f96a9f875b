"""Reject: only batches whose mask mean exceeds min_masked come through; seeded runs repeat."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("RJ_RAW")
MASK = gp.ArrayKey("RJ_MASK")


def _pipeline(tmp_path, **kwargs):
    mask = np.zeros((1, 8), dtype=np.uint8)
    mask[0, 6:] = 1  # only the last two voxels are masked in
    raw = np.arange(8, dtype=np.uint8).reshape(1, 8)
    path = tmp_path / "rj.zarr"
    write_array(path, "mask", mask, (1, 1))
    write_array(path, "raw", raw, (1, 1))
    source = gp.ZarrSource(path, {RAW: "raw", MASK: "mask"})
    return source + gp.RandomLocation() + gp.Reject(mask=MASK, **kwargs)


def _request():
    return gp.BatchRequest(
        {RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (1, 2))), MASK: gp.ArraySpec(roi=gp.Roi((0, 0), (1, 2)))}
    )


def test_only_batches_with_enough_mask_pass(tmp_path):
    pipeline = _pipeline(tmp_path, min_masked=0.6)
    with gp.build(pipeline):
        for seed in range(5):
            request = _request()
            request.random_seed = seed
            batch = pipeline.request_batch(request)
            # a 2-voxel window with mean > 0.6 exists only at x = 6: both voxels masked in
            assert batch[MASK].data.tolist() == [[1, 1]]
            assert batch[RAW].data.tolist() == [[6, 7]]


def test_seeded_requests_are_repeatable_with_reject_probability(tmp_path):
    pipeline = _pipeline(tmp_path, min_masked=0.6, reject_probability=0.5)
    with gp.build(pipeline):
        runs = []
        for _ in range(2):
            out = []
            for seed in range(6):
                request = _request()
                request.random_seed = seed
                out.append(pipeline.request_batch(request)[RAW].data.tolist())
            runs.append(out)
    assert runs[0] == runs[1]


def test_mask_must_be_requested_and_arguments_checked(tmp_path):
    pipeline = _pipeline(tmp_path)
    with gp.build(pipeline):
        with pytest.raises(ValueError, match="RJ_MASK"):
            pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (1, 2)))}))
    with pytest.raises(AssertionError, match="reject_probability"):
        gp.Reject(MASK, reject_probability=2)
    with pytest.raises(NotImplementedError, match="graphs"):
        gp.Reject(MASK, ensure_nonempty=object())
