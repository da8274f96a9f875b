"""The voxel graph behind affinities: which voxel pairs an affinity channel links, and their values.

Affinities follow gunpowder's ``AddAffinities`` convention: channel ``c`` with offset ``o`` stores at
voxel ``p`` the affinity between ``p`` and ``p + o`` (``NEAREST_NEIGHBORHOOD`` links each voxel to
its predecessor along z, y and x). Edges that leave the volume are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import SegmentError

NEAREST_NEIGHBORHOOD: tuple[tuple[int, int, int], ...] = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))


def check_affinities(affs: np.ndarray, neighborhood: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Validate ``affs`` (channels, *spatial) against ``neighborhood``; return the offsets as tuples."""
    affs = np.asarray(affs)
    offsets = tuple(tuple(int(o) for o in off) for off in neighborhood)
    dims = affs.ndim - 1
    if dims < 1 or affs.shape[0] != len(offsets):
        raise SegmentError(
            f"affinities of shape {affs.shape} do not fit a neighbourhood of {len(offsets)} offsets: "
            f"expected (channels={len(offsets)}, *spatial)"
        )
    if any(len(off) != dims for off in offsets):
        raise SegmentError(f"neighbourhood {offsets} does not match the {dims} spatial dimensions of {affs.shape}")
    if any(all(o == 0 for o in off) for off in offsets):
        raise SegmentError(f"neighbourhood {offsets} contains a zero offset")
    if not np.issubdtype(affs.dtype, np.number) or np.issubdtype(affs.dtype, np.complexfloating):
        raise SegmentError(f"affinities must be real numbers, got dtype {affs.dtype}")
    return offsets


def edge_slices(shape: Sequence[int], offset: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices ``(src, dst)`` such that ``array[src]`` and ``array[dst]`` are the two ends of every
    in-volume edge with this offset (``dst = src + offset``)."""
    src = tuple(slice(max(0, -o), s - max(0, o)) for s, o in zip(shape, offset))
    dst = tuple(slice(max(0, o), s - max(0, -o)) for s, o in zip(shape, offset))
    return src, dst


def iter_edges(
    affs: np.ndarray, offsets: Sequence[Sequence[int]]
) -> Iterator[tuple[tuple[slice, ...], tuple[slice, ...], np.ndarray]]:
    """``(src, dst, values)`` per channel: the in-volume edges and their affinities."""
    shape = affs.shape[1:]
    for c, offset in enumerate(offsets):
        src, dst = edge_slices(shape, offset)
        yield src, dst, affs[c][src]


def nearest_channels(offsets: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Indices of the nearest-neighbour offsets (one step along one axis) of a neighbourhood."""
    return tuple(c for c, off in enumerate(offsets) if sum(abs(int(o)) for o in off) == 1)


def edge_channels(offsets: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
    """The channels that describe contacts between fragments: the nearest-neighbour ones when a
    neighbourhood also holds long-range offsets, ``None`` (all) when it holds nothing else or
    no nearest-neighbour offset at all."""
    nearest = nearest_channels(offsets)
    return nearest if nearest and len(nearest) < len(offsets) else None
