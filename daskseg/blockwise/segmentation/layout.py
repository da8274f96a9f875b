"""The shared description of one ``segment`` job: the base block grid, how fragment ids encode
their block, where each stage's tables live, and the reduction tree over the blocks.

Fragment ids are unique across the volume by construction: ``id = flat_block_index << bits |
local_id`` (local ids 1..2**bits - 1), so no serial pass renumbers them and any task can tell from
an id which block it belongs to. The agglomeration's reduction tree is an octree over the block
grid: the super-block of level ``L`` holds the ``2**L`` blocks per axis below it, so two blocks
first share a super-block at level ``max_d bit_length(i_d XOR j_d)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import BlockwiseError
from ...geometry import Coordinate, Roi
from ..grid import BlockGrid


@dataclass(frozen=True)
class SegmentLayout:
    """What every stage of a ``segment`` job shares (small and picklable: it travels with tasks).

    Args:
        output_roi (Roi): the ROI segmented, in world units.
        voxel_size (Coordinate): the voxel size.
        block_shape (Coordinate): voxels per block.
        graph_dir (str): the directory of the region graph and merge maps (absolute).
        neighborhood (tuple): the affinity offsets of the channels that score fragment contacts.
        thresholds (tuple[float, ...]): the merge thresholds, one output each.
        score (str): ``'hierarchical'`` (mean affinity on the contact, re-averaged as regions
            merge, best first), ``'mean'`` (the fragments' mean affinity, thresholded once) or
            ``'max'`` (the largest affinity: connected components).
        channels (tuple[int, ...], optional): the affinity channels of ``neighborhood`` (the
            nearest-neighbour ones of a long-range neighbourhood); ``None``: all of them.
    """

    output_roi: Roi
    voxel_size: Coordinate
    block_shape: Coordinate
    graph_dir: str
    neighborhood: tuple[tuple[int, ...], ...]
    thresholds: tuple[float, ...]
    score: str
    channels: tuple[int, ...] | None = None

    # --- grids ---------------------------------------------------------------------------------
    def grid(self, context: Sequence[int] | int = 0) -> BlockGrid:
        """The base block grid (``context`` in world units)."""
        return BlockGrid(self.output_roi, self.block_shape, self.voxel_size, context)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.grid().shape

    @property
    def top_level(self) -> int:
        """The level of the reduction tree whose one super-block holds every block."""
        return max(max(int(n) - 1, 0).bit_length() for n in self.grid_shape)

    def level_grid(self, level: int) -> BlockGrid:
        """The super-blocks of ``level`` (level 0: the blocks themselves)."""
        return BlockGrid(self.output_roi, self.block_shape * (2**level), self.voxel_size)

    # --- fragment ids --------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Bits of the local part of a fragment id: room for one fragment per voxel of a block."""
        return max(1, math.prod(self.block_shape).bit_length())

    def check_ids(self) -> None:
        blocks = math.prod(self.grid_shape)
        if (blocks - 1).bit_length() + self.bits > 64:
            raise BlockwiseError(
                f"{blocks} blocks of {tuple(self.block_shape)} voxels need more than 64 bits of fragment id "
                f"({self.bits} bits per block); use larger blocks"
            )

    def first_id(self, flat: int) -> int:
        """The id offset of block ``flat``: its fragments are ``first_id + 1, first_id + 2, ...``."""
        return int(flat) << self.bits

    def block_indices(self, ids: np.ndarray) -> np.ndarray:
        """``(n, dims)`` grid indices of the blocks the fragment ``ids`` belong to."""
        flat = (np.asarray(ids, np.uint64) >> np.uint64(self.bits)).astype(np.int64)
        return np.stack(np.unravel_index(flat, self.grid_shape), axis=1)

    @staticmethod
    def merge_level(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per row, the reduction-tree level at which blocks ``a`` and ``b`` (grid indices) meet."""
        x = np.bitwise_xor(np.asarray(a, np.int64), np.asarray(b, np.int64))
        levels = np.zeros(x.shape[0], np.int64)
        bit = 0
        while np.any(x):
            bit += 1
            levels[np.any(x != 0, axis=1)] = bit
            x = x >> 1
        return levels

    # --- files ---------------------------------------------------------------------------------
    def edges_path(self, index: Sequence[int]) -> str:
        return os.path.join(self.graph_dir, "edges", "-".join(str(i) for i in index) + ".parquet")

    def nodes_path(self, index: Sequence[int]) -> str:
        return os.path.join(self.graph_dir, "nodes", "-".join(str(i) for i in index) + ".parquet")

    @property
    def merges_dir(self) -> str:
        """The merge maps of these thresholds and score (another set of thresholds gets its own)."""
        name = f"{self.score}-" + "-".join(f"{t:g}" for t in self.thresholds)
        return os.path.join(self.graph_dir, "merges", name)

    def merges_path(self, level: int, index: Sequence[int]) -> str:
        return os.path.join(self.merges_dir, f"level-{level}", "-".join(str(i) for i in index) + ".parquet")

    def residual_path(self, level: int, index: Sequence[int], part: str) -> str:
        """The regions (``part='nodes'``) or contacts (``'edges'``) a super-block left undecided."""
        name = "-".join(str(i) for i in index) + f"-{part}.parquet"
        return os.path.join(self.merges_dir, f"residual-{level}", name)

    def max_offset(self) -> Coordinate:
        """The largest absolute offset per axis of the neighbourhood (voxels)."""
        return Coordinate(max(abs(o[d]) for o in self.neighborhood) for d in range(self.voxel_size.dims))

    def describe(self) -> dict:
        return {
            "output_roi": [list(self.output_roi.offset), list(self.output_roi.shape)],
            "voxel_size": list(self.voxel_size),
            "block_shape": list(self.block_shape),
            "neighborhood": [list(o) for o in self.neighborhood],
            **({"channels": list(self.channels)} if self.channels is not None else {}),
        }
