"""``mutex_watershed``: hand-checked cases where a long-range repulsive edge keeps two objects apart
that their nearest-neighbour affinities would join, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from daskseg.segment import SegmentError, mutex_watershed
from daskseg.segment.graph import NEAREST_NEIGHBORHOOD


def runs(seg: np.ndarray) -> list[int]:
    """The labels of a row renumbered 1, 2, ... in order of first appearance (a partition)."""
    first: dict[int, int] = {}
    return [first.setdefault(int(v), len(first) + 1) for v in seg.ravel()]


LONG = [list(o) for o in NEAREST_NEIGHBORHOOD] + [[0, 0, -3]]


def two_objects_in_a_row() -> np.ndarray:
    """A row of 8 voxels: objects 0..3 and 4..7 whose boundary leaks (x affinity 0.8 between 3
    and 4, 0.9 elsewhere); the long-range channel (x - 3) is 1 inside an object, 0 across."""
    affs = np.full((4, 1, 1, 8), 0.9, np.float32)
    affs[2, 0, 0, 4] = 0.8  # offset (0, 0, -1) at x=4: the edge 3-4
    labels = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    for x in range(8):
        affs[3, 0, 0, x] = 1.0 if x >= 3 and labels[x] == labels[x - 3] else 0.0
    return affs


def test_a_repulsive_long_range_edge_keeps_two_objects_apart():
    affs = two_objects_in_a_row()
    seg = mutex_watershed(affs, LONG)
    assert seg.dtype == np.uint64
    assert seg.ravel().tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    # the nearest-neighbour edges alone join everything
    alone = mutex_watershed(affs[:3], NEAREST_NEIGHBORHOOD)
    assert alone.ravel().tolist() == [1] * 8


def test_biases_decide_what_attracts():
    affs = two_objects_in_a_row()
    # long-range affinities of 1 - 0.9 below a bias of 0.95 ... the inside ones (1.0) still attract
    assert mutex_watershed(affs, LONG, long_range_bias=0.95).ravel().tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    # a nearest-neighbour bias above 0.85 cuts the edge 3-4 (0.8) and nothing else
    assert mutex_watershed(affs[:3], NEAREST_NEIGHBORHOOD, bias=0.85).ravel().tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    # above 0.9 every edge repels: every voxel alone
    assert len(np.unique(mutex_watershed(affs[:3], NEAREST_NEIGHBORHOOD, bias=0.95))) == 8


def test_small_segments_join_their_strongest_neighbour():
    affs = np.full((3, 1, 1, 7), 0.9, np.float32)
    affs[2, 0, 0, 3] = 0.1  # cut 2 | 3
    affs[2, 0, 0, 4] = 0.3  # cut 3 | 4 (less strongly): voxel 3 alone
    assert runs(mutex_watershed(affs, NEAREST_NEIGHBORHOOD)) == [1, 1, 1, 2, 3, 3, 3]
    assert mutex_watershed(affs, NEAREST_NEIGHBORHOOD, min_size=2).ravel().tolist() == [1, 1, 1, 2, 2, 2, 2]


def test_bad_input_is_one_clear_error():
    affs = two_objects_in_a_row()
    with pytest.raises(SegmentError, match="do not fit a neighbourhood of 5 offsets"):
        mutex_watershed(affs, LONG + [[0, -3, 0]])
    with pytest.raises(SegmentError, match="nearest-neighbour offset along every axis"):
        mutex_watershed(affs[1:], [[0, -1, 0], [0, 0, -1], [0, 0, -3]])
    with pytest.raises(SegmentError, match="bias must lie in"):
        mutex_watershed(affs, LONG, bias=1.5)
