"""Seeded watershed on an edge-weighted voxel grid, vectorised with numpy over a bucket queue.

``scipy.ndimage.watershed_ift`` lets the last marker in raster order take over plateaus and even
cross walls (scipy issues #10069, #19575), so daskseg floods with this instead. Levels sit on the
edges between face neighbours, which is where affinities live: a front crosses an edge at the
larger of the edge's level and the level already flooded, lowest first, and within a level
breadth-first, so fronts meet halfway across plateaus (Meyer's flooding on a graph).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SegmentError

_WALL = -1


def seeded_watershed(
    seeds: np.ndarray,
    edge_levels: Sequence[np.ndarray | None],
    max_level: int | None = None,
) -> np.ndarray:
    """Grow ``seeds`` (> 0; 0 = unlabelled) along face edges in order of their levels.

    Args:
        seeds: integer array; every voxel > 0 starts labelled and keeps its label.
        edge_levels: one array per axis, shaped like ``seeds``: entry ``p`` is the (non-negative
            integer) level of the edge from ``p`` to its successor along that axis; the last slice
            is unused. ``None`` for an axis means no growth along it (e.g. z, for 2D fragments).
        max_level: edges above this level are never crossed (voxels behind them stay 0).

    Returns int64 labels; voxels no seed can reach stay 0.
    """
    seeds = np.asarray(seeds)
    shape = seeds.shape
    if len(edge_levels) != len(shape):
        raise SegmentError(f"need one edge-level array (or None) per axis of {shape}, got {len(edge_levels)}")
    for axis, lv in enumerate(edge_levels):
        if lv is None:
            continue
        if np.shape(lv) != shape:
            raise SegmentError(f"edge levels for axis {axis} have shape {np.shape(lv)}, seeds have {shape}")
        if not np.issubdtype(np.asarray(lv).dtype, np.integer) or (np.size(lv) and np.min(lv) < 0):
            raise SegmentError(f"edge levels for axis {axis} must be non-negative integers")
    if not np.issubdtype(seeds.dtype, np.integer) or (seeds.size and seeds.min() < 0):
        raise SegmentError(f"seeds must be non-negative integers, got dtype {seeds.dtype}")

    # pad by one voxel of wall, so flat neighbours never wrap around an edge of the volume
    label = np.pad(seeds.astype(np.int64), 1, constant_values=_WALL)
    flat = label.ravel()
    index_dtype = np.int32 if flat.size < 2**31 else np.int64
    strides = np.cumprod((1,) + label.shape[:0:-1])[::-1].astype(index_dtype)
    axes = [a for a, lv in enumerate(edge_levels) if lv is not None]
    top = max([int(np.max(lv, initial=0)) for lv in edge_levels if lv is not None], default=0)
    n_levels = top + 1 if max_level is None else min(top, int(max_level)) + 1
    level_dtype = np.int32 if top < 2**31 else np.int64
    # per axis, the padded flat level of the edge from p to p + stride (walls beyond any level)
    edge_flat = {}
    for a in axes:
        padded = np.full(label.shape, np.iinfo(level_dtype).max, level_dtype)
        padded[tuple(slice(1, -1) for _ in shape)] = edge_levels[a]
        last = [slice(None)] * len(shape)
        last[a] = slice(-2, None)
        padded[tuple(last)] = np.iinfo(level_dtype).max
        edge_flat[a] = padded.ravel()

    buckets: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n_levels)]
    # scratch for de-duplicating a wave without sorting: the first queued entry of a voxel wins
    slot = np.zeros(flat.size, index_dtype)

    def expand(idx: np.ndarray, lab: np.ndarray, current: int) -> None:
        """Queue the free face neighbours of the voxels ``idx`` (labelled ``lab``) by entry level."""
        nbs, labs, entries = [], [], []
        for a in axes:
            s = strides[a]
            for nb, edge in ((idx + s, idx), (idx - s, idx - s)):
                free = flat[nb] == 0
                nbs.append(nb[free])
                labs.append(lab[free])
                entries.append(edge_flat[a][edge[free]])
        nb, nb_lab, entry = np.concatenate(nbs), np.concatenate(labs), np.concatenate(entries)
        keep = entry < n_levels
        nb, nb_lab, entry = nb[keep], nb_lab[keep], np.maximum(entry[keep], current)
        now = entry == current
        if now.any():
            buckets[current].append((nb[now], nb_lab[now]))
        if now.all():
            return
        later = ~now
        entry, nb, nb_lab = entry[later], nb[later], nb_lab[later]
        # stable, and a radix sort when the levels fit 16 bits
        order = np.argsort(entry.astype(np.uint16) if n_levels <= 2**16 else entry, kind="stable")
        entry, nb, nb_lab = entry[order], nb[order], nb_lab[order]
        bounds = np.flatnonzero(np.diff(entry)) + 1
        for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(entry)]):
            buckets[int(entry[a])].append((nb[a:b], nb_lab[a:b]))

    seed_idx = np.flatnonzero(flat > 0).astype(index_dtype)
    expand(seed_idx, flat[seed_idx], 0)
    for current in range(n_levels):
        bucket = buckets[current]
        while bucket:
            # one breadth-first wave over the free voxels queued at this level
            idx = np.concatenate([b[0] for b in bucket])
            lab = np.concatenate([b[1] for b in bucket])
            bucket.clear()
            free = flat[idx] == 0
            idx, lab = idx[free], lab[free]
            positions = np.arange(len(idx), dtype=index_dtype)
            slot[idx[::-1]] = positions[::-1]  # written last, so kept: each voxel's first entry
            unique = slot[idx] == positions
            idx, lab = idx[unique], lab[unique]
            flat[idx] = lab
            expand(idx, lab, current)
    label[label == _WALL] = 0
    return label[tuple(slice(1, -1) for _ in shape)]
