"""RandomLocation: uniform valid locations on the lcm grid, masks, shifts, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import RequestError
from daskseg.io import write_array

RAW, LABELS, MASK, SHIFT = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS"), gp.ArrayKey("MASK"), gp.ArrayKey("SHIFT")
VS = gp.Coordinate((4, 2, 2))
OFFSET = gp.Coordinate((16, 8, 4))


@pytest.fixture
def sample(tmp_path):
    """Raw (4, 6, 10) voxels with unique values, a labels array at twice the voxel size, a mask."""
    raw = np.arange(4 * 6 * 10, dtype=np.uint16).reshape(4, 6, 10)
    labels = np.arange(2 * 3 * 5, dtype=np.uint64).reshape(2, 3, 5)  # voxel size (8, 4, 4)
    mask = np.zeros((4, 6, 10), dtype=np.uint8)
    mask[:, :, 6:] = 1  # only the last 4 x-columns are masked in
    path = tmp_path / "rl.zarr"
    write_array(path, "raw", raw, VS, offset=OFFSET)
    write_array(path, "labels", labels, VS * 2, offset=OFFSET)
    write_array(path, "mask", mask, VS, offset=OFFSET)
    return path, raw, labels, mask


def source(path, keys=(RAW,)):
    names = {RAW: "raw", LABELS: "labels", MASK: "mask"}
    return gp.ZarrSource(path, {k: names[k] for k in keys})


def seeded(request, seed):
    out = request.copy()
    out.random_seed = seed
    return out


def test_spec_is_unbounded_downstream(sample):
    path, *_ = sample
    pipeline = source(path, (RAW, LABELS)) + gp.RandomLocation()
    with gp.build(pipeline):
        assert pipeline.spec[RAW].roi.unbounded and pipeline.spec[LABELS].roi.unbounded
        assert pipeline.spec[RAW].voxel_size == VS and pipeline.spec[RAW].dtype == np.uint16


def test_any_request_position_gets_data_from_a_valid_location(sample):
    path, raw, *_ = sample
    pipeline = source(path) + gp.RandomLocation(random_shift_key=SHIFT)
    roi = gp.Roi((10**6, -(10**6), 0), VS * (2, 3, 4))  # far outside the data: fine downstream of RandomLocation
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=roi), SHIFT: gp.ArraySpec(nonspatial=True)})
    with gp.build(pipeline):
        for seed in range(20):
            batch = pipeline.request_batch(seeded(request, seed))
            assert batch[RAW].spec.roi == roi
            shift = gp.Coordinate(batch[SHIFT].data)
            begin = (roi.begin + shift - OFFSET) / VS
            assert all(b >= 0 for b in begin) and all(b + s <= n for b, s, n in zip(begin, (2, 3, 4), raw.shape))
            np.testing.assert_array_equal(
                batch[RAW].data, raw[begin[0] : begin[0] + 2, begin[1] : begin[1] + 3, begin[2] : begin[2] + 4]
            )


def test_locations_are_uniform_over_all_valid_positions(sample):
    path, raw, *_ = sample
    pipeline = source(path) + gp.RandomLocation()
    # (4, 6, 10) voxels of data, a (4, 5, 8)-voxel request: 1 x 2 x 3 valid positions
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), VS * (4, 5, 8)))})
    counts: dict = {}
    with gp.build(pipeline):
        for seed in range(180):
            data = pipeline.request_batch(seeded(request, seed))[RAW].data
            # raw holds unique values: its first voxel says where the batch came from
            position = np.unravel_index(int(data[0, 0, 0]), raw.shape)
            counts[position] = counts.get(position, 0) + 1
    assert set(counts) == {(0, y, x) for y in (0, 1) for x in (0, 1, 2)}
    assert min(counts.values()) > 180 / 6 / 2  # each of the 6 positions drawn roughly equally often


def test_shifts_stay_on_the_lcm_voxel_grid(sample):
    path, raw, labels, _ = sample
    pipeline = source(path, (RAW, LABELS)) + gp.RandomLocation(random_shift_key=SHIFT)
    request = gp.BatchRequest()
    request.add(RAW, VS * (2, 2, 2))
    request.add(LABELS, VS * (2, 2, 2))
    request[SHIFT] = gp.ArraySpec(nonspatial=True)
    lcm = VS * 2
    seen = set()
    with gp.build(pipeline):
        for seed in range(60):
            batch = pipeline.request_batch(seeded(request, seed))
            shift = gp.Coordinate(batch[SHIFT].data)
            assert shift.is_multiple_of(lcm)
            seen.add(shift)
            # raw and labels come from the same place
            raw_begin = (request[RAW].roi.begin + shift - OFFSET) / VS
            lab_begin = (request[LABELS].roi.begin + shift - OFFSET) / (VS * 2)
            z, y, x = raw_begin
            np.testing.assert_array_equal(batch[RAW].data, raw[z : z + 2, y : y + 2, x : x + 2])
            assert batch[LABELS].data.item() == labels[tuple(lab_begin)]
    # labels: (2, 3, 5) voxels of (8, 4, 4), requested one voxel: 2 * 3 * 5 positions, all valid
    base = OFFSET - request[LABELS].roi.begin
    valid = {base + lcm * (z, y, x) for z in range(2) for y in range(3) for x in range(5)}
    assert seen <= valid and len(seen) >= 20  # 60 draws hit about 26 of the 30 positions


def test_request_larger_than_the_data_is_a_request_error(sample):
    path, *_ = sample
    pipeline = source(path) + gp.RandomLocation()
    roi = gp.Roi((0, 0, 0), VS * (5, 1, 1))
    with gp.build(pipeline):
        with pytest.raises(RequestError, match="do not fit") as e:
            pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))
    assert str(roi) in str(e.value)


def test_same_seed_same_location(sample):
    path, *_ = sample
    pipeline = source(path) + gp.RandomLocation()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), VS * (1, 2, 2)))})
    with gp.build(pipeline):
        a = pipeline.request_batch(seeded(request, 5))[RAW].data
        b = pipeline.request_batch(seeded(request, 5))[RAW].data
        others = [pipeline.request_batch(seeded(request, s))[RAW].data for s in range(6, 16)]
    np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, o) for o in others)


def test_min_masked_with_requested_mask(sample):
    path, raw, _, mask = sample
    pipeline = source(path, (RAW, MASK)) + gp.RandomLocation(min_masked=0.5, mask=MASK)
    request = gp.BatchRequest()
    request.add(RAW, VS * (1, 1, 4))
    request.add(MASK, VS * (1, 1, 4))
    with gp.build(pipeline):
        for seed in range(40):
            batch = pipeline.request_batch(seeded(request, seed))
            # at least half of the requested mask voxels are in: x-begin >= 4 (mask is in from x = 6)
            assert batch[MASK].data.mean() >= 0.5
            x0 = int(batch[RAW].data[0, 0, 0]) % 10
            assert x0 >= 4
            np.testing.assert_array_equal(batch[MASK].data, mask[:1, :1, x0 : x0 + 4])


def test_min_masked_measures_the_total_roi_when_the_mask_is_not_requested(sample):
    path, raw, _, mask = sample
    pipeline = source(path, (RAW, MASK)) + gp.RandomLocation(min_masked=1.0, mask=MASK)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), VS * (2, 2, 3)))})
    xs = set()
    with gp.build(pipeline):
        for seed in range(40):
            data = pipeline.request_batch(seeded(request, seed))[RAW].data
            x0 = int(data[0, 0, 0]) % 10
            xs.add(x0)
    assert xs == {6, 7}  # the only x-positions where all 3 columns are masked in


def test_impossible_min_masked_gives_up_with_a_clear_error(sample):
    path, *_ = sample

    class FewTries(gp.RandomLocation):
        max_attempts = 50

    pipeline = source(path, (RAW, MASK)) + FewTries(min_masked=0.9, mask=MASK)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), VS * (1, 1, 9)))})
    with gp.build(pipeline):
        with pytest.raises(RequestError, match=r"50 random locations.*MASK.*min_masked=0.9"):
            pipeline.request_batch(request)


def test_accepts_can_be_overridden(sample):
    path, raw, *_ = sample

    class OnlyLeft(gp.RandomLocation):
        def accepts(self, request):
            return request[RAW].roi.begin[2] == OFFSET[2]

    pipeline = source(path) + OnlyLeft()
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), VS * (1, 1, 1)))})
    with gp.build(pipeline):
        for seed in range(20):
            value = int(pipeline.request_batch(seeded(request, seed))[RAW].data.item())
            assert value % 10 == 0


def test_unbounded_upstream_is_a_request_error(sample):
    path, *_ = sample
    pipeline = source(path) + gp.Pad(RAW, None) + gp.RandomLocation()
    with gp.build(pipeline):
        with pytest.raises(RequestError, match="unbounded"):
            pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), VS))}))


def test_min_masked_needs_a_mask():
    with pytest.raises(ValueError, match="mask"):
        gp.RandomLocation(min_masked=0.5)


def test_pickles_without_the_mask_integral_and_works_after_setup_again(sample):
    import pickle

    path, raw, _, mask = sample
    node = gp.RandomLocation(min_masked=1.0, mask=MASK)
    pipeline = source(path, (RAW, MASK)) + node
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0, 0), VS * (1, 1, 3)))}, random_seed=4)
    with gp.build(pipeline):
        assert node.mask_integral is not None
        expected = pipeline.request_batch(request)[RAW].data
        clone = pickle.loads(pickle.dumps(pipeline))
    assert clone.output.mask_integral is None
    with gp.build(clone):
        np.testing.assert_array_equal(clone.request_batch(request)[RAW].data, expected)


POINTS = gp.GraphKey("RL_POINTS")


def _points_and_marks(locations, shape=(20, 50, 50)):
    """A label volume marking the voxels of ``locations`` (voxel size 1) and a graph of nodes there."""
    marks = np.zeros(shape, dtype=np.uint8)
    nodes = []
    for i, loc in enumerate(locations):
        marks[tuple(int(c) for c in loc)] = 1
        nodes.append(gp.Node(i, np.array(loc, dtype=float) + 0.5))
    roi = gp.Roi((0, 0, 0), shape)
    arrays = gp.GPArraySource(LABELS, gp.Array(marks, gp.ArraySpec(roi=roi, voxel_size=(1, 1, 1))))
    graph = gp.GPGraphSource(POINTS, gp.Graph(nodes, [], gp.GraphSpec(roi=roi)))
    return (arrays, graph) + gp.MergeProvider()


def test_graphs_move_with_the_arrays_and_ensure_nonempty_finds_the_sparse_nodes():
    locations = [(3, 10, 40), (15, 44, 5), (10, 25, 25)]
    pipeline = _points_and_marks(locations) + gp.RandomLocation(ensure_nonempty=POINTS, random_shift_key=SHIFT)
    request = gp.BatchRequest()
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (6, 8, 8)))
    request[POINTS] = gp.GraphSpec(roi=gp.Roi((0, 0, 0), (6, 8, 8)))
    request[SHIFT] = gp.ArraySpec(nonspatial=True)
    seen = set()
    with gp.build(pipeline):
        for seed in range(30):
            batch = pipeline.request_batch(seeded(request, seed))
            nodes = list(batch[POINTS].nodes)
            assert nodes, "ensure_nonempty must give a node in every batch"
            assert batch[POINTS].spec.roi == request[POINTS].roi
            for node in nodes:
                # in the request's coordinates, on the voxel marked for it
                assert request[POINTS].roi.contains(node.location)
                assert batch[LABELS].data[tuple(np.floor(node.location).astype(int))] == 1
                shift = batch[SHIFT].data
                assert np.array_equal(node.location + shift, np.array(locations[node.id]) + 0.5)
                seen.add(node.id)
    assert seen == {0, 1, 2}


def test_ensure_centered_puts_the_node_in_the_middle():
    pipeline = _points_and_marks([(10, 25, 25), (5, 5, 40)]) + gp.RandomLocation(ensure_nonempty=POINTS, ensure_centered=True)
    request = gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((0, 0, 0), (8, 8, 8)))})
    with gp.build(pipeline):
        for seed in range(6):
            (node,) = pipeline.request_batch(seeded(request, seed))[POINTS].nodes
            assert np.array_equal(node.location, (4.5, 4.5, 4.5))


def test_ensure_nonempty_needs_a_graph_key():
    with pytest.raises(ValueError, match="GraphKey"):
        gp.RandomLocation(ensure_nonempty=RAW)
