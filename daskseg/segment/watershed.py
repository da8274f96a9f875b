"""Segmentations from predicted affinities: a connected-components baseline, and seeded watershed
fragments merged by mean affinity (the usual recipe after the CREMI tutorial's network).

    seg = affinities_to_segmentation(pred_affs, voxel_size=(40, 4, 4), merge_threshold=0.5)

numpy and scipy only, so data workers run it without jax.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import SegmentError
from .agglomeration import agglomerate, relabel_consecutive
from .flood import seeded_watershed
from .graph import NEAREST_NEIGHBORHOOD, check_affinities, iter_edges

logger = logging.getLogger(__name__)


def connected_components(
    affs: np.ndarray,
    threshold: float = 0.5,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
) -> np.ndarray:
    """Label the components of the voxel graph whose edges have affinity above ``threshold``.

    The baseline: a single leaked edge merges two objects. Every voxel gets an id in 1..n
    (uint64), isolated voxels their own.
    """
    affs = np.asarray(affs)
    offsets = check_affinities(affs, neighborhood)
    shape = affs.shape[1:]
    n = int(np.prod(shape))
    index = np.arange(n, dtype=np.int64 if n >= 2**31 else np.int32).reshape(shape)
    rows, cols = [], []
    for src, dst, values in iter_edges(affs, offsets):
        linked = values > threshold
        rows.append(index[src][linked])
        cols.append(index[dst][linked])
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(rows_a), np.int8), (rows_a, cols_a)), shape=(n, n))
    _, components = csgraph.connected_components(graph, directed=False)
    return (components.astype(np.uint64) + 1).reshape(shape)


def _head_tail(axis: int, dims: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of all voxels but the last, and all but the first, along ``axis``."""
    head = tuple(slice(0, -1) if a == axis else slice(None) for a in range(dims))
    tail = tuple(slice(1, None) if a == axis else slice(None) for a in range(dims))
    return head, tail


def _axis_affinities(affs: np.ndarray, offsets: Sequence[tuple[int, ...]], axes: Sequence[int]) -> list:
    """Per spatial axis (None where not in ``axes``): ``w[p]`` = affinity between ``p`` and its
    successor along the axis, NaN on the last slice. Needs a ±1 offset along each of ``axes``."""
    dims = affs.ndim - 1
    out: list[np.ndarray | None] = [None] * dims
    for axis in axes:
        unit = tuple(1 if a == axis else 0 for a in range(dims))
        back = tuple(-u for u in unit)
        w = np.full(affs.shape[1:], np.nan, np.float32)
        head, tail = _head_tail(axis, dims)
        if back in offsets:  # gunpowder's convention: stored at the successor
            w[head] = affs[offsets.index(back)][tail]
        elif unit in offsets:
            w[head] = affs[offsets.index(unit)][head]
        else:
            raise SegmentError(
                f"the watershed needs a nearest-neighbour affinity along axis {axis} (offset {back} or {unit}); "
                f"the neighbourhood is {list(offsets)}"
            )
        out[axis] = w
    return out


def _edge_components(weights: Sequence[np.ndarray | None], threshold: float) -> np.ndarray:
    """Components (0..k-1 per voxel) of the face graph linked by weights above ``threshold``."""
    shape = next(w for w in weights if w is not None).shape
    n = int(np.prod(shape))
    index = np.arange(n, dtype=np.int64 if n >= 2**31 else np.int32).reshape(shape)
    rows, cols = [np.zeros(0, index.dtype)], [np.zeros(0, index.dtype)]
    for axis, w in enumerate(weights):
        if w is None:
            continue
        head, tail = _head_tail(axis, len(shape))
        linked = w[head] > threshold
        rows.append(index[head][linked])
        cols.append(index[tail][linked])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
    return csgraph.connected_components(graph, directed=False)[1].reshape(shape)


