"""daskseg's Coordinate and Roi against funlib.geometry 0.3.0, side by side on the same inputs.

daskseg's types subclass funlib's, so every funlib method exists; where both are defined the results
must agree, except where daskseg deliberately raises (inexact ``/``, negative shapes).
"""

import copy
import pickle

import funlib.geometry as fg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import daskseg as gp
from daskseg.errors import GeometryError
from daskseg.geometry import Coordinate, Roi, as_roi

DIMS = 3
ints = st.integers(-50, 50)
pos = st.integers(1, 9)
coords = st.lists(ints, min_size=DIMS, max_size=DIMS)
divisors = st.lists(pos, min_size=DIMS, max_size=DIMS)
shapes = st.lists(st.integers(0, 30), min_size=DIMS, max_size=DIMS)
# None in a shape makes that axis unbounded
maybe_shapes = st.lists(st.one_of(st.integers(0, 30), st.none()), min_size=DIMS, max_size=DIMS)


def both(offset, shape):
    return Roi(offset, shape), fg.Roi(offset, shape)


def same(ours, theirs):
    assert isinstance(ours, (gp.Roi, gp.Coordinate)), type(ours)
    if isinstance(theirs, fg.Roi):
        if theirs.empty:  # funlib drops the offset of an empty ROI; daskseg keeps where it is
            assert ours.empty
        else:
            assert ours == theirs, (ours, theirs)
    else:
        assert tuple(ours) == tuple(theirs), (ours, theirs)


def test_daskseg_types_are_funlib_types():
    assert isinstance(gp.Roi((0, 0), (1, 1)), fg.Roi)
    assert isinstance(gp.Coordinate(1, 2), fg.Coordinate)
    assert gp.Roi((0, 0), (2, 2)) == fg.Roi((0, 0), (2, 2)) == gp.Roi((0, 0), (2, 2))
    assert fg.Roi((0, 0), (2, 2)) != gp.Roi((0, 0), (2, 3))


