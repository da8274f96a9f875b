"""ElasticAugment: identity, exact rotations, labels stay labels, determinism, exactly the needed
upstream region, alignment of arrays of two voxel sizes, and misaligned sections."""

from __future__ import annotations

import math

import numpy as np
import pytest
from recording import Recorder

import daskseg as gp
from daskseg.errors import RequestError
from daskseg.io import write_array

RAW = gp.ArrayKey("EA_RAW")
LABELS = gp.ArrayKey("EA_LABELS")
COARSE = gp.ArrayKey("EA_COARSE")
VS = (40, 4, 4)


def _sample(tmp_path, shape=(12, 64, 64), offset=(0, 0, 0), seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.random(shape).astype(np.float32)
    labels = (np.arange(np.prod(shape)).reshape(shape) // 7 % 13 + 1).astype(np.uint64)
    path = tmp_path / "ea.zarr"
    write_array(path, "raw", raw, VS, offset=offset)
    write_array(path, "labels", labels, VS, offset=offset)
    return path, raw, labels


def _pipeline(path, augment, keys=(RAW, LABELS)):
    names = {RAW: "raw", LABELS: "labels", COARSE: "coarse"}
    recorder = Recorder()
    pipeline = gp.ZarrSource(path, {k: names[k] for k in keys}) + recorder + augment
    return pipeline, recorder


def _request(roi, keys=(RAW, LABELS), seed=1):
    request = gp.BatchRequest(random_seed=seed)
    for key in keys:
        request[key] = gp.ArraySpec(roi=roi)
    return request


def test_identity_returns_the_input_unchanged_and_asks_for_the_request(tmp_path):
    path, raw, labels = _sample(tmp_path)
    roi = gp.Roi((80, 40, 40), (320, 160, 160))
    pipeline, recorder = _pipeline(path, gp.ElasticAugment([4, 10, 10], [0, 0, 0], [0, 0]))
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(roi))
    assert recorder.requests[0][RAW].roi == roi and recorder.requests[0][LABELS].roi == roi
    assert np.array_equal(batch[RAW].data, raw[2:10, 10:50, 10:50])
    assert np.array_equal(batch[LABELS].data, labels[2:10, 10:50, 10:50])
    assert batch[RAW].spec.roi == roi


def test_rotation_by_90_degrees_matches_numpy_rot90(tmp_path):
    path, raw, labels = _sample(tmp_path)
    roi = gp.Roi((80, 40, 40), (320, 160, 160))
    augment = gp.ElasticAugment([4, 10, 10], [0, 0, 0], [math.pi / 2, math.pi / 2])
    pipeline, recorder = _pipeline(path, augment)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(roi))
    # a square rotated about its centre covers itself
    assert recorder.requests[0][RAW].roi == roi
    assert np.array_equal(batch[RAW].data, np.rot90(raw[2:10, 10:50, 10:50], k=1, axes=(1, 2)))
    assert np.array_equal(batch[LABELS].data, np.rot90(labels[2:10, 10:50, 10:50], k=1, axes=(1, 2)))


def test_upstream_request_is_the_bounding_box_of_the_rotated_grid(tmp_path):
    path, _, _ = _sample(tmp_path, shape=(12, 128, 128))
    roi = gp.Roi((80, 160, 120), (320, 96, 120))
    angle = 0.3
    pipeline, recorder = _pipeline(path, gp.ElasticAugment([4, 10, 10], [0, 0, 0], [angle, angle]))
    with gp.build(pipeline):
        pipeline.request_batch(_request(roi))
    # independently: rotate the voxel centres about the ROI centre, in world units
    y = 160 + (np.arange(24) + 0.5) * 4
    x = 120 + (np.arange(30) + 0.5) * 4
    yy, xx = np.meshgrid(y, x, indexing="ij")
    cy, cx = 160 + 48, 120 + 60
    sy = cy + math.cos(angle) * (yy - cy) + math.sin(angle) * (xx - cx)
    sx = cx - math.sin(angle) * (yy - cy) + math.cos(angle) * (xx - cx)
    uy, ux = sy / 4 - 0.5, sx / 4 - 0.5  # continuous voxel indices
    for key, (lo_y, hi_y, lo_x, hi_x) in {
        RAW: (np.floor(uy.min()), np.ceil(uy.max()), np.floor(ux.min()), np.ceil(ux.max())),  # linear
        LABELS: (np.floor(uy.min() + 0.5), np.floor(uy.max() + 0.5), np.floor(ux.min() + 0.5), np.floor(ux.max() + 0.5)),
    }.items():
        expected = gp.Roi((80, int(lo_y) * 4, int(lo_x) * 4), (320, int(hi_y - lo_y + 1) * 4, int(hi_x - lo_x + 1) * 4))
        assert recorder.requests[0][key].roi == expected


