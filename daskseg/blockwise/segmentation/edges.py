"""Stage 2 of ``segment``: the region adjacency graph, each edge owned by exactly one block.

A block owns the affinity edges stored at its voxels (channel ``c`` at ``p`` links ``p`` and
``p + offset_c``), so it reads its fragments grown by the largest offset and its own affinities.
Per fragment pair it writes the mergeable statistics of its part of the contact (sum, count,
max) and the level of the reduction tree where the two fragments' blocks meet; per fragment of
its own, the size in voxels. Only the channels of ``layout.channels`` count (the nearest-neighbour
ones of a long-range neighbourhood). After mutex watershed fragments (``cross_only``), a block
writes only the contacts between fragments of different blocks: inside a block the mutex
watershed, which saw every channel, has already decided.
"""

from __future__ import annotations

import itertools

import numpy as np

from ...io import Dataset
from ...segment.contacts import owned_contacts
from ..grid import Block
from .affinities import read_affinities
from .layout import SegmentLayout
from .tables import write_table


def edges_block(
    block: Block,
    layout: SegmentLayout,
    affs: Dataset,
    scale: float,
    fragments: Dataset,
    cross_only: bool = False,
    *,
    cancel=None,
) -> dict:
    """Write the edge and node tables of one block (``cross_only``: only contacts between
    fragments of different blocks)."""
    vs = layout.voxel_size
    reach = layout.max_offset() * vs
    region = block.write_roi.grow(reach, reach).intersect(fragments.roi)
    labels = fragments.read(region)
    data = read_affinities(affs, block.write_roi, scale, layout.channels)
    pairs, sums, counts, maxima = owned_contacts(
        labels, data, (block.write_roi.begin - region.begin) / vs, layout.neighborhood
    )
    levels = layout.merge_level(layout.block_indices(pairs[:, 0]), layout.block_indices(pairs[:, 1]))
    if cross_only:
        keep = levels > 0
        pairs, sums, counts, maxima, levels = pairs[keep], sums[keep], counts[keep], maxima[keep], levels[keep]
    write_table(
        layout.edges_path(block.index),
        {"u": pairs[:, 0], "v": pairs[:, 1], "sum": sums, "count": counts, "max": maxima,
         "level": levels.astype(np.uint8)},
    )
    own = (block.write_roi.begin - region.begin) / vs
    inside = labels[tuple(slice(b, b + s) for b, s in zip(own, block.write_roi.shape / vs))]
    ids, sizes = np.unique(inside[inside != 0], return_counts=True)
    write_table(layout.nodes_path(block.index), {"id": ids.astype(np.uint64), "size": sizes.astype(np.int64),
                                                 "level": open_levels(layout, block, inside, ids)})
    return {"edges": len(pairs)}


def open_levels(layout: SegmentLayout, block: Block, inside: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per fragment ``ids`` of the block, the highest reduction-tree level at which it may gain a
    contact: that of the farthest neighbour block whose reach (the neighbourhood's largest offset
    from the face between them) it lies in; 0 for fragments no edge can leave the block from."""
    reach = layout.max_offset()
    shape = layout.grid_shape
    level = np.zeros(len(ids), np.int64)
    for delta in itertools.product((-1, 0, 1), repeat=len(shape)):
        neighbour = tuple(i + d for i, d in zip(block.index, delta))
        if not any(delta) or any(not 0 <= n < s for n, s in zip(neighbour, shape)):
            continue
        slab = tuple(slice(0, r) if d < 0 else slice(max(0, n - r), n) if d > 0 else slice(None)
                     for d, r, n in zip(delta, reach, inside.shape))
        near = np.unique(inside[slab])
        meet = int(layout.merge_level(np.array([block.index]), np.array([neighbour]))[0])
        hit = np.isin(ids, near)
        level[hit] = np.maximum(level[hit], meet)
    return level
