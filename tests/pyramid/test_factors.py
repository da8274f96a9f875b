"""The pyramid's factor rule: in-plane until about isotropic, then all axes (CREMI's 40x4x4 ->
40x8x8 -> 40x16x16 -> 40x32x32 -> 80x64x64), stopping at one chunk; given factors."""

from __future__ import annotations

import pytest

from daskseg.errors import GeometryError
from daskseg.geometry import Coordinate
from daskseg.pyramid import default_factors, given_factors, next_factor


def voxel_sizes(vs, factors):
    out = [tuple(vs)]
    for f in factors:
        out.append(tuple(a * b for a, b in zip(out[-1], f)))
    return out


def test_anisotropic_data_is_halved_in_plane_until_about_isotropic_then_in_all_axes():
    factors = default_factors((40, 4, 4), (125, 1250, 1250), (64, 64, 64))
    assert voxel_sizes((40, 4, 4), factors) == [
        (40, 4, 4),
        (40, 8, 8),
        (40, 16, 16),
        (40, 32, 32),
        (80, 64, 64),
        (160, 128, 128),
    ]


def test_next_factor():
    assert next_factor((8, 8, 8)) == Coordinate((2, 2, 2))
    assert next_factor((40, 32, 32)) == Coordinate((2, 2, 2))  # doubling 32 passes 40: all axes
    assert next_factor((40, 20, 20)) == Coordinate((1, 2, 2))  # 40 is still reached exactly
    assert next_factor((4, 4, 10)) == Coordinate((2, 2, 1))


def test_levels_stop_at_one_chunk_at_a_single_voxel_and_at_max_levels():
    assert default_factors((4, 4, 4), (64, 64, 64), (64, 64, 64)) == []
    assert len(default_factors((4, 4, 4), (65, 64, 64), (64, 64, 64))) == 1
    # (40, 4, 4) with a single section: the in-plane levels, then z cannot be halved
    assert voxel_sizes((40, 4, 4), default_factors((40, 4, 4), (1, 512, 512), (1, 8, 8)))[-1] == (40, 32, 32)
    assert len(default_factors((40, 4, 4), (125, 1250, 1250), (64, 64, 64), max_levels=2)) == 2


def test_given_factors_repeat_or_list_the_levels():
    assert given_factors([(2, 2, 2)], (4, 4, 4), (32, 32, 32), (8, 8, 8)) == [Coordinate((2, 2, 2))] * 2
    listed = given_factors([(1, 2, 2), (2, 2, 2), (1, 3, 3)], (4, 4, 4), (8, 8, 8), (64, 64, 64))
    assert listed == [Coordinate((1, 2, 2)), Coordinate((2, 2, 2)), Coordinate((1, 3, 3))]
    assert (
        given_factors([(2, 2, 2)], (4, 4, 4), (256, 256, 256), (1, 1, 1), max_levels=3) == [Coordinate((2, 2, 2))] * 3
    )
    with pytest.raises(GeometryError, match=r"factors \(2, 2\) must be 3 whole numbers"):
        given_factors([(2, 2)], (4, 4, 4), (8, 8, 8), (1, 1, 1))
    with pytest.raises(GeometryError, match="at least one above 1"):
        given_factors([(1, 1, 1)], (4, 4, 4), (8, 8, 8), (1, 1, 1))
