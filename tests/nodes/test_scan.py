"""Scan: tiling, assembly equal to one large request, empty-request driving, errors, threads."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import RequestError, SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("SCAN_RAW")
OUT = gp.ArrayKey("SCAN_OUT")
COARSE = gp.ArrayKey("SCAN_COARSE")


def _volume(tmp_path, shape=(25, 31), voxel_size=(2, 2), offset=(10, 4)):
    data = np.random.default_rng(0).integers(0, 200, size=shape).astype(np.float32)
    path = tmp_path / "vol.zarr"
    write_array(path, "raw", data, voxel_size, offset=offset)
    return path, data


class BoxSum(gp.BatchFilter):
    """A 'valid convolution': OUT = sum of RAW over a 3x3 voxel window, one voxel smaller each side;
    adds noise from the node's random stream when ``noise`` is set."""

    def __init__(self, noise: bool = False):
        self.noise = noise

    def setup(self):
        spec = self.spec[RAW].copy()
        self.vs = spec.voxel_size
        spec.roi = spec.roi.grow(-self.vs, -self.vs)
        self.provides(OUT, spec)

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = gp.ArraySpec(roi=request[OUT].roi.grow(self.vs, self.vs))
        return deps

    def process(self, batch, request):
        raw = batch[RAW].data
        out = sum(raw[i : i + raw.shape[0] - 2, j : j + raw.shape[1] - 2] for i in range(3) for j in range(3))
        if self.noise:
            out = out + self.random_generator(request).normal(size=out.shape).astype(np.float32)
        spec = self.spec[OUT].copy()
        spec.roi = request[OUT].roi
        result = gp.Batch()
        result[OUT] = gp.Array(out.astype(np.float32), spec)
        return result


class Recorder(gp.BatchFilter):
    """Remembers the ROIs of every request passing upstream."""

    def __init__(self):
        self.requests = []

    def prepare(self, request):
        self.requests.append({k: s.roi for k, s in request.items()})


def _reference():
    reference = gp.BatchRequest()
    reference.add(RAW, (12, 14))
    reference.add(OUT, (8, 10))
    return reference


def test_assembled_request_equals_one_large_request(tmp_path):
    path, data = _volume(tmp_path)
    source = gp.ZarrSource(path, {RAW: "raw"})
    pipeline = source + BoxSum() + gp.Scan(_reference())
    direct = source + BoxSum()
    request = gp.BatchRequest()
    request[OUT] = gp.ArraySpec(roi=gp.Roi((14, 8), (36, 46)))  # not a multiple of the (8, 10) chunks
    request[RAW] = gp.ArraySpec(roi=gp.Roi((12, 6), (40, 50)))
    with gp.build(pipeline):
        scanned = pipeline.request_batch(request)
    with gp.build(direct):
        expected = direct.request_batch(request)
    assert scanned[OUT].spec.roi == request[OUT].roi
    np.testing.assert_array_equal(scanned[OUT].data, expected[OUT].data)
    np.testing.assert_array_equal(scanned[RAW].data, expected[RAW].data)
    # and independently of the pipeline: the 3x3 box sum of the stored volume
    raw = data[1:21, 1:26]  # RAW begins at (12, 6) nm: voxel (1, 1) of a volume at (10, 4) nm, 2 nm voxels
    box = sum(raw[i : i + 18, j : j + 23] for i in range(3) for j in range(3))
    np.testing.assert_array_equal(scanned[OUT].data, box)


