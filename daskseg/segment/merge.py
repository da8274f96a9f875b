"""Union-find over fragment ids: which ids a set of merges joins, each component named by its
smallest id (so the result does not depend on the order of the merges or on who computes it)."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph


def merge_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Join ``a[i]`` with ``b[i]`` for every ``i``; return ``(ids, roots)`` for the ids whose
    component's smallest id (its root) is not the id itself, sorted by id."""
    a, b = np.asarray(a, np.uint64).ravel(), np.asarray(b, np.uint64).ravel()
    if len(a) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    ids, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    n = len(ids)
    graph = sparse.coo_matrix((np.ones(len(a), np.int8), (inverse[: len(a)], inverse[len(a) :])), shape=(n, n))
    _, component = csgraph.connected_components(graph, directed=False)
    # ids are sorted, so the first id seen of each component is its smallest
    first = np.full(component.max() + 1, n, np.int64)
    np.minimum.at(first, component, np.arange(n))
    roots = ids[first[component]]
    changed = roots != ids
    return ids[changed], roots[changed]


def apply_map(ids: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``ids`` with every entry found in ``old`` (sorted) replaced by the matching ``new``."""
    ids = np.asarray(ids, np.uint64)
    if len(old) == 0 or ids.size == 0:
        return ids.copy()
    pos = np.clip(np.searchsorted(old, ids), 0, len(old) - 1)
    hit = old[pos] == ids
    return np.where(hit, new[pos], ids)
