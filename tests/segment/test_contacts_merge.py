"""Mergeable contact statistics and union-find: hand-checked cases and the blocks-sum-to-whole
invariant the blockwise edges stage relies on."""

import numpy as np
import pytest

from daskseg.blockwise.segmentation.layout import SegmentLayout
from daskseg.segment import region_adjacency
from daskseg.segment.contacts import combine_statistics, owned_contacts, pair_statistics, region_contacts
from daskseg.segment.merge import apply_map, merge_pairs

NN = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))


def test_pair_statistics_by_hand():
    u = np.array([5, 7, 5, 3, 0, 4])
    v = np.array([7, 5, 7, 3, 9, 3])
    a = np.array([0.2, 0.6, 0.4, 0.9, 0.9, 0.5])
    pairs, sums, counts, maxima = pair_statistics(u, v, a)
    # (3, 3) is inside one fragment and (0, 9) touches the background: dropped
    assert pairs.tolist() == [[3, 4], [5, 7]]
    assert sums == pytest.approx([0.5, 1.2]) and counts.tolist() == [1, 3] and maxima == pytest.approx([0.5, 0.6])


def test_combine_statistics_adds_partial_contacts():
    pairs = np.array([[1, 2], [3, 4], [1, 2]], np.uint64)
    out, sums, counts, maxima = combine_statistics(pairs, [1.0, 2.0, 0.5], [2, 4, 1], [0.6, 0.7, 0.9])
    assert out.tolist() == [[1, 2], [3, 4]]
    assert sums.tolist() == [1.5, 2.0] and counts.tolist() == [3, 4] and maxima.tolist() == [0.9, 0.7]


def test_region_adjacency_unchanged_by_hand():
    fragments = np.array([[[1, 1, 2], [3, 3, 2]]], np.uint64)
    affs = np.zeros((3, 1, 2, 3), np.float32)
    affs[1, 0, 1] = [0.2, 0.4, 1.0]  # y edges: (3,1), (3,1), (2,2)
    affs[2, 0, :, 2] = [0.8, 0.1]    # x edges at x=2: (2,1) 0.8 and (2,3) 0.1
    edges, sums, counts = region_adjacency(fragments, affs)
    assert edges.tolist() == [[1, 2], [1, 3], [2, 3]]
    assert sums == pytest.approx([0.8, 0.6, 0.1]) and counts.tolist() == [1, 2, 1]


@pytest.mark.parametrize("neighborhood", [NN, NN + ((-2, 0, 0), (0, 3, -1))])
def test_owned_contacts_of_the_blocks_sum_to_the_whole(neighborhood):
    rng = np.random.default_rng(1)
    fragments = rng.integers(0, 6, (7, 9, 8)).astype(np.uint64)
    affs = rng.random((len(neighborhood), 7, 9, 8))
    whole = region_contacts(fragments, affs, neighborhood)
    reach = np.max(np.abs(np.array(neighborhood)), axis=0)
    parts = []
    for z in (0, 4):
        for y in (0, 3, 6):
            owned = (slice(z, min(z + 4, 7)), slice(y, y + 3), slice(0, 8))
            lo = [max(0, s.start - r) for s, r in zip(owned, reach)]
            hi = [min(n, s.stop + r) for s, r, n in zip(owned, reach, fragments.shape)]
            region = fragments[tuple(slice(a, b) for a, b in zip(lo, hi))]
            begin = [s.start - a for s, a in zip(owned, lo)]
            parts.append(owned_contacts(region, affs[(slice(None),) + owned], begin, neighborhood))
    pairs = np.concatenate([p[0] for p in parts])
    combined = combine_statistics(pairs, *(np.concatenate([p[i] for p in parts]) for i in (1, 2, 3)))
    assert combined[0].tolist() == whole[0].tolist()
    np.testing.assert_allclose(combined[1], whole[1], rtol=1e-12)
    assert combined[2].tolist() == whole[2].tolist()
    np.testing.assert_array_equal(combined[3], whole[3])


def test_merge_pairs_names_components_by_smallest_id():
    ids, roots = merge_pairs(np.array([9, 4, 20, 7]), np.array([4, 12, 30, 30]))
    assert dict(zip(ids.tolist(), roots.tolist())) == {9: 4, 12: 4, 20: 7, 30: 7}
    assert apply_map(np.array([4, 9, 30, 99], np.uint64), ids, roots).tolist() == [4, 4, 7, 99]


def test_merge_level_of_blocks_by_hand():
    a = np.array([[0, 0, 0], [1, 0, 0], [1, 3, 0], [3, 3, 3], [2, 2, 2]])
    b = np.array([[0, 0, 0], [0, 0, 0], [2, 3, 0], [4, 3, 3], [3, 2, 2]])
    # 0/0 same block; 1/0 meet at level 1; 1/2 differ in bit 1 -> level 2; 3/4 -> level 3; 2/3 -> level 1
    assert SegmentLayout.merge_level(a, b).tolist() == [0, 1, 2, 3, 1]


def test_reciprocal_best_merging_by_hand():
    from daskseg.segment.hierarchy import merge_reciprocal_best

    # a chain 1-2-3-4: 2-3 is best (0.9); after it, 1-23 = (0.8 + 0.2) / 2 = 0.5 and 23-4 = 0.7
    edges = np.array([[1, 2], [2, 3], [3, 4], [1, 3]], np.uint64)
    sums, counts = np.array([0.8, 0.9, 0.7, 0.2]), np.array([1, 1, 1, 1])
    merges, residual = merge_reciprocal_best(np.array([1, 2, 3, 4]), np.zeros(4), edges, sums, counts, 0, 0.6)
    pairs = [tuple(sorted(p)) for p in zip(merges["a"].tolist(), merges["b"].tolist())]
    assert pairs == [(2, 3), (2, 4)]  # 2-3, then the merged region (id 2) with 4
    assert merges["score"] == pytest.approx([0.9, 0.7])
    assert len(residual["ids"]) == 0  # 1 is done: its best (0.5) is below the threshold
    # static merging of the same scores would also merge 1 (0.8 > 0.6): the re-averaging matters


def test_regions_wait_for_a_level_that_knows_all_their_contacts():
    from daskseg.segment.hierarchy import merge_reciprocal_best

    edges = np.array([[1, 2], [2, 3]], np.uint64)
    # 3 may gain contacts until level 2: 2-3 cannot be decided at level 1, nor 1-2 (2's best is 3)
    merges, residual = merge_reciprocal_best(np.array([1, 2, 3]), np.array([0, 0, 2]), edges,
                                             np.array([0.8, 0.9]), np.array([1, 1]), 1, 0.5)
    assert len(merges["a"]) == 0
    assert residual["ids"].tolist() == [1, 2, 3] and residual["edges"].tolist() == [[1, 2], [2, 3]]
    assert residual["open_levels"].tolist() == [0, 0, 2]
    merges, residual = merge_reciprocal_best(residual["ids"], residual["open_levels"], residual["edges"],
                                             residual["sums"], residual["counts"], 2, 0.5)
    assert merges["score"] == pytest.approx([0.9, 0.8]) and len(residual["ids"]) == 0
