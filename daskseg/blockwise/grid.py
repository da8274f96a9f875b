"""The block grid of a blockwise run: write ROIs that tile the output, read ROIs grown by context.

Blocks tile the output ROI from its begin in steps of the block shape. Each block writes exactly its
``write_roi`` and reads ``read_roi = write_roi.grow(context_neg, context_pos)`` from the input. The
last block of a dimension ends at the output ROI's end (it may be shorter than the others); a last
block shorter than ``min_block_shape`` is merged into its neighbour, so every block can hold at least
one network output.

For safe parallel writes every block must cover whole chunks (or shards) of the output array: two
tasks writing disjoint parts of one chunk lose data. ``check_alignment`` refuses a grid that does not.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import AlignmentError, GeometryError
from ..geometry import Coordinate, Roi


@dataclass(frozen=True)
class Block:
    """One block of a ``BlockGrid``: its grid index, the ROI it writes and the ROI it reads."""

    index: tuple[int, ...]
    write_roi: Roi
    read_roi: Roi

    def key(self, prefix: str = "predict-block", token: str | None = None) -> str:
        """The Dask task key, ``predict-block-<z>-<y>-<x>`` (plus ``-<token>`` to tell runs apart)."""
        key = "-".join([prefix, *(str(i) for i in self.index)])
        return key if token is None else f"{key}-{token}"


def _dim_bounds(begin: int, end: int, step: int, min_size: int) -> list[int]:
    """Block boundaries ``[b0 = begin, b1, ..., bn = end]`` of one dimension."""
    length = end - begin
    n = max(1, -(-length // step))
    last = length - (n - 1) * step
    if n > 1 and last < min_size:
        n -= 1
    return [begin + i * step for i in range(n)] + [end]


class BlockGrid:
    """Blocks tiling ``output_roi`` in steps of ``block_shape``, reading with context.

    Args:
        output_roi (Roi): the ROI to write, in world units (aligned with ``voxel_size``).
        block_shape (Coordinate): the shape of a block in voxels.
        voxel_size (Coordinate): the voxel size of the output (and input) in world units.
        context_neg (Coordinate): world units each block reads before its write ROI.
        context_pos (Coordinate): world units each block reads after its write ROI (default:
            ``context_neg``).
        min_block_shape (Coordinate, optional): the smallest block in voxels that the processor can
            handle; a shorter last block of a dimension is merged into the one before it.

    Blocks are enumerated in C order of their grid index (the last dimension fastest); ``len(grid)``
    is their number and ``grid.block(i)`` the ``i``-th, computed on demand, so a grid of a million
    blocks costs no memory.
    """

    def __init__(
        self,
        output_roi: Roi,
        block_shape: Sequence[int],
        voxel_size: Sequence[int],
        context_neg: Sequence[int] | int = 0,
        context_pos: Sequence[int] | int | None = None,
        min_block_shape: Sequence[int] | None = None,
    ):
        self.voxel_size = Coordinate(voxel_size)
        dims = self.voxel_size.dims
        if output_roi.dims != dims or output_roi.unbounded:
            raise GeometryError(
                f"output ROI {output_roi} must be bounded and {dims}D like voxel size {self.voxel_size}"
            )
        if not output_roi.is_aligned(self.voxel_size):
            raise GeometryError(f"output ROI {output_roi} is not aligned with voxel size {self.voxel_size}")
        if output_roi.empty:
            raise GeometryError(f"output ROI {output_roi} is empty: there is nothing to write")
        self.output_roi = output_roi
        self.block_shape = Coordinate(block_shape)
        if self.block_shape.dims != dims or any(b < 1 for b in self.block_shape):
            raise GeometryError(f"block shape {self.block_shape} must have {dims} positive entries (voxels)")
        zero = Coordinate((0,) * dims)
        self.context_neg = zero + context_neg
        self.context_pos = self.context_neg if context_pos is None else zero + context_pos
        for c in (self.context_neg, self.context_pos):
            if not c.is_multiple_of(self.voxel_size) or any(v < 0 for v in c):
                raise GeometryError(f"context {c} must be non-negative multiples of voxel size {self.voxel_size}")
        self.min_block_shape = Coordinate(min_block_shape) if min_block_shape is not None else Coordinate((1,) * dims)
        step = self.block_shape * self.voxel_size
        min_size = self.min_block_shape * self.voxel_size
        self._bounds = [
            _dim_bounds(b, e, s, m)
            for b, e, s, m in zip(output_roi.begin, output_roi.end, step, min_size)
        ]
        self.shape = tuple(len(bs) - 1 for bs in self._bounds)

    # --- enumeration ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return math.prod(self.shape)

    @property
    def num_blocks(self) -> int:
        return len(self)

    def flat_index(self, index: Sequence[int]) -> int:
        flat = 0
        for i, n in zip(index, self.shape):
            if not 0 <= i < n:
                raise IndexError(f"block index {tuple(index)} outside grid of shape {self.shape}")
            flat = flat * n + i
        return flat

    def unravel(self, flat: int) -> tuple[int, ...]:
        if not 0 <= flat < len(self):
            raise IndexError(f"block {flat} outside grid of {len(self)} blocks")
        index = []
        for n in reversed(self.shape):
            flat, i = divmod(flat, n)
            index.append(i)
        return tuple(reversed(index))

    def block(self, index: int | Sequence[int]) -> Block:
        """The block with flat index ``index`` (an int) or grid index ``index`` (a tuple)."""
        idx = self.unravel(index) if isinstance(index, int) else tuple(int(i) for i in index)
        self.flat_index(idx)
        begin = [bs[i] for bs, i in zip(self._bounds, idx)]
        end = [bs[i + 1] for bs, i in zip(self._bounds, idx)]
        write_roi = Roi(begin, Coordinate(end) - Coordinate(begin))
        return Block(idx, write_roi, write_roi.grow(self.context_neg, self.context_pos))

    def __iter__(self) -> Iterator[Block]:
        for i in range(len(self)):
            yield self.block(i)

    @property
    def read_roi(self) -> Roi:
        """The input ROI all blocks together read."""
        return self.output_roi.grow(self.context_neg, self.context_pos)

    def boundaries(self, dim: int) -> list[int]:
        """World coordinates of the block boundaries along ``dim`` (begin, ..., end)."""
        return list(self._bounds[dim])

    # --- identity ------------------------------------------------------------------------------
    def layout(self) -> dict:
        """A JSON-able description of the blocks the grid makes: equal blocks, equal layouts.

        It holds what decides the blocks, not how they were asked for: a block shape larger than the
        output ROI along a dimension gives one block the ROI's extent there, whatever its size, so
        the effective block shape (``block_shape``) is recorded; ``min_block_shape`` only decides
        whether a short last block is merged, which ``grid_shape`` already says.
        """
        return {
            "output_roi": {"offset": list(self.output_roi.offset), "shape": list(self.output_roi.shape)},
            "voxel_size": list(self.voxel_size),
            "block_shape": list(self.effective_block_shape),
            "context_neg": list(self.context_neg),
            "context_pos": list(self.context_pos),
            "grid_shape": list(self.shape),
        }

    @property
    def effective_block_shape(self) -> Coordinate:
        """The block shape (voxels) the blocks actually have: ``block_shape``, but the output ROI's
        extent along dimensions with one block."""
        extent = self.output_roi.shape / self.voxel_size
        return Coordinate(b if n > 1 else e for b, n, e in zip(self.block_shape, self.shape, extent))

    def __repr__(self) -> str:
        return (
            f"BlockGrid({len(self)} blocks {self.shape} of {tuple(self.block_shape)} voxels over {self.output_roi}, "
            f"context -{tuple(self.context_neg)}/+{tuple(self.context_pos)})"
        )


def layout_hash(layout: dict) -> str:
    """A stable hash of a JSON-able layout description."""
    return hashlib.sha256(json.dumps(layout, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_alignment(grid: BlockGrid, dataset_roi: Roi, write_unit: Sequence[int], what: str = "output") -> None:
    """Refuse a grid whose blocks do not cover whole write units (chunks or shards) of a dataset.

    Every block boundary must lie on the write-unit grid of the dataset (which starts at the
    dataset's begin) or at the dataset's end.

    Args:
        grid: the block grid.
        dataset_roi: the ROI of the output dataset, in world units.
        write_unit: the chunk (or shard) shape of the output dataset in voxels (spatial dims only).
        what: how to name the dataset in the error.

    Raises:
        AlignmentError: naming the first misaligned boundary, the chunk shape and a block shape
            that would work.
    """
    unit = Coordinate(write_unit)
    unit_world = unit * grid.voxel_size
    if not dataset_roi.contains(grid.output_roi):
        raise AlignmentError(f"output ROI {grid.output_roi} lies outside the {what} dataset's ROI {dataset_roi}")
    for d in range(grid.voxel_size.dims):
        for b in grid.boundaries(d):
            if b != dataset_roi.end[d] and (b - dataset_roi.begin[d]) % unit_world[d]:
                good = Coordinate(math.lcm(int(s), int(u)) for s, u in zip(grid.block_shape, unit))
                raise AlignmentError(
                    f"block boundary {b} (world units) in dimension {d} does not lie on the chunk grid of the {what} "
                    f"dataset (chunks/shards of {tuple(unit)} voxels = {tuple(unit_world)} world units, starting at "
                    f"{tuple(dataset_roi.begin)}): blocks of {tuple(grid.block_shape)} voxels over {grid.output_roi} "
                    f"would make two tasks write parts of one chunk and lose data. Use a block shape that is a "
                    f"multiple of the chunk shape (e.g. {tuple(good)}) and an ROI that starts on the chunk grid."
                )
