"""Stage 3 of ``segment``: the global merge, up a reduction tree, never holding the whole graph.

Hierarchical agglomeration (the default for watershed fragments) merges the best pair first and
re-averages contacts; ``hierarchical_block`` does it in pieces, exactly (see
``daskseg.segment.hierarchy``): each super-block merges the reciprocal-best pairs of regions whose
contacts it knows completely and hands the undecided regions and their contacts up the tree.

Thresholded merging (``thresholded_block``; connected components, or ``agglomeration='static'``) is on an exact, order-free score of each fragment pair (the mean affinity on
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

from ...errors import BlockwiseError
from ...segment.contacts import combine_statistics
from ...segment.hierarchy import merge_reciprocal_best
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
    for d in range(len(ranges)):
        plane = block.index[d] * size + half
        if plane >= shape[d]:
            continue  # no upper child along this axis
        sides = [range(plane - 1, plane + 1) if a == d else ranges[a] for a in range(len(shape))]
        found.update(itertools.product(*sides))
    return sorted(found)


def agglomerate_block(block: Block, layout: SegmentLayout, level: int, *, cancel=None) -> dict:
    """The merges of one (super-)block of ``level``: write the roots it changes, per threshold."""
    if layout.score == "hierarchical":
        return hierarchical_block(block, layout, level)
    return thresholded_block(block, layout, level)


def crossing_pairs(
    layout: SegmentLayout, level: int, block: Block, sources: list[tuple[int, ...]] | None = None
) -> tuple[np.ndarray, ...]:
    """The fragment pairs that meet at ``level`` inside super-block ``block``, with their summed
    contact statistics ``(pairs, sum, count, max)``, from the tables of the blocks owning them."""
    us, vs, sums, counts, maxima = [], [], [], [], []
    for index in sources if sources is not None else owners(layout, level, block):
        path = layout.edges_path(index)
        table = read_table(path)
        sel = table["level"] == level
        us.append(table["u"][sel])
        vs.append(table["v"][sel])
        sums.append(table["sum"][sel])
        counts.append(table["count"][sel])
        maxima.append(table["max"][sel])
    if not us:  # a super-block with one child along every axis: nothing crosses
        return np.zeros((0, 2), np.uint64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
    pairs = np.stack([np.concatenate(us), np.concatenate(vs)], axis=1)
    return combine_statistics(pairs, np.concatenate(sums), np.concatenate(counts), np.concatenate(maxima))


def thresholded_block(block: Block, layout: SegmentLayout, level: int) -> dict:
    """Union-find over the pairs meeting at ``level`` whose fixed score exceeds each threshold."""
    sources = owners(layout, level, block)
    pairs, total, count, best = crossing_pairs(layout, level, block, sources)
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
    write_maps(layout, level, block, columns)
    return {"pairs": len(pairs), "merges": sum(len(i) for i in columns["id"]), "maps_read": maps.loaded,
            "files_read": len(sources)}


def write_maps(layout: SegmentLayout, level: int, block: Block, columns: dict[str, list[np.ndarray]]) -> None:
    write_table(layout.merges_path(level, block.index), {k: np.concatenate(v) for k, v in columns.items()})


def children(layout: SegmentLayout, level: int, block: Block) -> list[tuple[int, ...]]:
    """The super-blocks of ``level - 1`` inside super-block ``block`` of ``level``."""
    shape = layout.level_grid(level - 1).shape
    ranges = [range(2 * i, min(2 * i + 2, n)) for i, n in zip(block.index, shape)]
    return list(itertools.product(*ranges))


def hierarchical_block(block: Block, layout: SegmentLayout, level: int) -> dict:
    """Reciprocal-best merging (``daskseg.segment.hierarchy``) of the regions of super-block
    ``block``: its children's undecided regions and contacts, plus the contacts crossing between
    the children; writes the merges as root maps per threshold and what is still undecided."""
    low = int(np.argmin(layout.thresholds))
    if level == 0:
        nodes = read_table(layout.nodes_path(block.index))
        ids, open_levels = nodes["id"], nodes["level"]
        pairs, sums, counts, _ = crossing_pairs(layout, 0, block)
    else:
        parts = [(read_table(layout.residual_path(level - 1, c, "nodes")),
                  read_table(layout.residual_path(level - 1, c, "edges"))) for c in children(layout, level, block)]
        ids = np.concatenate([n["id"] for n, _ in parts]).astype(np.uint64)
        open_levels = np.concatenate([n["open_level"] for n, _ in parts])
        cross, cross_sums, cross_counts, _ = crossing_pairs(layout, level, block)
        maps = MergeMaps(layout)
        a, b = maps.roots(cross[:, 0], low, level - 1), maps.roots(cross[:, 1], low, level - 1)
        unknown = np.setdiff1d(np.concatenate([a, b]), ids)
        if len(unknown):
            raise BlockwiseError(f"super-block {block.index} of level {level}: regions {unknown[:5].tolist()} cross "
                                 f"between its children but none of them left them undecided (a bug)")
        pairs = np.concatenate([np.concatenate([e["a"] for _, e in parts]), np.minimum(a, b)])
        pairs = np.stack([pairs, np.concatenate([np.concatenate([e["b"] for _, e in parts]), np.maximum(a, b)])], 1)
        pairs, sums, counts, _ = combine_statistics(
            pairs, np.concatenate([*(e["sum"] for _, e in parts), cross_sums]),
            np.concatenate([*(e["count"] for _, e in parts), cross_counts]), np.zeros(len(pairs)))
    merges, residual = merge_reciprocal_best(ids, open_levels, pairs, sums, counts, level, layout.thresholds[low])
    columns: dict[str, list[np.ndarray]] = {"threshold": [], "id": [], "root": []}
    for t, threshold in enumerate(layout.thresholds):
        sel = merges["score"] > threshold
        changed, roots = merge_pairs(merges["a"][sel], merges["b"][sel])
        columns["threshold"].append(np.full(len(changed), t, np.uint8))
        columns["id"].append(changed)
        columns["root"].append(roots)
    write_maps(layout, level, block, columns)
    write_table(layout.residual_path(level, block.index, "nodes"),
                {"id": residual["ids"], "open_level": residual["open_levels"]})
    edges = residual["edges"]
    write_table(layout.residual_path(level, block.index, "edges"),
                {"a": edges[:, 0], "b": edges[:, 1], "sum": residual["sums"], "count": residual["counts"]})
    return {"pairs": len(pairs), "regions": len(ids), "merges": len(merges["a"]), "undecided": len(residual["ids"])}


def merges_complete(layout: SegmentLayout) -> bool:
    """Whether the top level's map exists (every level below it was done before it ran)."""
    return os.path.exists(layout.merges_path(layout.top_level, (0,) * layout.voxel_size.dims))