def test_labels_are_never_mixed_and_raw_is_interpolated(tmp_path):
    path, raw, labels = _sample(tmp_path, shape=(12, 128, 128))
    roi = gp.Roi((80, 160, 160), (320, 160, 160))
    augment = gp.ElasticAugment([4, 10, 10], [0, 2, 2], [0, math.pi / 2], prob_slip=0.2, prob_shift=0.2, max_misalign=3)
    pipeline, _ = _pipeline(path, augment)
    with gp.build(pipeline):
        for seed in range(3):
            batch = pipeline.request_batch(_request(roi, seed=seed))
            out = batch[LABELS].data
            assert out.dtype == np.uint64 and out.shape == (8, 40, 40)
            assert set(np.unique(out)) <= set(np.unique(labels))
            assert batch[RAW].data.dtype == np.float32
            assert raw.min() <= batch[RAW].data.min() and batch[RAW].data.max() <= raw.max()
    # interpolation makes values that are not in the input
    assert not np.isin(batch[RAW].data, raw).all()


def test_same_seed_gives_identical_batches(tmp_path):
    path, _, _ = _sample(tmp_path, shape=(12, 128, 128))
    roi = gp.Roi((80, 160, 160), (320, 160, 160))
    augment = gp.ElasticAugment([4, 10, 10], [0, 2, 2], [0, math.pi / 2], prob_slip=0.1, prob_shift=0.1, max_misalign=4)
    pipeline, recorder = _pipeline(path, augment)
    with gp.build(pipeline):
        a = pipeline.request_batch(_request(roi, seed=7))
        b = pipeline.request_batch(_request(roi, seed=7))
        c = pipeline.request_batch(_request(roi, seed=8))
    assert np.array_equal(a[RAW].data, b[RAW].data) and np.array_equal(a[LABELS].data, b[LABELS].data)
    assert recorder.requests[0] == recorder.requests[1]
    assert not np.array_equal(a[RAW].data, c[RAW].data)


def test_arrays_of_two_voxel_sizes_stay_aligned(tmp_path):
    # a linear ramp sampled at both resolutions: linear interpolation reproduces it exactly, so after
    # the same rotation both arrays must show ramp(source(p)) at their own voxel centres
    fine_shape, coarse_shape = (8, 96, 96), (8, 48, 48)
    def ramp(z, y, x):
        return (0.001 * z + 0.002 * y + 0.003 * x).astype(np.float32)
    def sampled(shape, vs):
        centres = [(np.arange(n) + 0.5) * v for n, v in zip(shape, vs)]
        return ramp(*np.meshgrid(*centres, indexing="ij"))
    path = tmp_path / "two.zarr"
    write_array(path, "raw", sampled(fine_shape, (40, 4, 4)), (40, 4, 4))
    write_array(path, "coarse", sampled(coarse_shape, (40, 8, 8)), (40, 8, 8))
    angle = 0.35
    augment = gp.ElasticAugment([4, 10, 10], [0, 0, 0], [angle, angle])
    pipeline, _ = _pipeline(path, augment, keys=(RAW, COARSE))
    request = gp.BatchRequest(random_seed=3)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((40, 96, 96), (240, 192, 192)))
    request[COARSE] = gp.ArraySpec(roi=gp.Roi((80, 112, 112), (160, 160, 160)))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    cy = cx = 96 + 96  # centre of the total ROI
    for key, vs in ((RAW, (40, 4, 4)), (COARSE, (40, 8, 8))):
        roi = request[key].roi
        centres = [b + (np.arange(n) + 0.5) * v for b, n, v in zip(roi.begin, roi.shape / gp.Coordinate(vs), vs)]
        z, y, x = np.meshgrid(*centres, indexing="ij")
        sy = cy + math.cos(angle) * (y - cy) + math.sin(angle) * (x - cx)
        sx = cx - math.sin(angle) * (y - cy) + math.cos(angle) * (x - cx)
        assert np.allclose(batch[key].data, ramp(z, sy, sx), atol=1e-4)


