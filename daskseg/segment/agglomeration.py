"""Merge fragments by the mean affinity along their contacts: the region adjacency graph and
two agglomerations over it.

The hierarchical one (default) merges the best pair first and re-averages the merged region's
contacts, as waterz does; a fragment that grabbed a few voxels of its neighbour then no longer
pulls the two objects together, because their whole contact is averaged. The static one is
union-find over the edges above the threshold, one vectorised pass.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import SegmentError
from .contacts import region_contacts
from .graph import NEAREST_NEIGHBORHOOD, check_affinities

logger = logging.getLogger(__name__)


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Ids 1..n (uint64) in order of the old ids; 0 stays 0."""
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) < 4 * labels.size:
        # ids no larger than the array: a lookup table instead of a sort
        present = np.bincount(labels.ravel().astype(np.int64)) > 0
        present[0] = False
        lut = np.zeros(len(present), np.uint64)
        lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.uint64)
        return lut[labels]
    ids, inverse = np.unique(labels, return_inverse=True)
    new = np.arange(len(ids), dtype=np.uint64) + (0 if len(ids) and ids[0] == 0 else 1)
    return new[inverse].reshape(labels.shape)


def region_adjacency(
    fragments: np.ndarray,
    affs: np.ndarray,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Touching fragment pairs ``(m, 2)`` (smaller id first), their summed affinity and edge count.

    Every affinity channel counts (long-range ones too); fragment 0 (unlabelled) has no edges.
    """
    affs = np.asarray(affs)
    offsets = check_affinities(affs, neighborhood)
    if fragments.shape != affs.shape[1:]:
        raise SegmentError(f"fragments of shape {fragments.shape} do not match affinities of shape {affs.shape}")
    edges, sums, counts, _ = region_contacts(fragments, affs, offsets)
    return edges, sums, counts


def _merge_static(ids: np.ndarray, edges: np.ndarray, mean: np.ndarray, threshold: float) -> np.ndarray:
    """Component index per fragment in ``ids``, linking every edge above ``threshold``."""
    merged = edges[mean > threshold]
    a, b = np.searchsorted(ids, merged[:, 0]), np.searchsorted(ids, merged[:, 1])
    graph = sparse.coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(len(ids), len(ids)))
    return csgraph.connected_components(graph, directed=False)[1]


def _merge_hierarchical(
    ids: np.ndarray, edges: np.ndarray, sums: np.ndarray, counts: np.ndarray, threshold: float
) -> np.ndarray:
    """Root index per fragment in ``ids`` after merging best-mean-first while the best > threshold."""
    a = np.searchsorted(ids, edges[:, 0]).tolist()
    b = np.searchsorted(ids, edges[:, 1]).tolist()
    neighbours: list[dict[int, list[float]]] = [{} for _ in range(len(ids))]
    heap = []
    for i, j, s, c in zip(a, b, sums.tolist(), counts.tolist()):
        shared = [s, c]  # one list per pair, seen from both ends
        neighbours[i][j] = shared
        neighbours[j][i] = shared
        if s / c > threshold:
            heap.append((-s / c, i, j))
    heapq.heapify(heap)
    root = list(range(len(ids)))
    while heap:
        negative_mean, i, j = heapq.heappop(heap)
        if root[i] != i or root[j] != j:
            continue
        edge = neighbours[i].get(j)
        if edge is None or abs(edge[0] / edge[1] + negative_mean) > 1e-12:
            continue  # stale: this pair's contact changed since it was queued
        if len(neighbours[i]) < len(neighbours[j]):
            i, j = j, i
        # merge j into i: j's contacts become i's, summed where both touch the same region
        root[j] = i
        del neighbours[i][j]
        for k, (s, c) in neighbours[j].items():
            if k == i:
                continue
            del neighbours[k][j]
            total = neighbours[i].get(k)
            if total is None:
                total = [s, c]
                neighbours[i][k] = total
            else:
                total[0] += s
                total[1] += c
            neighbours[k][i] = total
            if total[0] / total[1] > threshold:
                heapq.heappush(heap, (-total[0] / total[1], min(i, k), max(i, k)))
        neighbours[j] = {}
    # resolve chains of merges to their final roots
    root_arr = np.asarray(root)
    while True:
        nxt = root_arr[root_arr]
        if np.array_equal(nxt, root_arr):
            return root_arr
        root_arr = nxt


def agglomerate(
    fragments: np.ndarray,
    affs: np.ndarray,
    merge_threshold: float,
    neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD,
    hierarchical: bool = True,
) -> np.ndarray:
    """Merge touching fragments while the mean affinity along their contact exceeds ``merge_threshold``.

    ``hierarchical=True`` merges the best pair first and re-averages (see the module docstring);
    ``False`` links every fragment pair above the threshold at once. Returns ids 1..n (uint64);
    0 stays 0.
    """
    fragments = np.asarray(fragments)
    edges, sums, counts = region_adjacency(fragments, affs, neighborhood)
    ids, inverse = np.unique(fragments, return_inverse=True)
    if hierarchical:
        component = _merge_hierarchical(ids, edges, sums, counts, merge_threshold)
    else:
        component = _merge_static(ids, edges, sums / np.maximum(counts, 1), merge_threshold)
    new = component.astype(np.uint64) + 1
    if len(ids) and ids[0] == 0:
        new[0] = 0
    logger.debug("agglomerate: %d fragments -> %d segments", len(ids), len(np.unique(component)))
    return relabel_consecutive(new[inverse.ravel()].reshape(fragments.shape))
