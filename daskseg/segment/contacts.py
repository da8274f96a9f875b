"""Contacts between fragments: the affinity edges joining two fragments, summed per fragment pair.

The statistics are *mergeable*: the sum, count and maximum of the affinities on a pair's contact
add up (or max up) over any partition of the contact, so blocks that each see part of it give,
combined, exactly what the whole volume gives. The mean (``sum / count``) is then exact too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .graph import edge_slices


def pair_statistics(
    u: np.ndarray, v: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct unordered pair of ``(u[i], v[i])``: ``(pairs (m, 2) uint64, sum, count, max)``.

    Pairs are ordered smaller id first and sorted; entries with ``u == v`` or an id 0 are dropped.
    """
    u, v = np.asarray(u, np.uint64).ravel(), np.asarray(v, np.uint64).ravel()
    values = np.asarray(values, np.float64).ravel()
    keep = (u != v) & (u != 0) & (v != 0)
    u, v, values = u[keep], v[keep], values[keep]
    if len(u) == 0:
        return np.zeros((0, 2), np.uint64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    # compact the ids so that one integer keys a pair (a 1-D unique is far faster than axis=0)
    ids, inverse = np.unique(np.concatenate([lo, hi]), return_inverse=True)
    n = np.int64(len(ids))
    keys = inverse[: len(lo)].astype(np.int64) * n + inverse[len(lo) :]
    unique_keys, pair_index = np.unique(keys, return_inverse=True)
    pairs = np.stack([ids[unique_keys // n], ids[unique_keys % n]], axis=1)
    sums = np.bincount(pair_index, weights=values, minlength=len(unique_keys))
    counts = np.bincount(pair_index, minlength=len(unique_keys)).astype(np.int64)
    maxima = np.full(len(unique_keys), -np.inf)
    np.maximum.at(maxima, pair_index, values)
    return pairs, sums, counts, maxima


def owned_contacts(
    fragments: np.ndarray,
    affs: np.ndarray,
    owned_begin: Sequence[int],
    offsets: Sequence[Sequence[int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The contacts of the edges whose affinity is stored in an owned sub-box, summed per pair.

    Affinity channel ``c`` (offset ``o``) at voxel ``p`` links ``p`` and ``p + o`` (gunpowder's
    convention). A block owns the edges stored at its voxels, so every edge belongs to exactly one
    block and the blocks' statistics sum to the whole volume's.

    Args:
        fragments: fragment ids of a region around the owned box (the box grown by the largest
            offset, clipped to the volume).
        affs: ``(channels, *owned_shape)``: the affinities of the owned box.
        owned_begin: where the owned box starts inside ``fragments`` (voxels).
        offsets: the neighbourhood, one offset per channel.

    Returns:
        ``pair_statistics`` of the owned edges whose both ends lie in ``fragments``.
    """
    owned_shape = affs.shape[1:]
    region_shape = fragments.shape
    owned = tuple(slice(b, b + s) for b, s in zip(owned_begin, owned_shape))
    inside = fragments[owned]
    us, vs, values = [], [], []
    for c, offset in enumerate(offsets):
        # shift the owned box by the offset; keep the voxels whose partner is inside the region
        shifted = [int(b) + int(o) for b, o in zip(owned_begin, offset)]
        src = tuple(slice(max(0, -s), min(n, r - s)) for s, n, r in zip(shifted, owned_shape, region_shape))
        if any(sl.start >= sl.stop for sl in src):
            continue
        dst = tuple(slice(sl.start + s, sl.stop + s) for sl, s in zip(src, shifted))
        us.append(inside[src].ravel())
        vs.append(fragments[dst].ravel())
        values.append(affs[c][src].ravel())
    if not us:
        return pair_statistics(np.zeros(0), np.zeros(0), np.zeros(0))
    return pair_statistics(np.concatenate(us), np.concatenate(vs), np.concatenate(values))


def region_contacts(
    fragments: np.ndarray, affs: np.ndarray, offsets: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``pair_statistics`` of every in-volume edge of a whole volume."""
    us, vs, values = [], [], []
    for c, offset in enumerate(offsets):
        src, dst = edge_slices(fragments.shape, offset)
        us.append(fragments[src].ravel())
        vs.append(fragments[dst].ravel())
        values.append(affs[c][src].ravel())
    return pair_statistics(np.concatenate(us), np.concatenate(vs), np.concatenate(values))


def combine_statistics(
    pairs: np.ndarray, sums: np.ndarray, counts: np.ndarray, maxima: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge repeated pairs (rows of ``pairs``, smaller id first) of partial statistics: sums and
    counts add, maxima max. Returns them sorted by pair."""
    pairs = np.asarray(pairs, np.uint64).reshape(-1, 2)
    if len(pairs) == 0:
        return pairs, np.asarray(sums, np.float64), np.asarray(counts, np.int64), np.asarray(maxima, np.float64)
    ids, inverse = np.unique(pairs.ravel(), return_inverse=True)
    n = np.int64(len(ids))
    inverse = inverse.reshape(-1, 2).astype(np.int64)
    unique_keys, index = np.unique(inverse[:, 0] * n + inverse[:, 1], return_inverse=True)
    out = np.stack([ids[unique_keys // n], ids[unique_keys % n]], axis=1)
    total = np.bincount(index, weights=np.asarray(sums, np.float64), minlength=len(unique_keys))
    count = np.bincount(index, weights=np.asarray(counts, np.float64), minlength=len(unique_keys)).astype(np.int64)
    best = np.full(len(unique_keys), -np.inf)
    np.maximum.at(best, index, np.asarray(maxima, np.float64))
    return out, total, count, best
