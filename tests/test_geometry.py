"""Coordinate and Roi algebra: hand-checked cases and hypothesis properties."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daskseg.errors import GeometryError
from daskseg.geometry import Coordinate, Roi, lcm_voxel_size

# --- strategies --------------------------------------------------------------------------------

DIMS = 3
ints = st.integers(min_value=-1000, max_value=1000)
sizes = st.integers(min_value=0, max_value=500)
voxel_sizes = st.tuples(*[st.integers(min_value=1, max_value=12)] * DIMS)


@st.composite
def rois(draw, dims: int = DIMS, allow_unbounded: bool = False):
    offset = draw(st.tuples(*[ints] * dims))
    shape = list(draw(st.tuples(*[sizes] * dims)))
    if allow_unbounded:
        unbounded = draw(st.tuples(*[st.booleans()] * dims))
        shape = [None if u else s for s, u in zip(shape, unbounded)]
    return Roi(offset, shape)


@st.composite
def nonempty_rois(draw, dims: int = DIMS):
    offset = draw(st.tuples(*[ints] * dims))
    shape = draw(st.tuples(*[st.integers(min_value=1, max_value=500)] * dims))
    return Roi(offset, shape)


# --- Coordinate --------------------------------------------------------------------------------


def test_coordinate_arithmetic_by_hand():
    vs = Coordinate((40, 4, 4))
    assert Coordinate((84, 268, 268)) * vs == Coordinate((3360, 1072, 1072))
    assert vs * 2 == (80, 8, 8)
    assert 2 * vs == (80, 8, 8)
    assert vs + 1 == (41, 5, 5)
    assert vs - (40, 4, 4) == (0, 0, 0)
    assert (100, 10, 10) - vs == (60, 6, 6)
    assert Coordinate((81, 9, 9)) // vs == (2, 2, 2)
    assert Coordinate((80, 8, 8)) / vs == (2, 2, 2)
    assert Coordinate((81, 9, 10)) % vs == (1, 1, 2)
    assert -vs == (-40, -4, -4)
    assert abs(Coordinate((-3, 0, 2))) == (3, 0, 2)
    assert vs.dims == 3
    assert Coordinate(1, 2, 3) == Coordinate((1, 2, 3)) == (1, 2, 3)


def test_coordinate_exact_division_raises_with_both_values():
    with pytest.raises(GeometryError, match=r"\(81, 8, 8\).*\(40, 4, 4\)"):
        Coordinate((81, 8, 8)) / Coordinate((40, 4, 4))


def test_coordinate_rejects_non_integers_and_dimension_mismatch():
    with pytest.raises(GeometryError, match="integers"):
        Coordinate((1.5, 2))
    assert Coordinate((2.0, 3)) == (2, 3)
    with pytest.raises(GeometryError, match="dimension mismatch"):
        Coordinate((1, 2, 3)) - (1, 2)
    with pytest.raises(GeometryError, match="dimension mismatch"):
        Coordinate((1, 2, 3)) * Coordinate((1, 2))


def test_coordinate_none_is_unbounded_and_propagates():
    c = Coordinate((None, 4, 4))
    assert c + 1 == (None, 5, 5)
    assert c * 2 == (None, 8, 8)
    assert c - Coordinate((1, None, 1)) == (None, None, 3)
    assert -c == (None, -4, -4)
    assert c.is_multiple_of((40, 2, 4))
    assert not Coordinate((41, 4, 4)).is_multiple_of((40, 4, 4))


def test_coordinate_divisions():
    assert Coordinate((7, -7, 8)).ceil_division(2) == (4, -3, 4)
    assert Coordinate((7, 5, 9)).round_division((2, 2, 2)) == (3, 2, 4)  # an exact half rounds down, as funlib: 3.5->3, 2.5->2
    assert Coordinate((7, -7, 5)).round_division(4) == (2, -2, 1)  # 1.75->2, -1.75->-2, 1.25->1


def test_lcm_voxel_size():
    assert lcm_voxel_size([(40, 4, 4), (40, 8, 6)]) == (40, 8, 12)
    assert lcm_voxel_size([(3, 5)]) == (3, 5)
    with pytest.raises(GeometryError):
        lcm_voxel_size([])


@given(st.tuples(*[ints] * DIMS), st.tuples(*[ints] * DIMS))
def test_coordinate_add_sub_inverse(a, b):
    a, b = Coordinate(a), Coordinate(b)
    assert (a + b) - b == a
    assert a + b == b + a


@given(st.tuples(*[ints] * DIMS), voxel_sizes)
def test_coordinate_floor_mod_identity(a, vs):
    a, vs = Coordinate(a), Coordinate(vs)
    assert (a // vs) * vs + a % vs == a
    assert ((a // vs) * vs).is_multiple_of(vs)


# --- Roi: by hand ------------------------------------------------------------------------------


def test_roi_accessors_by_hand():
    roi = Roi((400, 40, 40), (400, 160, 160))
    assert roi.begin == (400, 40, 40) == roi.offset == roi.get_begin() == roi.get_offset()
    assert roi.end == (800, 200, 200) == roi.get_end()
    assert roi.shape == (400, 160, 160) == roi.get_shape()
    assert roi.center == (600, 120, 120)
    assert roi.size == 400 * 160 * 160
    assert roi.dims == 3
    assert not roi.empty and not roi.unbounded
    assert roi.to_slices() == (slice(400, 800), slice(40, 200), slice(40, 200))
    assert Roi((0, 0), (0, 5)).empty


def test_roi_contains_by_hand():
    roi = Roi((0, 0), (10, 10))
    assert roi.contains(Roi((2, 3), (4, 5)))
    assert roi.contains(roi)
    assert not roi.contains(Roi((5, 5), (6, 1)))
    assert roi.contains((0, 0)) and roi.contains((9, 9))
    assert not roi.contains((10, 0)) and not roi.contains((-1, 3))
    # empty ROIs are contained where their begin is
    assert roi.contains(Roi((3, 3), (0, 0)))
    assert not roi.contains(Roi((20, 3), (0, 0)))


def test_roi_intersect_union_by_hand():
    a = Roi((0, 0), (10, 10))
    b = Roi((5, -5), (10, 10))
    assert a.intersect(b) == Roi((5, 0), (5, 5))
    assert a.union(b) == Roi((0, -5), (15, 15))
    c = Roi((20, 20), (5, 5))
    assert a.intersect(c).empty
    assert not a.intersects(c) and a.intersects(b)
    assert a.union(Roi((3, 3), (0, 0))) == a


def test_roi_grow_shift_by_hand():
    roi = Roi((40, 4, 4), (80, 8, 8))
    assert roi.grow((40, 4, 4), (0, 8, 8)) == Roi((0, 0, 0), (120, 20, 20))
    assert roi.grow(-(Coordinate((40, 4, 4))), -(Coordinate((0, 0, 0)))) == Roi((80, 8, 8), (40, 4, 4))
    assert roi.grow(None, None) == roi
    assert roi.shift((1, 2, 3)) == Roi((41, 6, 7), (80, 8, 8))
    assert roi + (1, 1, 1) == roi.shift((1, 1, 1))
    assert roi - (40, 4, 4) == Roi((0, 0, 0), (80, 8, 8))
    assert roi / (40, 4, 4) == Roi((1, 1, 1), (2, 2, 2))
    assert (roi / (40, 4, 4)) * (40, 4, 4) == roi
    with pytest.raises(GeometryError, match="negative"):
        roi.grow((0, 0, -50), (0, 0, -50))


def test_roi_snap_to_grid_by_hand():
    roi = Roi((3, -3), (10, 10))  # [3, 13) x [-3, 7)
    assert roi.snap_to_grid((4, 4), mode="grow") == Roi((0, -4), (16, 12))
    assert roi.snap_to_grid((4, 4), mode="shrink") == Roi((4, 0), (8, 4))
    assert roi.snap_to_grid((4, 4), mode="closest") == Roi((4, -4), (8, 12))  # 3->4, 13->12; -3->-4, 7->8
    with pytest.raises(GeometryError, match="mode"):
        roi.snap_to_grid((4, 4), mode="outward")


def test_roi_is_aligned():
    assert Roi((40, 4, 4), (80, 8, 12)).is_aligned((40, 4, 4))
    assert not Roi((40, 4, 2), (80, 8, 12)).is_aligned((40, 4, 4))
    assert not Roi((40, 4, 4), (80, 8, 6)).is_aligned((40, 4, 4))


def test_roi_errors():
    with pytest.raises(GeometryError, match="non-negative"):
        Roi((0, 0), (-1, 3))
    with pytest.raises(GeometryError, match="different dimensions"):
        Roi((0, 0, 0), (1, 1))
    with pytest.raises(GeometryError, match="dimension mismatch"):
        Roi((0, 0), (1, 1)).intersect(Roi((0, 0, 0), (1, 1, 1)))


def test_roi_unbounded_semantics():
    inf = Roi((None, None), (None, None))
    assert inf.unbounded and inf.size is None and not inf.empty
    assert inf.offset == (None, None)
    half = Roi((0, 5), (None, 10))  # unbounded in dim 0: the offset there is dropped too
    assert half.offset == (None, 5) and half.end == (None, 15)
    bounded = Roi((3, 7), (4, 4))
    assert inf.contains(bounded) and half.contains(bounded)
    assert not bounded.contains(half)
    assert inf.intersect(bounded) == bounded
    assert half.intersect(bounded) == bounded
    assert inf.union(bounded) == inf
    assert half.union(bounded) == Roi((None, 5), (None, 10))
    assert inf.contains((10**9, -(10**9)))
    assert half.to_slices() == (slice(None), slice(5, 15))
    assert "inf" in repr(inf)


def test_roi_value_semantics():
    a = Roi((0, 0), (4, 4))
    assert a == Roi((0, 0), (4, 4))
    assert hash(a) == hash(Roi((0, 0), (4, 4)))
    assert a != Roi((0, 0), (4, 5)) and a != "not a roi"
    assert pickle.loads(pickle.dumps(a)) == a
    assert "0:4" in repr(a)
    assert "empty" in repr(Roi((1, 1), (0, 2)))


# --- Roi: properties ----------------------------------------------------------------------------


@given(rois(allow_unbounded=True), rois(allow_unbounded=True))
def test_intersect_is_commutative(a, b):
    assert a.intersect(b) == b.intersect(a) or (a.intersect(b).empty and b.intersect(a).empty)


@given(nonempty_rois(), nonempty_rois())
def test_intersection_is_contained_in_both(a, b):
    i = a.intersect(b)
    if not i.empty:
        assert a.contains(i) and b.contains(i)
    # every point of both lies in the intersection: check the corners of the intersection
    if not i.empty:
        for p in (i.begin, i.end - 1):
            assert a.contains(p) and b.contains(p) and i.contains(p)


@given(nonempty_rois(), nonempty_rois())
def test_intersection_is_the_largest_common_roi(a, b):
    i = a.intersect(b)
    expected_empty = any(max(ab, bb) >= min(ae, be) for ab, bb, ae, be in zip(a.begin, b.begin, a.end, b.end))
    assert i.empty == expected_empty
    if not i.empty:
        assert i.begin == tuple(max(x, y) for x, y in zip(a.begin, b.begin))
        assert i.end == tuple(min(x, y) for x, y in zip(a.end, b.end))


@given(nonempty_rois(), nonempty_rois())
def test_union_contains_both(a, b):
    u = a.union(b)
    assert u.contains(a) and u.contains(b)
    assert u == b.union(a)
    assert u.begin == tuple(min(x, y) for x, y in zip(a.begin, b.begin))
    assert u.end == tuple(max(x, y) for x, y in zip(a.end, b.end))


@given(rois(), st.tuples(*[sizes] * DIMS), st.tuples(*[sizes] * DIMS))
def test_grow_then_shrink_is_identity(roi, neg, pos):
    grown = roi.grow(neg, pos)
    if not roi.empty:  # as in funlib, empty ROIs are contained only where their begin is
        assert grown.contains(roi)
    assert grown.shape == roi.shape + neg + pos
    assert grown.grow(-Coordinate(neg), -Coordinate(pos)) == roi


@given(nonempty_rois(), voxel_sizes)
def test_snap_to_grid_grow_contains_and_shrink_is_contained(roi, vs):
    grown = roi.snap_to_grid(vs, mode="grow")
    shrunk = roi.snap_to_grid(vs, mode="shrink")
    closest = roi.snap_to_grid(vs, mode="closest")
    for snapped in (grown, shrunk, closest):
        assert snapped.begin.is_multiple_of(vs) and snapped.end.is_multiple_of(vs)
    assert grown.contains(roi)
    if not shrunk.empty:
        assert roi.contains(shrunk)
    # snapping moves each face by less than one voxel
    assert all(0 <= r - g < v for r, g, v in zip(roi.begin, grown.begin, vs))
    assert all(0 <= g - r < v for r, g, v in zip(roi.end, grown.end, vs))
    assert all(abs(c - r) <= v / 2 for r, c, v in zip(roi.begin, closest.begin, vs))


@given(rois(), voxel_sizes)
def test_snap_of_aligned_roi_is_identity(roi, vs):
    aligned = Roi(Coordinate(roi.offset) * vs, Coordinate(roi.shape) * vs)
    for mode in ("grow", "shrink", "closest"):
        assert aligned.snap_to_grid(vs, mode=mode) == aligned


@given(rois(allow_unbounded=True), st.tuples(*[ints] * DIMS))
def test_shift_preserves_shape(roi, by):
    shifted = roi.shift(by)
    assert shifted.shape == roi.shape
    assert shifted.shift(-Coordinate(by)) == roi
    for b, s, r in zip(shifted.begin, by, roi.begin):
        assert b == (None if r is None else r + s)


@given(rois(allow_unbounded=True), rois())
@settings(max_examples=50)
def test_unbounded_dims_contain_any_extent(a, b):
    # a ROI unbounded in every dim where it is unbounded contains b iff the bounded dims do
    bounded_dims_contain = all(
        s is None or (ab <= bb and ae >= be) for s, ab, bb, ae, be in zip(a.shape, a.begin, b.begin, a.end, b.end)
    )
    if not b.empty:
        assert a.contains(b) == bounded_dims_contain


def test_roi_contains_real_points_as_funlib():
    roi = Roi((0, 0), (10, 10))
    assert roi.contains(np.array([9.5, 0.0], dtype=np.float32))
    assert not roi.contains((10.0, 0.5)) and not roi.contains((-0.1, 5))
    assert Roi((None, 0), (None, 10)).contains((-1e9, 9.99))
