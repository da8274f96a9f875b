"""Stage 3 of ``segment``: the global merge, up a reduction tree, never holding the whole graph.

Merging is thresholded on an exact, order-free score of each fragment pair (the mean affinity on
its whole contact, or its maximum for connected components): two fragments end in one segment
iff a path of pairs scoring above the threshold joins them. That partition is decomposable, so
it can be computed bottom-up and is exactly what one process with the whole graph computes:

- level 0, per block: union-find over the pairs inside the block;
- level ``L``, per super-block of ``2**L`` blocks per axis: union-find over the current roots of
  the pairs that cross between its children (only the blocks along its inner faces own such
  pairs), giving a map from the children's roots to new roots.

Each task writes only the roots it changed (one Parquet file per task). A fragment's segment is
its id mapped through the maps of its block's ancestors, level 0 to the top. Every threshold is
computed in the same pass (one root array per threshold), each a cut of one merge tree.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from ...segment.contacts import combine_statistics
from ...segment.merge import apply_map, merge_pairs
from ..grid import Block
from .layout import SegmentLayout
from .tables import read_table, write_table


class MergeMaps:
    """The merge maps of a finished set of levels, loaded on demand and kept for the task.

    ``roots(ids, t, level)``: the segment of each fragment id after the merges of levels
    ``0..level`` for threshold index ``t``.
    """

    def __init__(self, layout: SegmentLayout):
        self.layout = layout
        self._maps: dict[tuple[int, tuple[int, ...]], dict[int, tuple[np.ndarray, np.ndarray]]] = {}

    def map(self, level: int, index: tuple[int, ...], t: int) -> tuple[np.ndarray, np.ndarray]:
        key = (level, index)
        if key not in self._maps:
            table = read_table(self.layout.merges_path(level, index))
            by_threshold = {}
            for i in range(len(self.layout.thresholds)):
                sel = table["threshold"] == i
                by_threshold[i] = (table["id"][sel], table["root"][sel])
            self._maps[key] = by_threshold
        return self._maps[key][t]

    def roots(self, ids: np.ndarray, t: int, level: int) -> np.ndarray:
        ids = np.asarray(ids, np.uint64)
        roots = ids.copy()
        if level < 0 or len(ids) == 0:
            return roots
        blocks = self.layout.block_indices(ids)
        for lev in range(level + 1):
            ancestors = blocks >> lev
            unique, group = np.unique(ancestors, axis=0, return_inverse=True)
            group = group.ravel()
            for g, index in enumerate(unique):
                sel = group == g
                old, new = self.map(lev, tuple(int(i) for i in index), t)
                roots[sel] = apply_map(roots[sel], old, new)
        return roots

    @property
    def loaded(self) -> int:
        return len(self._maps)


def owners(layout: SegmentLayout, level: int, block: Block) -> list[tuple[int, ...]]:
    """The blocks that may own pairs crossing between the children of super-block ``block`` of
    ``level``: those on either side of its inner split planes (``[block]`` itself at level 0)."""
    if level == 0:
        return [block.index]
    size = 2**level
    half = size // 2
    shape = layout.grid_shape
    ranges = [range(i * size, min((i + 1) * size, n)) for i, n in zip(block.index, shape)]
    found: set[tuple[int, ...]] = set()
    for d, r in enumerate(ranges):
        plane = block.index[d] * size + half
        if plane >= shape[d]:
            continue  # no upper child along this axis
        sides = [range(plane - 1, plane + 1) if a == d else ranges[a] for a in range(len(shape))]
        found.update(itertools.product(*sides))
    return sorted(found)


def agglomerate_block(block: Block, layout: SegmentLayout, level: int, *, cancel=None) -> dict:
    """The merges of one (super-)block of ``level``: write the roots it changes, per threshold."""
    us, vs, sums, counts, maxima = [], [], [], [], []
    for index in owners(layout, level, block):
        path = layout.edges_path(index)
        table = read_table(path)
        sel = table["level"] == level
        us.append(table["u"][sel])
        vs.append(table["v"][sel])
        sums.append(table["sum"][sel])
        counts.append(table["count"][sel])
        maxima.append(table["max"][sel])
    pairs = np.stack([np.concatenate(us), np.concatenate(vs)], axis=1) if us else np.zeros((0, 2), np.uint64)
    pairs, total, count, best = combine_statistics(
        pairs, np.concatenate(sums) if sums else [], np.concatenate(counts) if counts else [],
        np.concatenate(maxima) if maxima else [],
    )
    score = total / np.maximum(count, 1) if layout.score == "mean" else best
    maps = MergeMaps(layout)
    columns: dict[str, list[np.ndarray]] = {"threshold": [], "id": [], "root": []}
    for t, threshold in enumerate(layout.thresholds):
        merged = pairs[score > threshold]
        a = maps.roots(merged[:, 0], t, level - 1)
        b = maps.roots(merged[:, 1], t, level - 1)
        ids, roots = merge_pairs(a, b)
        columns["threshold"].append(np.full(len(ids), t, np.uint8))
        columns["id"].append(ids)
        columns["root"].append(roots)
    write_table(
        layout.merges_path(level, block.index),
        {k: np.concatenate(v) if v else np.zeros(0) for k, v in columns.items()},
    )
    return {"pairs": len(pairs), "merges": sum(len(i) for i in columns["id"]), "maps_read": maps.loaded,
            "files_read": len(owners(layout, level, block)) if level else 1}


def merges_complete(layout: SegmentLayout) -> bool:
    """Whether the top level's map exists (every level below it was done before it ran)."""
    return os.path.exists(layout.merges_path(layout.top_level, (0,) * layout.voxel_size.dims))
