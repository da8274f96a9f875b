"""Seeded watershed by flooding, vectorised with numpy: a bucket queue over integer levels.

``scipy.ndimage.watershed_ift`` lets the last marker in raster order take over plateaus and even
cross walls (scipy issues #10069, #19575), so daskseg floods with this instead: voxels are
labelled in order of their level (lowest first) and, within a level, breadth-first from the
labelled voxels, so fronts meet halfway across plateaus, as in Meyer's flooding algorithm.
"""

from __future__ import annotations

import numpy as np

from .errors import SegmentError

_WALL = -1


def seeded_watershed(
    levels: np.ndarray, seeds: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Grow ``seeds`` (> 0, same shape) over ``levels`` (non-negative integers), face-connected.

    A voxel takes the label of the front that reaches it first, where a front enters a voxel at
    the larger of its own level and the level the front has reached. Voxels outside ``mask``, or
    not connected to any seed, stay 0. Returns int64 labels.
    """
    levels = np.asarray(levels)
    seeds = np.asarray(seeds)
    if levels.shape != seeds.shape or (mask is not None and np.shape(mask) != levels.shape):
        raise SegmentError(
            f"levels {levels.shape}, seeds {seeds.shape} and mask {np.shape(mask) if mask is not None else None} "
            "must have the same shape"
        )
    if not np.issubdtype(levels.dtype, np.integer) or (levels.size and levels.min() < 0):
        raise SegmentError(f"levels must be non-negative integers, got dtype {levels.dtype}")
    if np.any(seeds < 0):
        raise SegmentError("seeds must be non-negative (0 = not a seed)")

    shape = levels.shape
    # pad by one voxel of wall, so flat neighbours never wrap around an edge
    label = np.pad(seeds.astype(np.int64), 1, constant_values=_WALL)
    if mask is not None:
        label[tuple(slice(1, -1) for _ in shape)][~np.asarray(mask, bool)] = _WALL
    level = np.pad(levels.astype(np.int32 if levels.max(initial=0) < 2**31 else np.int64), 1).ravel()
    flat = label.ravel()
    index_dtype = np.int32 if flat.size < 2**31 else np.int64
    strides = np.cumprod((1,) + label.shape[:0:-1])[::-1]
    steps = np.concatenate([strides, -strides]).astype(index_dtype)
    n_levels = int(level.max()) + 1 if level.size else 1

    entry_dtype = np.uint8 if n_levels <= 256 else np.uint16 if n_levels <= 65536 else np.int64
    buckets: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n_levels)]
    # scratch for de-duplicating a wave without sorting: the first queued entry of a voxel wins
    slot = np.zeros(flat.size, index_dtype)

    def expand(idx: np.ndarray, lab: np.ndarray, current: int) -> None:
        """Queue the free face neighbours of the voxels ``idx`` (labelled ``lab``) by entry level."""
        nb = (idx[None, :] + steps[:, None]).ravel()
        nb_lab = np.broadcast_to(lab, (len(steps), len(lab))).ravel()
        free = flat[nb] == 0
        nb, nb_lab = nb[free], nb_lab[free]
        entry = np.maximum(level[nb], current)
        now = entry == current
        if now.all():
            if len(nb):
                buckets[current].append((nb, nb_lab))
            return
        if now.any():
            buckets[current].append((nb[now], nb_lab[now]))
        later = ~now
        entry, nb, nb_lab = entry[later], nb[later], nb_lab[later]
        order = np.argsort(entry.astype(entry_dtype), kind="stable")  # a radix sort for small ints
        entry, nb, nb_lab = entry[order], nb[order], nb_lab[order]
        bounds = np.flatnonzero(np.diff(entry)) + 1
        starts = [0, *bounds.tolist()]
        ends = [*bounds.tolist(), len(entry)]
        for a, b in zip(starts, ends):
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