def watershed_fragments(
    affs: np.ndarray,
    threshold: float = 0.5,
    *,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
    voxel_size: Sequence[float] | None = None,
    seed_radius: float | None = None,
    fragments_in_xy: bool | None = None,
    min_seed_size: int = 8,
    fill: bool = True,
) -> np.ndarray:
    """Over-segment into fragments: a seeded watershed on the affinity graph.

    Edges with affinity above ``threshold`` link a voxel into its object; voxels all of whose
    edges do are its inside. Seeds are the local maxima (within ``seed_radius``) of the distance
    from the inside to the nearest other voxel, plus every linked component of at least
    ``min_seed_size`` voxels without such a maximum (a process too thin to have an inside).
    Fronts cross linked edges first, deepest and strongest first, so fragments meet at the
    necks of objects, then (``fill=True``) the other edges by decreasing affinity. With
    ``fill=False``, voxels only reachable over unlinked edges stay 0.

    Args:
        voxel_size: physical size of a voxel (default 1 per axis); distances are measured in it.
        seed_radius: in the units of ``voxel_size``; default 3 × its smallest entry, so with
            (40, 4, 4) seeds are maxima within 7x7 pixels.
        fragments_in_xy: make 2D fragments, section by section, from the in-plane affinities;
            :func:`agglomerate` then links them through z. Anisotropic data needs this: a process
            only one or two 40 nm sections thick has no voxel with both z neighbours in it.
            Default: when the first axis' voxel size is at least twice the others'.

    Returns uint64 fragment ids 1..n.
    """
    affs = np.asarray(affs)
    offsets = check_affinities(affs, neighborhood)
    dims = affs.ndim - 1
    vs = tuple(float(v) for v in (voxel_size if voxel_size is not None else (1.0,) * dims))
    if len(vs) != dims or min(vs) <= 0:
        raise SegmentError(f"voxel_size {voxel_size} does not give a positive size per spatial axis of {affs.shape}")
    if fragments_in_xy is None:
        fragments_in_xy = dims > 1 and vs[0] >= 2 * max(vs[1:])
    if fragments_in_xy and dims < 2:
        raise SegmentError(f"fragments_in_xy needs at least 2 spatial dimensions, affinities are {affs.shape}")
    axes = tuple(range(1, dims)) if fragments_in_xy else tuple(range(dims))
    seed_radius = 3 * min(vs) if seed_radius is None else float(seed_radius)
    weights = _axis_affinities(affs, offsets, axes)
    shape = affs.shape[1:]

    # inside: every edge of the voxel (along the flooded axes) is linked
    inside = np.ones(shape, bool)
    for axis in axes:
        linked = np.nan_to_num(weights[axis], nan=np.inf) > threshold  # to the successor
        head, tail = _head_tail(axis, dims)
        inside &= linked
        inside[tail] &= linked[head]  # from the predecessor
    if fragments_in_xy:
        distance = np.stack([ndi.distance_transform_edt(section, sampling=vs[1:]) for section in inside])
    else:
        distance = ndi.distance_transform_edt(inside, sampling=vs)

    connectivity = np.zeros((3,) * dims, bool)
    for axis in axes:
        for delta in (0, 2):
            connectivity[tuple(delta if a == axis else 1 for a in range(dims))] = True
    connectivity[(1,) * dims] = True
    footprint = [2 * int(round(seed_radius / v)) + 1 if a in axes else 1 for a, v in enumerate(vs)]
    maxima = inside & (distance == ndi.maximum_filter(distance, size=footprint))
    seeds, n_seeds = ndi.label(maxima, structure=connectivity)
    seeds = seeds.astype(np.int64)
    # linked components without a maximum (too thin for an inside) seed themselves whole
    components = _edge_components(weights, threshold)
    sizes = np.bincount(components.ravel())
    has_max = np.zeros(len(sizes), bool)
    has_max[components[maxima]] = True
    lonely = ~has_max & (sizes >= min_seed_size)
    new_id = np.zeros(len(sizes), np.int64)
    new_id[lonely] = n_seeds + 1 + np.arange(int(lonely.sum()))
    extra = new_id[components]
    seeds = np.where(extra > 0, extra, seeds)
    n_seeds += int(lonely.sum())
    if n_seeds == 0:
        logger.warning("no seeds: no linked component reaches %d voxels at threshold %s", min_seed_size, threshold)
        return np.zeros(shape, np.uint64)

    # edge levels: linked edges 0..255 by the depth of their shallower end, so fronts run from
    # the middle of objects outwards, and by their affinity, so near boundaries a front takes its
    # own object's strong edges before a leak's weak one; unlinked edges 256..511 by affinity
    depth = 1.0 - distance / max(float(distance.max()), 1e-12)
    levels: list[np.ndarray | None] = [None] * dims
    for axis in axes:
        head, tail = _head_tail(axis, dims)
        shallow = np.zeros(shape, np.float64)
        shallow[head] = np.maximum(depth[head], depth[tail])
        w = np.nan_to_num(weights[axis], nan=0.0)
        weakness = np.clip((1.0 - w) / max(1.0 - float(threshold), 1e-6), 0.0, 1.0)
        lv = np.where(
            w > threshold,
            np.rint(127 * shallow + 128 * weakness),
            256 + np.rint(255 * np.clip(1.0 - w, 0.0, 1.0)),
        )
        levels[axis] = lv.astype(np.int32)
    fragments = seeded_watershed(seeds, levels, max_level=None if fill else 255)
    logger.debug("watershed: %d seeds in %s voxels (in xy: %s)", n_seeds, shape, fragments_in_xy)
    return fragments.astype(np.uint64)


