"""CREMI's adapted Rand and VOI from contingency tables: hand-computed cases, cremi_python's
definition (segment 0, background), and how it differs from scikit-image's adapted_rand_error."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from itertools import combinations
from math import log2

import numpy as np
import pytest

from daskseg.segment import SegmentError, adapted_rand, cremi_scores, voi
from daskseg.segment.evaluate import (
    PairCounts,
    adapted_rand_stats,
    count_pairs,
    scores_from_counts,
    sum_pair_counts,
)


def arand(sum_ab, sum_a, sum_b) -> float:
    """1 - 2pr/(p+r) with p = sum_ab/sum_b, r = sum_ab/sum_a, in exact fractions."""
    p, r = Fraction(sum_ab) / Fraction(sum_b), Fraction(sum_ab) / Fraction(sum_a)
    return float(1 - 2 * p * r / (p + r))


# --- hand-computed cases ------------------------------------------------------------------------


def test_one_segment_over_two_equal_objects():
    # sum_A = 2² + 2² = 8, sum_B = 4² = 16, sum_AB = 2² + 2² = 8: p = 1/2, r = 1, error 1/3
    gt = np.array([1, 1, 2, 2])
    seg = np.array([7, 7, 7, 7])
    assert adapted_rand(seg, gt) == pytest.approx(1 / 3, abs=1e-15)
    assert adapted_rand_stats(count_pairs(seg, gt))[1:] == pytest.approx((0.5, 1.0))


def test_unsegmented_voxels_add_c_over_n_as_in_cremi_python():
    # gt 0 voxels are ignored but counted in n = 6; two voxels of object 1 have segment 0 (c = 2):
    # sum_A = 4² = 16, sum_B = 2² + 2/6, sum_AB = 2² + 2/6
    gt = np.array([0, 0, 1, 1, 1, 1])
    seg = np.array([5, 5, 0, 0, 1, 1])
    expected = arand(4 + Fraction(2, 6), 16, 4 + Fraction(2, 6))
    assert expected == pytest.approx(35 / 61)
    assert adapted_rand(seg, gt) == pytest.approx(expected, abs=1e-15)
    # the same voxels without the background: n = 4, a different (cremi_python's) value
    assert adapted_rand(seg[2:], gt[2:]) == pytest.approx(arand(4 + Fraction(2, 4), 16, 4 + Fraction(2, 4)), abs=1e-15)


def test_all_unsegmented():
    gt = np.array([1, 1, 2])
    seg = np.zeros(3, np.uint64)
    # sum_A = 4 + 1, sum_B = sum_AB = 3/3: p = 1, r = 1/5
    assert adapted_rand(seg, gt) == pytest.approx(arand(1, 5, 1), abs=1e-15)


def test_a_mask_leaves_voxels_out_of_n_too():
    gt = np.array([0, 0, 1, 1, 1, 1])
    seg = np.array([5, 5, 0, 0, 1, 1])
    mask = np.array([0, 1, 1, 1, 1, 1], np.uint8)
    assert adapted_rand(seg, gt, mask=mask) == pytest.approx(arand(4 + Fraction(2, 5), 16, 4 + Fraction(2, 5)))
    assert cremi_scores(seg, gt, mask=mask)["adapted_rand"] == adapted_rand(seg, gt, mask=mask)


def test_voi_hand_case():
    # object 1 split 3:1, object 2 whole; segment 9 covers object 2 and one voxel of object 1
    gt = np.array([1, 1, 1, 1, 2, 2, 0])
    seg = np.array([3, 3, 3, 9, 9, 9, 4])
    n = 6
    split = -(3 / n * log2(3 / 4) + 1 / n * log2(1 / 4) + 2 / n * log2(2 / 2))
    merge = -(3 / n * log2(3 / 3) + 1 / n * log2(1 / 3) + 2 / n * log2(2 / 3))
    assert voi(seg, gt) == pytest.approx((split, merge), abs=1e-15)


# --- tables -------------------------------------------------------------------------------------


def test_pair_counts_are_sorted_uint64_and_sum_exactly():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 5, size=(6, 7, 8)).astype(np.uint64) * np.uint64(2**61)
    seg = rng.integers(-3, 4, size=(6, 7, 8)).astype(np.int16)
    whole = count_pairs(seg, gt)
    assert whole.seg.dtype == whole.gt.dtype == np.uint64 and whole.count.dtype == np.int64
    assert whole.num_voxels == seg.size
    keys = list(zip(whole.seg.tolist(), whole.gt.tolist()))
    assert keys == sorted(set(keys))
    naive = Counter(zip(seg.ravel().astype(np.int64).astype(np.uint64).tolist(), gt.ravel().tolist()))
    assert dict(zip(keys, whole.count.tolist())) == dict(naive)
    parts = [count_pairs(seg[:2], gt[:2]), count_pairs(seg[2:5], gt[2:5]), count_pairs(seg[5:], gt[5:]),
             PairCounts.empty()]
    summed = sum_pair_counts(parts)
    for a, b in zip(summed.arrays().values(), whole.arrays().values()):
        np.testing.assert_array_equal(a, b)
    assert scores_from_counts(summed) == cremi_scores(seg, gt)


def test_bad_labels_and_all_background_are_named():
    with pytest.raises(SegmentError, match="integer"):
        count_pairs(np.ones(3, np.float32), np.ones(3, np.uint64))
    with pytest.raises(SegmentError, match="mask of shape"):
        count_pairs(np.ones(3, int), np.ones(3, int), mask=np.ones(4, bool))
    with pytest.raises(SegmentError, match="background"):
        adapted_rand(np.ones(4, int), np.zeros(4, int))


# --- against cremi_python's definition, pair by pair ---------------------------------------------


def cremi_pairs(seg, gt) -> float:
    """cremi_python's adapted Rand over explicit ordered pairs inside objects: segment-0 voxels pair
    with nothing, and each self-pair of one weighs 1/n (n: all voxels)."""
    seg, gt = seg.ravel(), gt.ravel()
    n = seg.size
    inside = np.flatnonzero(gt != 0)
    same_gt = same_seg = both = Fraction(0)
    for i in inside:
        for j in inside:
            g = gt[i] == gt[j]
            s = Fraction(1) if seg[i] == seg[j] and seg[i] != 0 else (Fraction(1, n) if i == j else Fraction(0))
            same_gt += g
            same_seg += s
            both += s if g else 0
    p, r = both / same_seg, both / same_gt
    return float(1 - 2 * p * r / (p + r))


@pytest.mark.parametrize("seed", range(3))
def test_matches_cremi_pairs_on_random_labels_with_zeros(seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 4, size=(3, 4, 4))
    seg = rng.integers(0, 4, size=(3, 4, 4))
    assert adapted_rand(seg, gt) == pytest.approx(cremi_pairs(seg, gt), abs=1e-12)


# --- how it differs from scikit-image -----------------------------------------------------------


def skimage_adapted_rand(seg, gt) -> float:
    """scikit-image's adapted_rand_error(gt, seg) from its documented formula, written independently:
    unordered pairs of distinct voxels with gt != 0; segment 0 is a segment like any other."""
    seg, gt = seg.ravel()[gt.ravel() != 0], gt.ravel()[gt.ravel() != 0]
    same_gt = same_seg = both = 0
    for i, j in combinations(range(seg.size), 2):
        g, s = gt[i] == gt[j], seg[i] == seg[j]
        same_gt += g
        same_seg += s
        both += g and s
    return 1 - both / (0.5 * same_gt + 0.5 * same_seg)


def test_differs_from_scikit_image_by_self_pairs_and_segment_zero():
    gt = np.array([1, 1, 2, 2])
    seg = np.array([7, 7, 7, 7])
    # scikit-image: pairs of distinct voxels: both 2, gt 2, seg 6: 1 - 2/4 = 1/2; CREMI (self-pairs): 1/3
    assert skimage_adapted_rand(seg, gt) == pytest.approx(0.5)
    assert adapted_rand(seg, gt) == pytest.approx(1 / 3)
    # segment 0 inside an object: scikit-image scores it as a segment (a merge), CREMI as unsegmented
    gt = np.array([1, 1, 1, 1, 2, 2])
    seg = np.array([0, 0, 3, 3, 0, 0])
    assert skimage_adapted_rand(seg, gt) == pytest.approx(1 - 3 / 7)  # both 3, gt 7, seg 7 pairs
    assert adapted_rand(seg, gt) == pytest.approx(arand(4 + Fraction(4, 6), 16 + 4, 4 + Fraction(4, 6)))


def test_self_pairs_matter_less_as_objects_grow_and_a_zero_boundary_is_no_merge_for_cremi():
    rng = np.random.default_rng(0)
    differences = []
    for size in (60, 600):
        gt = rng.integers(1, 4, size=size)
        seg = rng.integers(1, 4, size=size)
        differences.append(abs(adapted_rand(seg, gt) - skimage_adapted_rand(seg, gt)))
    assert differences[1] < differences[0] / 5
    # four objects, a boundary of segment 0 between the columns: scikit-image sees one segment
    # touching all four objects (merges); for CREMI those voxels are unsegmented
    gt = np.repeat(np.repeat(np.array([[1, 2], [3, 4]]), 4, axis=0), 4, axis=1)
    seg = gt.copy()
    seg[:, 3:5] = 0
    assert skimage_adapted_rand(seg, gt) > adapted_rand(seg, gt) + 0.05


def test_against_scikit_image_itself():
    from skimage import metrics  # a dev dependency: this comparison always runs
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 6, size=(5, 6, 7))
    seg = rng.integers(0, 6, size=(5, 6, 7))
    assert metrics.adapted_rand_error(gt, seg)[0] == pytest.approx(skimage_adapted_rand(seg, gt), abs=1e-12)
    inside = gt != 0
    expected = metrics.variation_of_information(gt[inside], seg[inside])  # [split, merge]
    assert voi(seg, gt) == pytest.approx(tuple(expected), abs=1e-6)
