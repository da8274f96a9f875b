"""ShiftAugment: whole sections move by whole voxels, the same for all arrays, and exactly the
needed region is requested upstream."""

from __future__ import annotations

import numpy as np
import pytest
from recording import Recorder

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("SH_RAW")
LABELS = gp.ArrayKey("SH_LABELS")
VS = (40, 4, 4)


def _pipeline(tmp_path, augment):
    z, y, x = np.meshgrid(np.arange(10), np.arange(100), np.arange(100), indexing="ij")
    raw = (z * 1_000_000 + y * 1000 + x).astype(np.int64)  # every voxel knows where it is
    labels = (raw // 7).astype(np.uint64)
    path = tmp_path / "sh.zarr"
    write_array(path, "raw", raw, VS)
    write_array(path, "labels", labels, VS)
    recorder = Recorder()
    pipeline = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + gp.RandomLocation() + recorder + augment
    return pipeline, recorder


def _request(seed):
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((80, 120, 120), (240, 80, 80)))
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((120, 140, 140), (160, 40, 40)))
    return request


def test_sections_move_by_whole_voxels_and_arrays_move_alike(tmp_path):
    pipeline, recorder = _pipeline(tmp_path, gp.ShiftAugment(prob_slip=0.3, prob_shift=0.3, sigma=8))
    moved = 0
    with gp.build(pipeline):
        for seed in range(4):
            request = _request(seed)
            batch = pipeline.request_batch(request)
            raw = batch[RAW].data
            assert raw.shape == (6, 20, 20)
            z, y, x = raw // 1_000_000, raw // 1000 % 1000, raw % 1000
            # each output section is one input section, translated as a whole
            for s in range(6):
                assert np.all(z[s] == z[s, 0, 0])
                dy, dx = y[s] - np.arange(20)[:, None], x[s] - np.arange(20)[None, :]
                assert np.all(dy == dy[0, 0]) and np.all(dx == dx[0, 0])
            assert np.all(np.diff(z[:, 0, 0]) == 1)  # sections keep their order
            offsets = [(int(y[s, 0, 0]), int(x[s, 0, 0])) for s in range(6)]
            moved += len(set(offsets)) > 1
            # labels (at an inner ROI) show the same shifted positions as raw
            assert np.array_equal(batch[LABELS].data, (raw[1:5, 5:15, 5:15] // 7).astype(np.uint64))
            # upstream got exactly the bounding box of the shifted sections (in RandomLocation's frame)
            up = recorder.requests[-1][RAW].roi
            shifts_y = [y[s, 0, 0] for s in range(6)]
            shifts_x = [x[s, 0, 0] for s in range(6)]
            assert up.shape[1] // 4 == max(shifts_y) - min(shifts_y) + 20
            assert up.shape[2] // 4 == max(shifts_x) - min(shifts_x) + 20
    assert moved > 0


def test_same_seed_identical(tmp_path):
    pipeline, _ = _pipeline(tmp_path, gp.ShiftAugment(prob_slip=0.2, prob_shift=0.2, sigma=8))
    with gp.build(pipeline):
        a = pipeline.request_batch(_request(3))
        b = pipeline.request_batch(_request(3))
    assert np.array_equal(a[RAW].data, b[RAW].data) and np.array_equal(a[LABELS].data, b[LABELS].data)


def test_sigma_along_the_shift_axis_is_an_error(tmp_path):
    pipeline, _ = _pipeline(tmp_path, gp.ShiftAugment(prob_shift=0.5, sigma=(4, 4, 4)))
    with pytest.raises(SpecError, match="shift axis"):
        with gp.build(pipeline):
            pass


@pytest.mark.parametrize("seed", range(4))
def test_a_node_on_a_marked_voxel_ends_on_the_moved_voxel(seed):
    from marked import CENTRE, LABELS, label_under, marked, node_location, request

    pipeline, location = marked((10, 100, 100), VS, (5, 50, 50))
    augment = gp.ShiftAugment(prob_slip=0.5, prob_shift=0.5, sigma=8)
    roi = gp.Roi((0, 160, 160), (400, 80, 80))
    with gp.build(pipeline + augment):
        batch = (pipeline + augment).request_batch(request(roi, seed))
    (voxel,) = np.argwhere(batch[LABELS].data == CENTRE)
    # exactly the centre of the voxel the marked one moved to
    assert np.array_equal(node_location(batch), np.asarray(roi.begin) + (voxel + 0.5) * np.asarray(VS))
    assert label_under(batch, node_location(batch)) == CENTRE
    assert node_location(batch)[0] == location[0]  # sections move within their plane