def test_chunks_tile_with_stride_and_last_chunk_shifted_back(tmp_path):
    path, _ = _volume(tmp_path, shape=(25, 31))
    recorder = Recorder()
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + BoxSum() + recorder + gp.Scan(_reference())
    request = gp.BatchRequest()
    request[OUT] = gp.ArraySpec(roi=gp.Roi((14, 8), (20, 10)))
    with gp.build(pipeline):
        pipeline.request_batch(request)
    out_rois = [r[OUT] for r in recorder.requests]
    # along dim 0: 20 nm in chunks of 8 -> begins 14, 22 and the last one shifted back to 26
    assert sorted({roi.begin[0] for roi in out_rois}) == [14, 22, 26]
    assert {roi.begin[1] for roi in out_rois} == {8}
    assert all(roi.shape == gp.Coordinate((8, 10)) for roi in out_rois)
    # RAW keeps its place relative to OUT in every chunk
    assert all(r[RAW] == r[OUT].grow((2, 2), (2, 2)) for r in recorder.requests)


def test_empty_request_drives_chunks_over_whole_upstream_roi(tmp_path):
    path, _ = _volume(tmp_path, shape=(25, 31))
    recorder = Recorder()
    source = gp.ZarrSource(path, {RAW: "raw"})
    pipeline = source + BoxSum() + recorder + gp.Scan(_reference())
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest())
        provided_out = pipeline.spec[OUT].roi
        provided_raw = pipeline.spec[RAW].roi
    assert len(batch) == 0
    # every voxel of the provided OUT ROI is in some chunk; no chunk leaves what is provided
    covered = np.zeros(tuple(provided_out.shape / (2, 2)), dtype=int)
    for r in recorder.requests:
        assert provided_out.contains(r[OUT]) and provided_raw.contains(r[RAW])
        b = (r[OUT].begin - provided_out.begin) // 2
        e = (r[OUT].end - provided_out.begin) // 2
        covered[b[0] : e[0], b[1] : e[1]] += 1
    assert covered.min() >= 1
    # 23 voxels in chunks of 4 -> 6 positions; 29 in chunks of 5 -> 6 positions
    assert len(recorder.requests) == 6 * 6


def test_mixed_voxel_sizes_assemble_like_a_large_request(tmp_path):
    path = tmp_path / "two.zarr"
    fine = np.arange(24 * 24, dtype=np.float32).reshape(24, 24)
    coarse = np.arange(12 * 12, dtype=np.float32).reshape(12, 12) * -1
    write_array(path, "fine", fine, (1, 1))
    write_array(path, "coarse", coarse, (2, 2))
    reference = gp.BatchRequest()
    reference[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), (6, 5)))
    reference[COARSE] = gp.ArraySpec(roi=gp.Roi((0, 0), (4, 8)))
    source = gp.ZarrSource(path, {RAW: "fine", COARSE: "coarse"})
    pipeline = source + gp.Scan(reference)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((2, 2), (18, 18)))
    request[COARSE] = gp.ArraySpec(roi=gp.Roi((2, 2), (18, 18)))
    with gp.build(pipeline):
        assert pipeline.output.stride == gp.Coordinate((4, 4))  # min shape (4, 5), on the lcm grid (2, 2)
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(batch[RAW].data, fine[2:20, 2:20])
    np.testing.assert_array_equal(batch[COARSE].data, coarse[1:10, 1:10])
    # RAW up to 22 along dim 1 would push COARSE (8 nm wide, right of RAW's 5) past the volume's end
    request[RAW] = gp.ArraySpec(roi=gp.Roi((2, 2), (18, 20)))
    with gp.build(pipeline), pytest.raises(RequestError, match="cannot assemble SCAN_RAW"):
        pipeline.request_batch(request)


@pytest.mark.parametrize("num_workers", [1, 3])
def test_output_deterministic_for_a_seed_and_independent_of_workers(tmp_path, num_workers):
    path, _ = _volume(tmp_path)
    request = gp.BatchRequest(random_seed=7)
    request[OUT] = gp.ArraySpec(roi=gp.Roi((14, 8), (36, 46)))

    def run(workers, seed=7):
        pipeline = gp.ZarrSource(path, {RAW: "raw"}) + BoxSum(noise=True) + gp.Scan(_reference(), num_workers=workers)
        req = request.copy()
        req.random_seed = seed
        with gp.build(pipeline):
            return pipeline.request_batch(req)[OUT].data

    reference_run = run(1)
    np.testing.assert_array_equal(run(num_workers), reference_run)
    assert not np.array_equal(run(num_workers, seed=8), reference_run)


