"""SimpleAugment: mirrors and transposes match numpy, the same for all arrays, only among axes of
equal voxel size, mirrored/transposed ROIs requested upstream, and determinism."""

from __future__ import annotations

import numpy as np
import pytest
from recording import Recorder

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("SA_RAW")
LABELS = gp.ArrayKey("SA_LABELS")
COARSE = gp.ArrayKey("SA_COARSE")


def _pipeline(tmp_path, augment, vs=(4, 4, 4), shape=(10, 10, 10)):
    raw = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    labels = (raw.astype(np.uint64) // 3) + 1
    path = tmp_path / "sa.zarr"
    write_array(path, "raw", raw, vs)
    write_array(path, "labels", labels, vs)
    recorder = Recorder()
    pipeline = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + recorder + augment
    return pipeline, recorder, raw, labels


def _request(roi, seed=0, keys=(RAW, LABELS)):
    request = gp.BatchRequest(random_seed=seed)
    for key in keys:
        request[key] = gp.ArraySpec(roi=roi)
    return request


def test_mirror_and_transpose_match_numpy(tmp_path):
    augment = gp.SimpleAugment(mirror_probs=[0, 1, 1], transpose_probs={(0, 2, 1): 1.0, (0, 1, 2): 0.0}, transpose_only=[1, 2])
    pipeline, recorder, raw, labels = _pipeline(tmp_path, augment)
    roi = gp.Roi((0, 0, 0), (40, 40, 40))
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(roi))
    expected = np.flip(raw, axis=(1, 2)).transpose(0, 2, 1)
    assert np.array_equal(batch[RAW].data, expected)
    assert np.array_equal(batch[LABELS].data, np.flip(labels, axis=(1, 2)).transpose(0, 2, 1))
    assert batch[RAW].spec.roi == roi
    assert recorder.requests[0][RAW].roi == roi


def test_upstream_request_is_the_mirrored_roi(tmp_path):
    augment = gp.SimpleAugment(mirror_probs=[1, 0, 0], transpose_only=[])
    pipeline, recorder, raw, _ = _pipeline(tmp_path, augment)
    # one array off-centre: mirrored about the centre of the total request
    request = gp.BatchRequest(random_seed=0)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (40, 40, 40)))
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((0, 8, 8), (12, 16, 16)))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    # total ROI z in [0, 40): z -> 40 - z, so labels' [0, 12) comes from [28, 40)
    assert recorder.requests[0][LABELS].roi == gp.Roi((28, 8, 8), (12, 16, 16))
    assert recorder.requests[0][RAW].roi == gp.Roi((0, 0, 0), (40, 40, 40))
    labels = (raw.astype(np.uint64) // 3) + 1
    assert np.array_equal(batch[LABELS].data, labels[7:10, 2:6, 2:6][::-1])
    assert np.array_equal(batch[RAW].data, raw[::-1])


def test_transposes_only_axes_of_equal_voxel_size(tmp_path):
    augment = gp.SimpleAugment(mirror_probs=[0, 0, 0])
    pipeline, _, raw, _ = _pipeline(tmp_path, augment, vs=(40, 4, 4))
    roi = gp.Roi((0, 0, 0), (400, 40, 40))
    seen = set()
    with gp.build(pipeline):
        for seed in range(12):
            out = pipeline.request_batch(_request(roi, seed=seed))[RAW].data
            if np.array_equal(out, raw):
                seen.add("identity")
            elif np.array_equal(out, raw.transpose(0, 2, 1)):
                seen.add("xy")
            else:
                raise AssertionError("an axis of a different voxel size was transposed")
    assert seen == {"identity", "xy"}


def test_transpose_only_with_unequal_voxel_sizes_is_an_error(tmp_path):
    pipeline, _, _, _ = _pipeline(tmp_path, gp.SimpleAugment(transpose_only=[0, 1]), vs=(40, 4, 4))
    with pytest.raises(SpecError, match="different voxel sizes"):
        with gp.build(pipeline):
            pass


def test_same_seed_same_batch_and_all_arrays_alike(tmp_path):
    pipeline, _, raw, labels = _pipeline(tmp_path, gp.SimpleAugment())
    roi = gp.Roi((0, 0, 0), (40, 40, 40))
    outcomes = set()
    with gp.build(pipeline):
        for seed in range(10):
            a = pipeline.request_batch(_request(roi, seed=seed))
            b = pipeline.request_batch(_request(roi, seed=seed))
            assert np.array_equal(a[RAW].data, b[RAW].data)
            # raw encodes the voxel index; labels must have moved with it
            index = a[RAW].data.astype(np.int64)
            assert np.array_equal(a[LABELS].data, labels.reshape(-1)[index])
            outcomes.add(a[RAW].data.tobytes())
    assert len(outcomes) > 3


def test_two_voxel_sizes_stay_aligned(tmp_path):
    fine = np.arange(8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8)
    coarse = fine.reshape(4, 2, 4, 2, 4, 2).mean(axis=(1, 3, 5))  # block means, at twice the voxel size
    path = tmp_path / "two.zarr"
    write_array(path, "fine", fine, (4, 4, 4))
    write_array(path, "coarse", coarse, (8, 8, 8))
    pipeline = gp.ZarrSource(path, {RAW: "fine", COARSE: "coarse"}) + gp.SimpleAugment()
    request = gp.BatchRequest(random_seed=0)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (32, 32, 32)))
    request[COARSE] = gp.ArraySpec(roi=gp.Roi((8, 8, 8), (16, 16, 16)))
    with gp.build(pipeline):
        for seed in range(8):
            request.random_seed = seed
            batch = pipeline.request_batch(request)
            blocks = batch[RAW].data.reshape(4, 2, 4, 2, 4, 2).mean(axis=(1, 3, 5))
            assert np.allclose(batch[COARSE].data, blocks[1:3, 1:3, 1:3])


def test_probability_zero_passes_through(tmp_path):
    pipeline, _, raw, _ = _pipeline(tmp_path, gp.SimpleAugment(p=0.0))
    with gp.build(pipeline):
        out = pipeline.request_batch(_request(gp.Roi((0, 0, 0), (40, 40, 40))))[RAW].data
    assert np.array_equal(out, raw)


def test_a_node_on_a_marked_voxel_ends_on_the_moved_voxel():
    from marked import CENTRE, LABELS, label_under, marked, node_location, request

    pipeline, _ = marked((8, 8, 8), (4, 4, 4), (1, 2, 6))
    augment = gp.SimpleAugment(mirror_probs=[1, 0, 1], transpose_probs={(0, 2, 1): 1.0})
    roi = gp.Roi((0, 0, 0), (32, 32, 32))
    with gp.build(pipeline + augment):
        batch = (pipeline + augment).request_batch(request(roi))
    # mirror z and x, then swap y and x: voxel (1, 2, 6) goes to (6, 8 - 1 - 6, 2) = (6, 1, 2)
    (voxel,) = np.argwhere(batch[LABELS].data == CENTRE)
    assert tuple(voxel) == (6, 1, 2)
    assert np.array_equal(node_location(batch), (voxel + 0.5) * 4)
    assert label_under(batch, node_location(batch)) == CENTRE
    assert batch[gp.GraphKey("MARKED_POINTS")].spec.roi == roi