def test_misaligned_sections_are_whole_voxel_shifts(tmp_path):
    path, raw, labels = _sample(tmp_path, shape=(12, 128, 128))
    roi = gp.Roi((80, 160, 160), (320, 160, 160))
    augment = gp.ElasticAugment([4, 10, 10], [0, 0, 0], [0, 0], prob_slip=0.3, prob_shift=0.3, max_misalign=5)
    pipeline, recorder = _pipeline(path, augment)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(roi, seed=11))
    up = recorder.requests[0][RAW].roi
    assert up.shape[1] > roi.shape[1] or up.shape[2] > roi.shape[2]  # some section moved
    assert up.begin[0] == roi.begin[0] and up.shape[0] == roi.shape[0]  # sections move in x-y only
    (y0, x0), (y1, x1) = ((up.begin - roi.begin) / 4)[1:], ((up.end - roi.end) / 4)[1:]
    out = batch[RAW].data
    sections_seen = 0
    for z in range(8):
        # find where section z of the output comes from in the raw data
        section = raw[2 + z]
        found = [
            (dy, dx)
            for dy in range(y0, y1 + 1)
            for dx in range(x0, x1 + 1)
            if np.array_equal(out[z], section[40 + dy : 80 + dy, 40 + dx : 80 + dx])
        ]
        assert len(found) == 1
        sections_seen += found[0] != (0, 0)
        lab = labels[2 + z, 40 + found[0][0] : 80 + found[0][0], 40 + found[0][1] : 80 + found[0][1]]
        assert np.array_equal(batch[LABELS].data[z], lab)
    assert sections_seen > 0


def test_probability_zero_skips(tmp_path):
    path, raw, _ = _sample(tmp_path)
    roi = gp.Roi((80, 40, 40), (320, 160, 160))
    pipeline, _ = _pipeline(path, gp.ElasticAugment([4, 10, 10], [0, 2, 2], [0, 1], p=0.0))
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(roi))
    assert np.array_equal(batch[RAW].data, raw[2:10, 10:50, 10:50])


def test_request_beyond_bounded_upstream_names_the_needed_region(tmp_path):
    path, _, _ = _sample(tmp_path)
    roi = gp.Roi((0, 0, 0), (480, 256, 256))  # the whole sample: any rotation reaches outside
    pipeline, _ = _pipeline(path, gp.ElasticAugment([4, 10, 10], [0, 0, 0], [0.5, 0.5]))
    with gp.build(pipeline):
        with pytest.raises(RequestError, match="RandomLocation"):
            pipeline.request_batch(_request(roi))


def test_tutorial_configuration_behind_random_location(tmp_path):
    path, raw, labels = _sample(tmp_path, shape=(30, 160, 160))
    source = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + gp.RandomLocation()
    pipeline = source + gp.ElasticAugment(
        [4, 40, 40], [0, 2, 2], [0, math.pi / 2.0], prob_slip=0.05, prob_shift=0.05, max_misalign=25
    )
    request = gp.BatchRequest(random_seed=5)
    request.add(RAW, gp.Coordinate(12, 64, 64) * gp.Coordinate(VS))
    request.add(LABELS, gp.Coordinate(8, 24, 24) * gp.Coordinate(VS))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert batch[RAW].data.shape == (12, 64, 64) and batch[LABELS].data.shape == (8, 24, 24)
    assert set(np.unique(batch[LABELS].data)) <= set(np.unique(labels))