@settings(max_examples=200, deadline=None)
@given(coords, coords, divisors, st.integers(0, 3))
def test_coordinate_operators_match_funlib(a, b, d, p):
    ca, cb, cd = Coordinate(a), Coordinate(b), Coordinate(d)
    fa, fb, fd = fg.Coordinate(a), fg.Coordinate(b), fg.Coordinate(d)
    same(ca + cb, fa + fb)
    same(ca - cb, fa - fb)
    same(ca * cb, fa * fb)
    same(ca * 3, fa * 3)
    same(ca + 2, fa + 2)
    same(-ca, -fa)
    same(abs(ca), abs(fa))
    same(ca // cd, fa // fd)
    same(ca % cd, fa % fd)
    same(ca**p, fa**p)
    same(ca.floor_division(cd), fa.floor_division(fd))
    same(ca.ceil_division(cd), fa.ceil_division(fd))
    same(ca.round_division(cd), fa.round_division(fd))
    assert ca.is_multiple_of(cd) == fa.is_multiple_of(fd)
    same(ca.squeeze(1), fa.squeeze(1))
    same(ca.squeeze(), fa.squeeze())
    assert ca.dims == fa.dims
    # mixing: a funlib coordinate on either side gives a daskseg coordinate with funlib's values
    same(fa + cb, fa + fb)
    same(ca + fb, fa + fb)
    same(fa - cb, fa - fb)
    same(fa * cb, fa * fb)
    same(fa // cd, fa // fd)
    if ca.is_multiple_of(cd):
        same(ca / cd, fa / fd)
    else:  # daskseg keeps exact division: funlib truncates, daskseg raises
        with pytest.raises(GeometryError, match="not divisible"):
            ca / cd
        with pytest.raises(GeometryError):
            fa / cd


@settings(max_examples=200, deadline=None)
@given(coords, maybe_shapes, coords, maybe_shapes, coords, divisors)
def test_roi_methods_match_funlib(o1, s1, o2, s2, point, vs):
    r1, f1 = both(o1, s1)
    r2, f2 = both(o2, s2)
    for name in ("offset", "shape", "begin", "end", "center", "size", "empty", "unbounded", "dims"):
        ours, theirs = getattr(r1, name), getattr(f1, name)
        if isinstance(theirs, tuple):
            same(ours, theirs)
        else:
            assert ours == theirs, name
    for name in ("get_offset", "get_shape", "get_begin", "get_end", "get_center", "get_size"):
        ours, theirs = getattr(r1, name)(), getattr(f1, name)()
        assert (tuple(ours) if isinstance(ours, tuple) else ours) == (
            tuple(theirs) if isinstance(theirs, tuple) else theirs
        ), name
    data = np.zeros((200, 200, 200), dtype=np.uint8)
    shifted = r1 + 100 if not r1.unbounded else r1
    fshifted = f1 + 100 if not f1.unbounded else f1
    assert data[shifted.get_bounding_box()].shape == data[fshifted.get_bounding_box()].shape
    assert data[shifted.to_slices()].shape == data[fshifted.to_slices()].shape
    assert r1.contains(point) == f1.contains(point)
    assert r1.contains(r2) == f1.contains(f2)
    assert r1.contains(f2) == f1.contains(f2)  # a funlib ROI is accepted as the argument
    assert r1.intersects(r2) == f1.intersects(f2)
    same(r1.intersect(r2), f1.intersect(f2))
    same(r1.intersect(f2), f1.intersect(f2))
    same(r1.union(r2), f1.union(f2))
    same(r1.shift(Coordinate(point)), f1.shift(fg.Coordinate(point)))
    same(r1 + Coordinate(point), f1 + fg.Coordinate(point))
    same(r1 - Coordinate(point), f1 - fg.Coordinate(point))
    same(r1 - 3, f1 - 3)
    same(r1 * 2, f1 * 2)
    same(r1 * Coordinate(vs), f1 * fg.Coordinate(vs))
    same(r1 // Coordinate(vs), f1 // fg.Coordinate(vs))
    same(r1.squeeze(), f1.squeeze())
    same(r1.squeeze(2), f1.squeeze(2))
    same(r1.grow(2, 3), f1.grow(2, 3))
    same(r1.grow(Coordinate(vs), None), f1.grow(fg.Coordinate(vs), 0))
    if not r1.unbounded:
        for mode in ("grow", "shrink", "closest"):
            theirs = f1.snap_to_grid(fg.Coordinate(vs), mode=mode)
            if any(s < 0 for s in theirs.shape):  # funlib lets a shrink go negative; daskseg stops at empty
                assert r1.snap_to_grid(vs, mode=mode).empty
            else:
                same(r1.snap_to_grid(vs, mode=mode), theirs)


@settings(max_examples=100, deadline=None)
@given(coords, shapes, coords, shapes)
def test_set_offset_and_set_shape_mutate_in_place_as_funlib(o1, s1, o2, s2):
    r, f = both(o1, s1)
    alias = r
    r.set_offset(o2)
    f.set_offset(o2)
    same(r, f)
    r.set_shape(s2)
    f.set_shape(s2)
    same(r, f)
    assert alias is r and alias.shape == tuple(s2)
    r.offset = o1
    f.offset = o1
    r.shape = s1
    f.shape = s1
    same(r, f)


def test_copy_is_independent_and_the_spec_copy_does_not_share_its_roi():
    roi = Roi((0, 0, 0), (4, 4, 4))
    for duplicate in (roi.copy(), copy.copy(roi), copy.deepcopy(roi)):
        duplicate.set_offset((1, 1, 1))
        assert roi.offset == (0, 0, 0)
    spec = gp.ArraySpec(roi=roi, voxel_size=(1, 1, 1))
    other = spec.copy()
    other.roi.set_shape((2, 2, 2))
    assert spec.roi.shape == (4, 4, 4)
    assert pickle.loads(pickle.dumps(roi)) == roi


def test_freeze_and_thaw_as_funlib():
    roi = Roi((0,), (1,))
    with pytest.raises(TypeError, match="frozen"):
        roi.label = "x"
    roi.thaw()
    roi.label = "x"
    assert roi.label == "x"
    roi.freeze()
    with pytest.raises(TypeError, match="frozen"):
        roi.other = 1


def test_errors_are_assertion_errors_like_funlibs():
    with pytest.raises(AssertionError):
        Coordinate(1, 2) + Coordinate(1, 2, 3)
    with pytest.raises(AssertionError):
        Roi((0, 0), (1, 1, 1))
    with pytest.raises(GeometryError, match="squeeze axis 3"):
        Coordinate(1, 2, 3).squeeze(3)


def test_funlib_objects_are_accepted_where_daskseg_takes_a_roi():
    roi = fg.Roi((0, 0, 0), (4, 4, 4))
    spec = gp.ArraySpec(roi=roi, voxel_size=fg.Coordinate(2, 2, 2))
    assert type(spec.roi) is gp.Roi and type(spec.voxel_size) is gp.Coordinate
    spec.roi = fg.Roi((2, 2, 2), (2, 2, 2))
    assert type(spec.roi) is gp.Roi and spec.roi.is_aligned((2, 2, 2))
    data = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    array = gp.Array(data, gp.ArraySpec(roi=roi, voxel_size=(2, 2, 2)))
    cropped = array.crop(fg.Roi((2, 2, 2), (2, 2, 2)))
    assert cropped.data.tolist() == [[[7]]]
    request = gp.BatchRequest()
    key = gp.ArrayKey("FUNLIB_RAW")
    request[key] = gp.ArraySpec(roi=fg.Roi((0, 0, 0), (2, 2, 2)))
    assert type(request[key].roi) is gp.Roi
    assert as_roi(roi) == roi and type(as_roi(roi)) is gp.Roi
    with pytest.raises(GeometryError, match="expected a Roi"):
        as_roi((0, 0))


def test_round_division_rounds_half_down_as_funlib():
    assert Coordinate(5, 7, -5).round_division(2) == (2, 3, -3)
    assert Roi((2,), (4,)).snap_to_grid((4,), mode="closest") == Roi((0,), (4,))  # 0.5 -> 0, 1.5 -> 1
