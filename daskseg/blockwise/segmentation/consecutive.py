"""Consecutive segment ids (``segment(consecutive=True)``), blockwise, without a global table.

A segment's id after the reduction tree is its root, the smallest fragment id in it, and a
fragment id names its block in its high bits: so each root belongs to exactly one block. Two small
stages before ``relabel`` number the roots 1..n in the order of their ids:

1. ``roots`` (per block): the block's fragments whose root is themselves, sorted, written as the
   block's table of roots (its count is the table's row count);
2. ``offsets`` (one task): the number of roots before each block (a prefix sum over the blocks'
   counts, 8 bytes per block) in an ``.npy`` file that relabel tasks memory-map.

``relabel`` then gives root ``r`` of block ``b`` the id ``offsets[b] + rank of r among b's roots + 1``:
exactly the rank of ``r`` among all roots, so the result is the segmentation with its ids replaced
by 1..n in increasing order of the non-consecutive ids (0 stays 0).
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from ..grid import Block
from .agglomerate import MergeMaps
from .layout import SegmentLayout
from .tables import read_table, write_table


def roots_path(layout: SegmentLayout, t: int, index: tuple[int, ...] | list[int]) -> str:
    return os.path.join(layout.merges_dir, f"roots-{t}", "-".join(str(i) for i in index) + ".parquet")


def offsets_path(layout: SegmentLayout, t: int) -> str:
    return os.path.join(layout.merges_dir, f"offsets-{t}", "offsets.npy")


def roots_block(block: Block, layout: SegmentLayout, t: int, *, cancel=None) -> dict:
    """Write the sorted roots of threshold index ``t`` that lie in ``block``."""
    ids = np.sort(read_table(layout.nodes_path(block.index), ["id"])["id"].astype(np.uint64))
    roots = MergeMaps(layout).roots(ids, t, layout.top_level)
    owned = ids[roots == ids]
    write_table(roots_path(layout, t, block.index), {"id": owned})
    return {"segments": len(owned)}


def offsets_block(block: Block, layout: SegmentLayout, t: int, *, cancel=None) -> dict:
    """Write the number of roots before each block (flat order), from the blocks' root tables."""
    import pyarrow.parquet as pq

    grid = layout.grid()
    counts = np.array([pq.read_metadata(roots_path(layout, t, grid.block(i).index)).num_rows
                       for i in range(len(grid))], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    path = offsets_path(layout, t)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp.npy"
    np.save(tmp, offsets)
    os.replace(tmp, path)
    return {"segments": int(counts.sum())}


def consecutive_ids(roots: np.ndarray, layout: SegmentLayout, t: int) -> np.ndarray:
    """The consecutive id (1..n) of each root in ``roots`` (unique, non-zero)."""
    offsets = np.load(offsets_path(layout, t), mmap_mode="r")
    owners = layout.block_indices(roots)
    flat = np.ravel_multi_index(tuple(owners.T), layout.grid_shape)
    out = np.zeros(len(roots), np.uint64)
    for b in np.unique(flat):
        sel = flat == b
        index = tuple(int(i) for i in np.unravel_index(int(b), layout.grid_shape))
        table = read_table(roots_path(layout, t, index))["id"]
        out[sel] = np.uint64(offsets[b]) + np.searchsorted(table, roots[sel]).astype(np.uint64) + np.uint64(1)
    return out