def test_2d_arrays(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.random((64, 64)).astype(np.float32)
    labels = (np.arange(64 * 64).reshape(64, 64) // 5 % 7 + 1).astype(np.uint32)
    path = tmp_path / "2d.zarr"
    write_array(path, "raw", raw, (4, 4))
    write_array(path, "labels", labels, (4, 4))
    roi = gp.Roi((64, 64), (128, 128))
    for interval, exact in (([math.pi / 2, math.pi / 2], True), ([0.2, 1.2], False)):
        augment = gp.ElasticAugment([10, 10], [1.5, 1.5] if not exact else [0, 0], interval, spatial_dims=2)
        pipeline, _ = _pipeline(path, augment)
        with gp.build(pipeline):
            batch = pipeline.request_batch(_request(roi, seed=2))
        assert batch[RAW].data.shape == (32, 32)
        if exact:
            assert np.array_equal(batch[RAW].data, np.rot90(raw[16:48, 16:48]))
            assert np.array_equal(batch[LABELS].data, np.rot90(labels[16:48, 16:48]))
        else:
            assert set(np.unique(batch[LABELS].data)) <= set(np.unique(labels))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_node_on_a_marked_voxel_ends_on_the_moved_voxel(seed):
    from marked import BLOB, CENTRE, LABELS, label_under, marked, node_location, request

    pipeline, _ = marked((12, 48, 48), (4, 2, 2), (6, 24, 24))
    augment = gp.ElasticAugment(
        control_point_spacing=(2, 8, 8), jitter_sigma=(0.5, 2, 2), rotation_interval=(0, math.pi / 2),
        scale_interval=(0.9, 1.1), prob_slip=0.2, prob_shift=0.2, max_misalign=2,
    )
    roi = gp.Roi((12, 24, 24), (24, 48, 48))
    with gp.build(pipeline + augment):
        batch = (pipeline + augment).request_batch(request(roi, seed))
    location = node_location(batch)
    assert roi.contains(location)
    # the node lies on the moved blob, within a voxel of where its centre went
    assert label_under(batch, location) in (CENTRE, BLOB)
    blob = np.argwhere(np.isin(batch[LABELS].data, (CENTRE, BLOB)))
    centroid = np.asarray(roi.begin) + (blob.mean(axis=0) + 0.5) * np.array([4, 2, 2])
    assert np.all(np.abs(location - centroid) <= np.array([4, 2, 2]))


def test_nodes_that_land_outside_the_request_are_dropped_keeping_connectivity():
    points = gp.GraphKey("EA_POINTS")
    roi = gp.Roi((0, 0, 0), (48, 96, 96))
    # zoomed in by 2 about the centre (24, 48, 48): y = 37 lands at 26, inside; y = 35 at 22, outside
    nodes = [gp.Node(1, np.array([24.0, 37, 48])), gp.Node(2, np.array([24.0, 35, 48])), gp.Node(3, np.array([24.0, 37, 50]))]
    graph = gp.Graph(nodes, [gp.Edge(1, 2), gp.Edge(2, 3)], gp.GraphSpec(roi=roi))
    recorder = Recorder()
    augment = gp.ElasticAugment((1, 8, 8), (0, 0, 0), rotation_interval=(0, 0), scale_interval=(2, 2))
    pipeline = gp.GPGraphSource(points, graph) + recorder + augment
    request = gp.BatchRequest({}, {points: gp.GraphSpec(roi=gp.Roi((0, 24, 24), (48, 48, 48)))})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert recorder.requests[0][points].roi.contains(nodes[1].location)  # node 2 was read
    out = {n.id: tuple(n.location) for n in batch[points].nodes}
    assert out == {1: (24, 26, 48), 3: (24, 26, 52)}
    assert [(e.u, e.v) for e in batch[points].edges] == [(1, 3)]