def test_progress_is_logged(tmp_path, caplog):
    path, _ = _volume(tmp_path)
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + BoxSum() + gp.Scan(_reference())
    with caplog.at_level(logging.INFO, logger="daskseg.nodes.scan"), gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest())
    messages = [r.getMessage() for r in caplog.records if r.name == "daskseg.nodes.scan"]
    assert any("100%" in m for m in messages)
    assert 2 <= len(messages) <= 12  # start line and at most one per 10%


def test_reference_larger_than_upstream_is_a_clear_error(tmp_path):
    path, _ = _volume(tmp_path, shape=(5, 31))  # 10 nm along dim 0, the reference needs 12
    reference = gp.BatchRequest()
    reference.add(RAW, (12, 14))
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.Scan(reference)
    with pytest.raises(RequestError, match="does not fit"):
        with gp.build(pipeline):
            pass


def test_request_outside_reference_keys_or_unreachable_is_an_error(tmp_path):
    path, _ = _volume(tmp_path)
    reference = gp.BatchRequest()
    reference.add(OUT, (8, 10))
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + BoxSum() + gp.Scan(reference)
    with gp.build(pipeline):
        request = gp.BatchRequest()
        request[RAW] = gp.ArraySpec(roi=gp.Roi((10, 4), (10, 10)))
        with pytest.raises(RequestError, match="only assembles keys of its reference"):
            pipeline.request_batch(request)
    with pytest.raises(SpecError, match="not provided upstream"):
        with gp.build(gp.ZarrSource(path, {RAW: "raw"}) + gp.Scan(reference)):
            pass


class _Recording(gp.ScanCallback):
    def __init__(self):
        self.events = []

    def start(self, num_total):
        self.events.append(("start", num_total))

    def update(self, num_processed):
        self.events.append(("update", num_processed))

    def stop(self):
        self.events.append(("stop",))


def test_progress_callback_hears_start_every_chunk_and_stop(tmp_path):
    key = gp.ArrayKey("SCB_RAW")
    path = tmp_path / "scb.zarr"
    write_array(path, "raw", np.arange(16, dtype=np.uint8).reshape(4, 4), (1, 1))
    reference = gp.BatchRequest({key: gp.ArraySpec(roi=gp.Roi((0, 0), (2, 2)))})
    callback = _Recording()
    pipeline = gp.ZarrSource(path, {key: "raw"}) + gp.Scan(reference, progress_callback=callback)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({key: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))}))
    assert batch[key].data.tolist() == np.arange(16).reshape(4, 4).tolist()
    assert callback.events == [("start", 4), ("update", 1), ("update", 2), ("update", 3), ("update", 4), ("stop",)]


POINTS = gp.GraphKey("SCAN_POINTS")


def test_graphs_are_assembled_from_chunks_without_temporary_nodes():
    nodes = [gp.Node(i, np.array(loc, dtype=float)) for i, loc in enumerate([(2, 2), (5, 8), (15, 4), (25, 25)])]
    graph = gp.Graph(nodes, [gp.Edge(0, 1), gp.Edge(1, 2)], gp.GraphSpec(roi=gp.Roi((0, 0), (30, 30))))
    reference = gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10)))})
    pipeline = gp.GPGraphSource(POINTS, graph) + gp.Scan(reference)
    request = gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((0, 0), (30, 30)))})
    with gp.build(pipeline):
        out = pipeline.request_batch(request)[POINTS]
    assert out.spec.roi == gp.Roi((0, 0), (30, 30))
    assert {n.id: tuple(n.location) for n in out.nodes} == {0: (2, 2), 1: (5, 8), 2: (15, 4), 3: (25, 25)}
    # (1, 2) crosses from one chunk into the next: each chunk trimmed it to a temporary node
    assert [(e.u, e.v) for e in out.edges] == [(0, 1)]
