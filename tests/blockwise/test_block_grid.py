"""BlockGrid: blocks tile the output ROI, read with context, and respect the output's chunk grid."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daskseg.blockwise import AlignmentError, BlockGrid, check_alignment
from daskseg.blockwise.grid import layout_hash
from daskseg.geometry import Coordinate, Roi


def test_blocks_of_a_hand_checked_grid():
    # 10 x 7 voxels of (2, 1) world units from (4, 3), blocks of 4 x 3 voxels, context 2/1 world units
    grid = BlockGrid(Roi((4, 3), (20, 7)), (4, 3), (2, 1), context_neg=(2, 1), context_pos=(4, 1))
    assert grid.shape == (3, 3)
    assert len(grid) == 9
    assert grid.boundaries(0) == [4, 12, 20, 24]
    assert grid.boundaries(1) == [3, 6, 9, 10]
    last = grid.block((2, 2))
    assert last.write_roi == Roi((20, 9), (4, 1))
    assert last.read_roi == Roi((18, 8), (10, 3))
    assert grid.block(8) == last
    assert last.key() == "predict-block-2-2"
    assert last.key(token="ab12cd34") == "predict-block-2-2-ab12cd34"
    assert grid.read_roi == Roi((2, 2), (26, 9))


def test_short_last_block_is_merged_when_below_minimum():
    grid = BlockGrid(Roi((0,), (10,)), (4,), (1,), min_block_shape=(3,))
    assert grid.boundaries(0) == [0, 4, 10]  # the last 2 voxels join the block before
    grid = BlockGrid(Roi((0,), (11,)), (4,), (1,), min_block_shape=(3,))
    assert grid.boundaries(0) == [0, 4, 8, 11]
    grid = BlockGrid(Roi((0,), (2,)), (4,), (1,), min_block_shape=(3,))
    assert grid.boundaries(0) == [0, 2]


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 13), st.integers(1, 13), st.integers(1, 13)),
    block=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
    offset=st.tuples(st.integers(-5, 5), st.integers(-5, 5), st.integers(-5, 5)),
    minimum=st.integers(1, 4),
)
def test_blocks_partition_the_output_roi(shape, block, offset, minimum):
    vs = Coordinate((3, 2, 1))
    roi = Roi(Coordinate(offset) * vs, Coordinate(shape) * vs)
    grid = BlockGrid(roi, block, vs, context_neg=vs * 2, min_block_shape=(minimum,) * 3)
    cover = np.zeros(shape, dtype=int)
    for b in grid:
        assert roi.contains(b.write_roi) and not b.write_roi.empty
        assert b.read_roi == b.write_roi.grow(vs * 2, vs * 2)
        lo = (b.write_roi.begin - roi.begin) / vs
        hi = (b.write_roi.end - roi.begin) / vs
        cover[tuple(slice(a, z) for a, z in zip(lo, hi))] += 1
        for d in range(3):
            extent = hi[d] - lo[d]
            last = b.index[d] == grid.shape[d] - 1
            if not last:
                assert extent == block[d]
            else:
                assert extent == shape[d] - (grid.shape[d] - 1) * block[d]
                # a short last block was merged into its neighbour unless it is the only one
                assert extent >= minimum or grid.shape[d] == 1 or extent > block[d]
                assert extent < block[d] + minimum
    assert (cover == 1).all()


def test_flat_and_grid_indices_round_trip():
    grid = BlockGrid(Roi((0, 0, 0), (5, 6, 7)), (2, 2, 2), (1, 1, 1))
    assert grid.shape == (3, 3, 4)
    for flat, index in enumerate(itertools.product(range(3), range(3), range(4))):
        assert grid.unravel(flat) == index
        assert grid.flat_index(index) == flat
    with pytest.raises(IndexError):
        grid.block(36)


def test_alignment_accepts_chunk_multiples_and_the_array_end():
    vs = Coordinate((40, 4, 4))
    ds_roi = Roi((400, 40, 40), Coordinate((10, 30, 30)) * vs)
    grid = BlockGrid(ds_roi, (4, 10, 20), vs)
    check_alignment(grid, ds_roi, (2, 10, 10))  # the last blocks end at the array's end
    # a sub-ROI starting on the chunk grid is fine too
    sub = Roi(ds_roi.begin + Coordinate((2, 10, 10)) * vs, Coordinate((4, 10, 10)) * vs)
    check_alignment(BlockGrid(sub, (2, 10, 10), vs), ds_roi, (2, 10, 10))


def test_alignment_refuses_blocks_that_split_chunks():
    vs = Coordinate((1, 1))
    ds_roi = Roi((0, 0), (20, 20))
    with pytest.raises(AlignmentError, match=r"chunks/shards of \(8, 8\).*\(8, 8\)"):
        check_alignment(BlockGrid(ds_roi, (4, 8), vs), ds_roi, (8, 8))
    # an ROI that starts off the chunk grid
    with pytest.raises(AlignmentError, match="boundary 2"):
        check_alignment(BlockGrid(Roi((2, 0), (16, 16)), (8, 8), vs), ds_roi, (8, 8))
    with pytest.raises(AlignmentError, match="outside"):
        check_alignment(BlockGrid(Roi((0, 0), (24, 8)), (8, 8), vs), ds_roi, (8, 8))


def test_layout_identifies_the_blocks():
    roi = Roi((0, 0), (16, 16))
    a = BlockGrid(roi, (8, 8), (1, 1), 1).layout()
    assert layout_hash(a) == layout_hash(BlockGrid(roi, (8, 8), (1, 1), 1).layout())
    assert layout_hash(a) != layout_hash(BlockGrid(roi, (4, 8), (1, 1), 1).layout())
    assert layout_hash(a) != layout_hash(BlockGrid(roi, (8, 8), (1, 1), 2).layout())
    assert layout_hash(a) != layout_hash(BlockGrid(Roi((0, 0), (16, 24)), (8, 8), (1, 1), 1).layout())


def test_layout_records_the_blocks_made_not_the_shape_asked_for():
    """Block shapes larger than the ROI along a dimension all make one block there: one layout."""
    roi = Roi((0, 0), (10, 30))
    a = BlockGrid(roi, (12, 8), (1, 1), 1)
    b = BlockGrid(roi, (40, 8), (1, 1), 1)
    assert a.effective_block_shape == b.effective_block_shape == Coordinate((10, 8))
    assert layout_hash(a.layout()) == layout_hash(b.layout())
    assert layout_hash(a.layout()) != layout_hash(BlockGrid(roi, (12, 10), (1, 1), 1).layout())
    # a merged short last block: the blocks, and so the layout, follow from the shape and the grid
    merged = BlockGrid(Roi((0,), (17,)), (8,), (1,), min_block_shape=(2,))
    assert merged.shape == (2,) and merged.block(1).write_roi.shape == Coordinate((9,))
    assert merged.layout()["block_shape"] == [8]
