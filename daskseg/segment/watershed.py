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

from .errors import SegmentError
from .flood import seeded_watershed
from .graph import NEAREST_NEIGHBORHOOD, check_affinities, incident_mean, incident_min, iter_edges

logger = logging.getLogger(__name__)


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Ids 1..n (uint64) in order of the old ids; 0 stays 0."""
    ids, inverse = np.unique(labels, return_inverse=True)
    new = np.arange(len(ids), dtype=np.uint64) + (0 if ids[0] == 0 else 1)
    return new[inverse].reshape(labels.shape)


def connected_components(
    affs: np.ndarray,
    threshold: float = 0.5,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
) -> np.ndarray:
    """Label the components of the voxel graph whose edges have affinity above ``threshold``.

    The baseline: one low affinity too few splits, one high affinity too many merges. Every voxel
    gets an id in 1..n (uint64), isolated voxels their own.
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


def _seed_footprint(voxel_size: Sequence[float], seed_radius: float) -> tuple[int, ...]:
    return tuple(2 * int(round(seed_radius / v)) + 1 for v in voxel_size)


def watershed_fragments(
    affs: np.ndarray,
    threshold: float = 0.5,
    *,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
    voxel_size: Sequence[float] | None = None,
    seed_radius: float | None = None,
    fill: bool = True,
) -> np.ndarray:
    """Over-segment into fragments: seeded watershed on the distance to boundaries.

    A voxel is inside an object when every affinity touching it exceeds ``threshold``; the other
    voxels are boundary. Seeds are the local maxima (within ``seed_radius``) of the distance to the
    nearest boundary voxel, at least one per connected inside region; they flood the negated
    distance, so fragments meet at the necks of objects, then (``fill=True``) the boundary
    voxels in order of decreasing mean affinity. With ``fill=False`` boundary voxels stay 0.

    Args:
        voxel_size: physical size of a voxel (default 1 per axis); distances are measured in it,
            so anisotropic data (CREMI's (40, 4, 4)) gets round seeds.
        seed_radius: in the units of ``voxel_size``; default 3 × its smallest entry, so with
            (40, 4, 4) seeds are maxima within 7x7 pixels of a section.

    Returns uint64 fragment ids 1..n.
    """
    affs = np.asarray(affs)
    offsets = check_affinities(affs, neighborhood)
    dims = affs.ndim - 1
    vs = tuple(float(v) for v in (voxel_size if voxel_size is not None else (1.0,) * dims))
    if len(vs) != dims or min(vs) <= 0:
        raise SegmentError(f"voxel_size {voxel_size} does not give a positive size per spatial axis of {affs.shape}")
    seed_radius = 3 * min(vs) if seed_radius is None else float(seed_radius)

    inside = incident_min(affs, offsets) > threshold
    if not inside.any():
        logger.warning("no voxel has all its affinities above %s: returning an empty segmentation", threshold)
        return np.zeros(inside.shape, np.uint64)
    distance = ndi.distance_transform_edt(inside, sampling=vs)
    maxima = inside & (distance == ndi.maximum_filter(distance, size=_seed_footprint(vs, seed_radius)))
    seeds, n_seeds = ndi.label(maxima)
    # a region whose maxima all lie within seed_radius of a deeper region still needs a seed
    regions, n_regions = ndi.label(inside)
    seeded = np.zeros(n_regions + 1, bool)
    seeded[regions[maxima]] = True
    missing = np.flatnonzero(~seeded[1:]) + 1
    if len(missing):
        at = ndi.maximum_position(distance, regions, missing)
        for k, position in enumerate(at):
            seeds[position] = n_seeds + k + 1
        n_seeds += len(missing)

    # one integer landscape: interiors by negated distance (levels 0..255), boundaries above them
    # by 1 - mean affinity (256..511), so boundary voxels are flooded last
    levels = np.empty(inside.shape, np.uint16)
    levels[inside] = np.rint(255 * (1.0 - distance[inside] / distance.max())).astype(np.uint16)
    mean_aff = incident_mean(affs, offsets)[~inside]
    levels[~inside] = 256 + np.rint(255 * np.clip(1.0 - mean_aff, 0.0, 1.0)).astype(np.uint16)
    fragments = seeded_watershed(levels, seeds, mask=None if fill else inside)
    logger.debug("watershed: %d seeds in %s voxels", n_seeds, inside.shape)
    return fragments.astype(np.uint64)


def region_adjacency(
    fragments: np.ndarray,
    affs: np.ndarray,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
) -> tuple[np.ndarray, np.ndarray]:
    """Edges between touching fragments (``(m, 2)`` ids, smaller first) and their mean affinity.

    Fragment 0 (unlabelled) has no edges.
    """
    affs = np.asarray(affs)
    offsets = check_affinities(affs, neighborhood)
    if fragments.shape != affs.shape[1:]:
        raise SegmentError(f"fragments of shape {fragments.shape} do not match affinities of shape {affs.shape}")
    us, vs, values = [], [], []
    for src, dst, value in iter_edges(affs, offsets):
        u, v = fragments[src], fragments[dst]
        between = (u != v) & (u != 0) & (v != 0)
        us.append(u[between])
        vs.append(v[between])
        values.append(value[between].astype(np.float64))
    u, v, value = np.concatenate(us), np.concatenate(vs), np.concatenate(values)
    pairs = np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1).astype(np.uint64)
    if len(pairs) == 0:
        return np.zeros((0, 2), np.uint64), np.zeros(0)
    edges, inverse = np.unique(pairs, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    mean = np.bincount(inverse, weights=value) / np.bincount(inverse)
    return edges, mean


def agglomerate(
    fragments: np.ndarray,
    affs: np.ndarray,
    merge_threshold: float,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
) -> np.ndarray:
    """Merge touching fragments whose mean affinity along their contact exceeds ``merge_threshold``.

    One pass of union-find over the region adjacency graph (means are not updated after merges).
    Returns ids 1..n (uint64); 0 stays 0.
    """
    edges, mean = region_adjacency(fragments, affs, neighborhood)
    ids, inverse = np.unique(fragments, return_inverse=True)
    merged = edges[mean > merge_threshold]
    # fragment ids -> positions in ids, so the graph has one node per fragment present
    a = np.searchsorted(ids, merged[:, 0])
    b = np.searchsorted(ids, merged[:, 1])
    graph = sparse.coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(len(ids), len(ids)))
    _, component = csgraph.connected_components(graph, directed=False)
    new = component.astype(np.uint64) + 1
    if ids[0] == 0:
        new[0] = 0
    logger.debug("agglomerate: %d fragments, %d edges above %s", len(ids), len(merged), merge_threshold)
    return relabel_consecutive(new[inverse.ravel()].reshape(fragments.shape))


def affinities_to_segmentation(
    affs: np.ndarray,
    threshold: float = 0.5,
    *,
    merge_threshold: float | None = None,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
    voxel_size: Sequence[float] | None = None,
    seed_radius: float | None = None,
    fill: bool = True,
) -> np.ndarray:
    """Segment affinities (channels, *spatial): :func:`watershed_fragments`, then, if
    ``merge_threshold`` is given, :func:`agglomerate`. Returns uint64 ids 1..n (0 = unlabelled
    boundary when ``fill=False``).
    """
    fragments = watershed_fragments(
        affs, threshold, neighborhood=neighborhood, voxel_size=voxel_size, seed_radius=seed_radius, fill=fill
    )
    if merge_threshold is None:
        return relabel_consecutive(fragments)
    return agglomerate(fragments, affs, merge_threshold, neighborhood)
