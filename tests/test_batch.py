"""ProviderSpec, BatchRequest (``add`` centring, update_with, merge, seeds) and Batch (crop, merge)."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.array import Array, ArrayKey, ArraySpec
from daskseg.batch import Batch, BatchRequest, ProviderSpec, set_seed
from daskseg.errors import RequestError, SpecError
from daskseg.geometry import Coordinate, Roi

RAW, AFFS, WEIGHTS, LABELS = ArrayKey("RAW"), ArrayKey("AFFINITIES"), ArrayKey("LOSS_WEIGHTS"), ArrayKey("LABELS")
VS = Coordinate((40, 4, 4))


def test_add_centres_the_tutorial_request():
    input_size = Coordinate((84, 268, 268)) * VS  # (3360, 1072, 1072)
    output_size = Coordinate((56, 56, 56)) * VS  # (2240, 224, 224)
    request = gp.BatchRequest()
    request.add(RAW, input_size)
    request.add(AFFS, output_size)
    request.add(WEIGHTS, output_size)
    # raw stays at the origin; the total ROI's centre is (1680, 536, 536); the output
    # (centre at half its size, (1120, 112, 112)) moves by (560, 424, 424): 14 z-sections
    # and 106 voxels of context on either side
    assert request[RAW].roi == Roi((0, 0, 0), (3360, 1072, 1072))
    assert request[AFFS].roi == Roi((560, 424, 424), (2240, 224, 224))
    assert request[WEIGHTS].roi == request[AFFS].roi
    assert request[AFFS].roi.begin - request[RAW].roi.begin == request[RAW].roi.end - request[AFFS].roi.end
    assert all(r.roi.is_aligned(VS) for r in request.values())


def test_add_recentres_earlier_keys_when_a_larger_one_is_added():
    request = BatchRequest()
    request.add(RAW, (10, 10))
    assert request[RAW].roi == Roi((0, 0), (10, 10))
    request.add(LABELS, (20, 20))
    # the union is [0, 20)^2 with centre (10, 10); RAW (centre (5, 5)) moves by (5, 5)
    assert request[LABELS].roi == Roi((0, 0), (20, 20))
    assert request[RAW].roi == Roi((5, 5), (10, 10))
    request.add(AFFS, (4, 3))
    # AFFS starts at (0, 0) with centre (2, 1); the union [0, 20)^2 has centre (10, 10)
    assert request[AFFS].roi == Roi((8, 9), (4, 3))
    assert request[RAW].roi == Roi((5, 5), (10, 10))


def test_add_with_odd_sizes_floors_the_centre():
    request = BatchRequest()
    request.add(RAW, (10,))
    request.add(LABELS, (3,))  # centre 0 + 3 // 2 = 1, total centre 5: shift by 4
    assert request[LABELS].roi == Roi((4,), (3,))


def test_add_sets_voxel_size_and_placeholder():
    request = BatchRequest()
    request.add(RAW, (80, 8, 8), voxel_size=VS, placeholder=True)
    assert request[RAW].voxel_size == VS and request[RAW].placeholder
    request.remove_placeholders()
    assert RAW not in request


def test_provider_spec_is_a_checked_mapping():
    spec = ProviderSpec()
    spec[RAW] = ArraySpec(roi=Roi((0, 0, 0), (40, 4, 4)), voxel_size=VS)
    assert RAW in spec and len(spec) == 1 and list(spec) == [RAW]
    with pytest.raises(KeyError, match="LABELS.*RAW"):
        spec[LABELS]
    with pytest.raises(SpecError, match="ArrayKey"):
        spec["RAW"] = ArraySpec()
    with pytest.raises(SpecError, match="ArraySpec"):
        spec[RAW] = "not a spec"
    # as gunpowder: a ROI stands for a spec with that ROI
    spec[RAW] = Roi((0, 0, 0), (40, 4, 4))
    assert spec[RAW] == ArraySpec(roi=Roi((0, 0, 0), (40, 4, 4)))
    # stored specs are copies
    s = ArraySpec(roi=Roi((0, 0, 0), (40, 4, 4)))
    spec[LABELS] = s
    s.roi = Roi((0, 0, 0), (80, 8, 8))
    assert spec[LABELS].roi == Roi((0, 0, 0), (40, 4, 4))


def test_provider_spec_total_common_roi_and_lcm_voxel_size():
    spec = ProviderSpec(
        {
            RAW: ArraySpec(roi=Roi((0, 0, 0), (400, 40, 40)), voxel_size=(40, 4, 4)),
            LABELS: ArraySpec(roi=Roi((80, 8, 8), (400, 40, 40)), voxel_size=(40, 8, 8)),
            AFFS: ArraySpec(nonspatial=True),
        }
    )
    assert spec.get_total_roi() == Roi((0, 0, 0), (480, 48, 48))
    assert spec.get_common_roi() == Roi((80, 8, 8), (320, 32, 32))
    assert spec.get_lcm_voxel_size() == (40, 8, 8)
    assert spec.get_lcm_voxel_size([RAW]) == (40, 4, 4)
    assert ProviderSpec().get_total_roi() is None and ProviderSpec().get_lcm_voxel_size() is None


def test_update_with_unites_rois_and_takes_other_fields_as_in_gunpowder():
    a = BatchRequest(
        {
            RAW: ArraySpec(roi=Roi((0, 0), (10, 10)), dtype=np.float32),
            LABELS: ArraySpec(roi=Roi((2, 2), (4, 4)), placeholder=True),
        },
        random_seed=9,
    )
    b = BatchRequest(
        {
            RAW: ArraySpec(roi=Roi((5, 5), (10, 10)), voxel_size=(1, 1)),
            LABELS: ArraySpec(roi=Roi((2, 2), (1, 1))),
            AFFS: ArraySpec(roi=Roi((0, 0), (1, 1))),
        }
    )
    updated = a.update_with(b)
    assert updated.random_seed == 9
    assert updated[RAW].roi == Roi((0, 0), (15, 15))
    # the dependency's dtype (None: whatever upstream has) replaces the downstream one, so that
    # dtype-converting nodes are not handed the dtype they produce
    assert updated[RAW].voxel_size == (1, 1) and updated[RAW].dtype is None
    # a dependency on a placeholder key makes it a real request
    assert updated[LABELS].roi == Roi((2, 2), (4, 4)) and not updated[LABELS].placeholder
    assert updated[AFFS].roi == Roi((0, 0), (1, 1))
    # neither input changed
    assert a[RAW].roi == Roi((0, 0), (10, 10)) and AFFS not in a and a[RAW].voxel_size is None
    assert b[RAW].roi == Roi((5, 5), (10, 10))
    # nonspatial specs are replaced
    nonspatial = BatchRequest({AFFS: ArraySpec(nonspatial=True)})
    n = nonspatial.update_with(BatchRequest({AFFS: ArraySpec(roi=Roi((0,), (1,)))}))
    assert n[AFFS].roi == Roi((0,), (1,))


def test_merge_unites_rois():
    a = BatchRequest({RAW: ArraySpec(roi=Roi((0, 0), (10, 10))), LABELS: ArraySpec(roi=Roi((2, 2), (4, 4)))})
    b = BatchRequest({RAW: ArraySpec(roi=Roi((5, 5), (10, 10))), AFFS: ArraySpec(roi=Roi((0, 0), (1, 1)))})
    merged = a.merge(b)
    assert merged[RAW].roi == Roi((0, 0), (15, 15))
    assert merged[LABELS].roi == Roi((2, 2), (4, 4)) and merged[AFFS].roi == Roi((0, 0), (1, 1))
    assert a[RAW].roi == Roi((0, 0), (10, 10)) and AFFS not in a


def test_request_copy_keeps_seed_and_equality_ignores_it():
    r = BatchRequest({RAW: ArraySpec(roi=Roi((0,), (4,)))}, random_seed=42)
    c = r.copy()
    assert c.random_seed == 42 and c == r
    c[RAW].roi = Roi((1,), (4,))
    assert r[RAW].roi == Roi((0,), (4,))
    assert r == BatchRequest({RAW: ArraySpec(roi=Roi((0,), (4,)))}, random_seed=7)


def test_with_seed_gives_fresh_reproducible_seeds():
    seeded = BatchRequest(random_seed=5)
    assert seeded.with_seed() is seeded
    set_seed(123)
    first = [BatchRequest().with_seed().random_seed for _ in range(3)]
    set_seed(123)
    second = [BatchRequest().with_seed().random_seed for _ in range(3)]
    assert first == second and len(set(first)) == 3
    set_seed(124)
    assert [BatchRequest().with_seed().random_seed for _ in range(3)] != first


def _array(data, offset, vs=(1, 1)):
    return Array(np.asarray(data), ArraySpec(roi=Roi(offset, Coordinate(np.shape(data)[-2:]) * vs), voxel_size=vs))


def test_batch_crop_returns_requested_keys_and_rois():
    data = np.arange(36).reshape(6, 6)
    batch = Batch()
    batch[RAW] = _array(data, (0, 0))
    batch[LABELS] = _array(data * 2, (0, 0))
    request = BatchRequest({RAW: ArraySpec(roi=Roi((1, 2), (3, 2)))})
    cropped = batch.crop(request)
    assert list(cropped) == [RAW]
    assert cropped[RAW].spec.roi == Roi((1, 2), (3, 2))
    np.testing.assert_array_equal(cropped[RAW].data, data[1:4, 2:4])
    assert cropped.id == batch.id
    with pytest.raises(RequestError, match="AFFINITIES"):
        batch.crop(BatchRequest({AFFS: ArraySpec(roi=Roi((0, 0), (1, 1)))}))


def test_batch_merge_lets_other_win():
    a, b = Batch(), Batch()
    a[RAW] = _array(np.zeros((2, 2)), (0, 0))
    a[LABELS] = _array(np.zeros((2, 2)), (0, 0))
    b[RAW] = _array(np.ones((2, 2)), (0, 0))
    b.loss = 0.5
    merged = a.merge(b)
    assert merged[RAW].data.max() == 1 and merged[LABELS].data.max() == 0
    assert merged.loss == 0.5
    assert a[RAW].data.max() == 0


def test_batch_rejects_non_arrays_and_names_missing_keys():
    batch = Batch()
    with pytest.raises(SpecError, match="RAW"):
        batch[RAW] = np.zeros(3)
    with pytest.raises(KeyError, match="LABELS"):
        batch[LABELS]
    batch[RAW] = _array(np.zeros((2, 3)), (0, 0))
    assert batch.get_total_roi() == Roi((0, 0), (2, 3))
    assert batch.spec[RAW].roi == Roi((0, 0), (2, 3))
    assert Batch().id != Batch().id


POINTS = gp.GraphKey("POINTS")


def test_requests_hold_graphs_centred_with_arrays():
    request = gp.BatchRequest()
    request.add(RAW, (40, 40, 40))
    request.add(POINTS, (20, 20, 20), directed=False)
    assert isinstance(request[POINTS], gp.GraphSpec)
    assert request[POINTS].roi == Roi((10, 10, 10), (20, 20, 20)) and request[POINTS].directed is False
    assert list(request) == [RAW, POINTS] and list(request.graph_specs) == [POINTS]
    assert request.get_total_roi() == Roi((0, 0, 0), (40, 40, 40))
    # dependencies unite graph ROIs as for arrays
    deps = gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=Roi((0, 0, 0), (15, 15, 15)))})
    merged = request.update_with(deps)
    assert merged[POINTS].roi == Roi((0, 0, 0), (30, 30, 30)) and merged[POINTS].directed is False
    placeholder = gp.BatchRequest()
    placeholder.add(POINTS, (4, 4, 4), placeholder=True)
    placeholder.remove_placeholders()
    assert POINTS not in placeholder
    spec = ProviderSpec()
    with pytest.raises(SpecError, match="GraphSpec"):
        spec[POINTS] = ArraySpec()
    spec[POINTS] = Roi((0, 0, 0), (1, 1, 1))
    assert spec[POINTS] == gp.GraphSpec(roi=Roi((0, 0, 0), (1, 1, 1)))


def test_batch_holds_graphs_and_crops_them_as_graphs():
    graph = gp.Graph(
        [gp.Node(1, np.array([1.0, 1.0])), gp.Node(2, np.array([8.0, 8.0]))],
        [gp.Edge(1, 2)],
        gp.GraphSpec(roi=Roi((0, 0), (10, 10))),
    )
    batch = Batch()
    batch[POINTS] = graph
    assert batch[POINTS] is graph and batch.graphs == {POINTS: graph} and list(batch) == [POINTS]
    with pytest.raises(SpecError, match="Graph"):
        batch[POINTS] = Array(np.zeros((2, 2)), ArraySpec(roi=Roi((0, 0), (2, 2)), voxel_size=(1, 1)))
    cropped = batch.crop(gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=Roi((0, 0), (5, 5)))}))
    # node 2 stays as the dangling end of the edge leaving the ROI
    assert sorted(n.id for n in cropped[POINTS].nodes) == [1, 2]
    assert cropped[POINTS].spec.roi == Roi((0, 0), (5, 5))
    other = Batch()
    other[POINTS] = cropped[POINTS]
    assert batch.merge(other)[POINTS] is cropped[POINTS]
    assert batch.get_total_roi() == Roi((0, 0), (10, 10))