def fill_unlabelled(
    segmentation: np.ndarray,
    affs: np.ndarray,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
) -> np.ndarray:
    """Grow the segments over their unlabelled (0) voxels, across the strongest edges first."""
    affs = np.asarray(affs)
    offsets = check_affinities(affs, neighborhood)
    dims = affs.ndim - 1
    weights = _axis_affinities(affs, offsets, range(dims))
    levels = [np.rint(255 * np.clip(1.0 - np.nan_to_num(w, nan=0.0), 0.0, 1.0)).astype(np.int32) for w in weights]
    return seeded_watershed(segmentation.astype(np.int64), levels).astype(np.uint64)


def affinities_to_segmentation(
    affs: np.ndarray,
    threshold: float = 0.5,
    *,
    merge_threshold: float | None = None,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
    voxel_size: Sequence[float] | None = None,
    seed_radius: float | None = None,
    fragments_in_xy: bool | None = None,
    min_seed_size: int = 8,
    fill: bool = True,
) -> np.ndarray:
    """Segment affinities (channels, *spatial) into uint64 ids 1..n.

    :func:`watershed_fragments` (unfilled), then, if ``merge_threshold`` is given,
    :func:`agglomerate` (hierarchical, by mean affinity), then (``fill=True``) the voxels behind
    unlinked edges join their strongest-linked segment (:func:`fill_unlabelled`); with
    ``fill=False`` they stay 0. Agglomerating before filling keeps boundary voxels, whose
    object is the least certain, out of the contacts that decide merges.

    Typical CREMI call: ``affinities_to_segmentation(affs, voxel_size=(40, 4, 4), merge_threshold=0.5)``.
    """
    fragments = watershed_fragments(
        affs,
        threshold,
        neighborhood=neighborhood,
        voxel_size=voxel_size,
        seed_radius=seed_radius,
        fragments_in_xy=fragments_in_xy,
        min_seed_size=min_seed_size,
        fill=False,
    )
    segmentation = fragments if merge_threshold is None else agglomerate(fragments, affs, merge_threshold, neighborhood)
    if fill:
        segmentation = fill_unlabelled(segmentation, affs, neighborhood)
    return relabel_consecutive(segmentation)
