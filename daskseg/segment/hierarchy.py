"""Mean-affinity hierarchical agglomeration that can be done in pieces: merge only the pairs that
are each other's best, among regions whose every contact is known.

The score of two regions is the mean affinity on their contact (``sum / count``); merging sums the
contacts, so the score of the merged region with a third one is a weighted mean of the two old
scores, never above the larger. Such a linkage is *reducible*, and for a reducible linkage merging
reciprocal best pairs in any order gives the same merges as always merging the globally best pair
(waterz's and ``agglomerate(hierarchical=True)``'s greedy order) — the nearest-neighbour chain
algorithm. So a block can merge what it can decide alone: pairs of regions that are each other's
best and whose contacts all lie inside it ("complete"); the rest waits for a higher level of the
reduction tree, where the contacts across the faces are known. Ties are broken by the ids of the
pair, the same way in every task.
"""

from __future__ import annotations

import numpy as np


def merge_reciprocal_best(
    node_ids: np.ndarray,
    open_levels: np.ndarray,
    edges: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    level: int,
    threshold: float,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Merge, as far as can be decided at ``level``, every pair whose mean contact exceeds ``threshold``.

    Args:
        node_ids: the regions (ids; a merged region takes the smaller id).
        open_levels: per region, the highest reduction-tree level at which it may still gain
            contacts; regions with ``open_level <= level`` are complete.
        edges: ``(m, 2)`` region pairs, each once; ``sums``, ``counts``: their contacts.
        level: the current level.
        threshold: merge while the best score exceeds it.

    Returns:
        ``merges`` (``a``, ``b`` uint64 and ``score``, in the order done) and the residual graph
        (``ids``, ``open_levels``, ``edges``, ``sums``, ``counts``): the regions that may still
        merge and their contacts among each other. A complete region whose best score is at most
        ``threshold`` never merges again (merged neighbours only average its scores), so it and
        its contacts are dropped.
    """
    adjacency: dict[int, dict[int, list[float]]] = {int(n): {} for n in np.asarray(node_ids, np.uint64).tolist()}
    openness = dict(zip(adjacency, np.asarray(open_levels).tolist()))
    for (a, b), s, c in zip(np.asarray(edges, np.uint64).tolist(), np.asarray(sums).tolist(),
                            np.asarray(counts).tolist()):
        shared = [float(s), float(c)]
        adjacency[a][b] = shared
        adjacency[b][a] = shared

    def best(n: int) -> tuple[int, float] | None:
        found: tuple[int, tuple[float, int, int]] | None = None
        for m, (s, c) in adjacency[n].items():
            k = (s / c, -min(n, m), -max(n, m))
            if found is None or k > found[1]:
                found = (m, k)
        return None if found is None else (found[0], found[1][0])

    def complete(n: int) -> bool:
        return openness[n] <= level

    out_a: list[int] = []
    out_b: list[int] = []
    out_s: list[float] = []
    for start in sorted(adjacency):
        if start not in adjacency:
            continue
        chain = [start]
        while chain:
            x = chain[-1]
            if x not in adjacency or not complete(x):
                chain.clear()
                break
            found = best(x)
            if found is None or found[1] <= threshold or not complete(found[0]):
                chain.clear()  # x waits (or is done); so does every region whose best it is
                break
            y, score = found
            if len(chain) >= 2 and chain[-2] == y:
                chain.pop()
                chain.pop()
                keep, gone = min(x, y), max(x, y)
                out_a.append(x)
                out_b.append(y)
                out_s.append(score)
                del adjacency[keep][gone]
                for k, contact in adjacency.pop(gone).items():
                    if k == keep:
                        continue
                    del adjacency[k][gone]
                    total = adjacency[keep].get(k)
                    if total is None:
                        adjacency[keep][k] = contact
                        adjacency[k][keep] = contact
                    else:
                        total[0] += contact[0]
                        total[1] += contact[1]
                openness[keep] = max(openness[keep], openness.pop(gone))
                if not chain:
                    chain.append(keep)  # the merged region may have a best pair of its own
            else:
                chain.append(y)

    # what may still merge: incomplete regions, and complete ones whose best is above the threshold
    live = set()
    for n in adjacency:
        if not complete(n):
            live.add(n)
        else:
            found = best(n)
            if found is not None and found[1] > threshold:
                live.add(n)
    ids = np.array(sorted(live), np.uint64)
    pairs, pair_sums, pair_counts = [], [], []
    for n in sorted(live):
        for m, (s, c) in adjacency[n].items():
            if n < m and m in live:
                pairs.append((n, m))
                pair_sums.append(s)
                pair_counts.append(c)
    residual = {
        "ids": ids,
        "open_levels": np.array([openness[int(n)] for n in ids.tolist()], np.int64),
        "edges": np.array(pairs, np.uint64).reshape(-1, 2),
        "sums": np.array(pair_sums, np.float64),
        "counts": np.array(pair_counts, np.int64),
    }
    merges = {"a": np.array(out_a, np.uint64), "b": np.array(out_b, np.uint64), "score": np.array(out_s)}
    return merges, residual
