"""Segmentation from affinities and CREMI's scores, on arrays small enough to check by hand."""

from collections import Counter
from itertools import product
from math import log2

import numpy as np
import pytest

from daskseg.errors import DaskSegError
from daskseg.segment import (
    NEAREST_NEIGHBORHOOD,
    SegmentError,
    adapted_rand,
    affinities_to_segmentation,
    agglomerate,
    connected_components,
    cremi_scores,
    region_adjacency,
    relabel_consecutive,
    seeded_watershed,
    voi,
    watershed_fragments,
)
from daskseg.synth import make_sample


def affinities_from_labels(labels: np.ndarray) -> np.ndarray:
    """Ground-truth affinities, gunpowder's convention: channel a at p links p and p - e_a."""
    affs = np.zeros((labels.ndim,) + labels.shape, np.float32)
    for axis in range(labels.ndim):
        head = tuple(slice(1, None) if a == axis else slice(None) for a in range(labels.ndim))
        tail = tuple(slice(0, -1) if a == axis else slice(None) for a in range(labels.ndim))
        affs[(axis,) + head] = labels[head] == labels[tail]
    return affs


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when a and b group the voxels identically, whatever the ids."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


# --- evaluation ---------------------------------------------------------------------------------


def test_identical_segmentations_score_zero_whatever_the_ids():
    rng = np.random.default_rng(0)
    gt = rng.integers(1, 6, size=(4, 5, 6)).astype(np.uint64)
    seg = gt * np.uint64(2**40) + np.uint64(7)  # same partition, huge ids
    assert voi(seg, gt) == (0.0, 0.0)
    assert adapted_rand(seg, gt) == 0.0


def test_splitting_an_object_in_halves_costs_one_bit_of_split():
    gt = np.ones((2, 4, 4), np.uint64)
    seg = gt.copy()
    seg[:, :, 2:] = 2
    split, merge = voi(seg, gt)
    assert split == pytest.approx(1.0, abs=1e-12)
    assert merge == pytest.approx(0.0, abs=1e-12)
    # pairs: gt has n², seg n²/2, both n²/2 -> precision 1, recall 1/2, F = 2/3
    assert adapted_rand(seg, gt) == pytest.approx(1 / 3)


def test_merging_two_equal_objects_costs_one_bit_of_merge():
    gt = np.ones((2, 4, 4), np.uint64)
    gt[:, :, 2:] = 2
    seg = np.full_like(gt, 5)
    split, merge = voi(seg, gt)
    assert merge == pytest.approx(1.0, abs=1e-12)
    assert split == pytest.approx(0.0, abs=1e-12)
    assert adapted_rand(seg, gt) == pytest.approx(1 / 3)


def test_uneven_split_matches_the_binary_entropy():
    gt = np.ones(4, np.uint64)
    seg = np.array([1, 1, 1, 2], np.uint64)
    expected = -(0.75 * log2(0.75) + 0.25 * log2(0.25))
    assert voi(seg, gt)[0] == pytest.approx(expected)


def test_ground_truth_background_is_ignored():
    gt = np.array([0, 0, 0, 1, 1, 2, 2], np.uint64)
    seg = np.array([9, 8, 7, 1, 1, 2, 2], np.uint64)  # disagrees only where gt is 0
    assert voi(seg, gt) == (0.0, 0.0)
    assert adapted_rand(seg, gt) == 0.0
    # counting the background, the same arrays disagree
    assert sum(voi(seg, gt, ignore_gt=())) > 0


def _voi_brute(seg, gt):
    seg, gt = seg.ravel().tolist(), gt.ravel().tolist()
    keep = [i for i, g in enumerate(gt) if g != 0]
    n = len(keep)
    joint = Counter((seg[i], gt[i]) for i in keep)
    ps = Counter(seg[i] for i in keep)
    pg = Counter(gt[i] for i in keep)
    split = -sum(c / n * log2(c / pg[g]) for (s, g), c in joint.items())
    merge = -sum(c / n * log2(c / ps[s]) for (s, g), c in joint.items())
    return split, merge


def _adapted_rand_brute(seg, gt):
    """1 - F-score over ordered voxel pairs (self-pairs included) inside gt objects, cremi_python's way:
    a voxel of segment 0 pairs with no other, and its self-pair weighs 1/n (n: all voxels)."""
    seg, gt = seg.ravel(), gt.ravel()
    n = seg.size
    idx = np.flatnonzero(gt != 0)
    same_gt = same_seg = both = 0.0
    for i, j in product(idx, idx):
        g = gt[i] == gt[j]
        s = 1.0 if seg[i] == seg[j] and seg[i] != 0 else (1 / n if i == j else 0.0)
        same_gt += g
        same_seg += s
        both += s if g else 0.0
    precision, recall = both / same_seg, both / same_gt
    return 1 - 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(4))
def test_scores_match_brute_force_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 4, size=(3, 4, 5)).astype(np.uint64)
    seg = rng.integers(0, 5, size=(3, 4, 5)).astype(np.uint32)
    assert voi(seg, gt) == pytest.approx(_voi_brute(seg, gt))
    assert adapted_rand(seg, gt) == pytest.approx(_adapted_rand_brute(seg, gt))


def test_cremi_scores_reports_the_three_numbers():
    gt = np.ones((2, 4, 4), np.uint64)
    seg = gt.copy()
    seg[:, :, 2:] = 2
    scores = cremi_scores(seg, gt)
    assert scores["voi_split"] == pytest.approx(1.0)
    assert scores["voi"] == pytest.approx(scores["voi_split"] + scores["voi_merge"])
    assert scores["adapted_rand"] == pytest.approx(1 / 3)


def test_evaluation_errors_name_the_problem():
    with pytest.raises(SegmentError, match="shape"):
        voi(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises(SegmentError, match="ignored"):
        voi(np.ones(4, int), np.zeros(4, int))
    with pytest.raises(SegmentError, match="background"):
        adapted_rand(np.ones(4, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="integer"):
        voi(np.ones(4, float), np.ones(4, int))
    assert issubclass(SegmentError, DaskSegError)


# --- flooding -----------------------------------------------------------------------------------


def _levels_from_node_values(values: np.ndarray) -> list[np.ndarray]:
    """Edge levels: the larger value of the two voxels an edge joins."""
    levels = []
    for axis in range(values.ndim):
        lv = np.zeros_like(values)
        head = tuple(slice(0, -1) if a == axis else slice(None) for a in range(values.ndim))
        tail = tuple(slice(1, None) if a == axis else slice(None) for a in range(values.ndim))
        lv[head] = np.maximum(values[head], values[tail])
        levels.append(lv)
    return levels


def test_seeded_watershed_stops_at_a_wall_and_splits_plateaus_halfway():
    values = np.zeros((5, 7), np.int32)
    values[:, 3] = 9
    seeds = np.zeros((5, 7), np.int64)
    seeds[2, 0], seeds[4, 6] = 1, 2
    out = seeded_watershed(seeds, _levels_from_node_values(values))
    assert (out[:, :3] == 1).all() and (out[:, 4:] == 2).all()

    flat = np.zeros((1, 10), np.int32)
    seeds = np.zeros((1, 10), np.int64)
    seeds[0, 0], seeds[0, 9] = 1, 2
    out = seeded_watershed(seeds, _levels_from_node_values(flat))
    assert out.tolist() == [[1] * 5 + [2] * 5]


def test_seeded_watershed_respects_max_level_and_blocked_axes():
    values = np.zeros((3, 5), np.int32)
    values[:, 2] = 9
    seeds = np.zeros((3, 5), np.int64)
    seeds[1, 0] = 1
    out = seeded_watershed(seeds, _levels_from_node_values(values), max_level=5)
    assert (out[:, :2] == 1).all() and (out[:, 2:] == 0).all()
    # growth along axis 1 only: the seed's row, nothing else
    out = seeded_watershed(seeds, [None, _levels_from_node_values(values)[1]])
    assert (out[1] == 1).all() and (out[[0, 2]] == 0).all()


# --- segmentation -------------------------------------------------------------------------------


def test_connected_components_cut_at_low_affinities():
    affs = np.zeros((3, 1, 1, 6), np.float32)
    affs[2, 0, 0] = [0.0, 0.9, 0.9, 0.1, 0.9, 0.9]  # x affinity of voxel x with x - 1
    labels = connected_components(affs, threshold=0.5)
    assert labels.dtype == np.uint64
    assert labels.ravel().tolist() == [1, 1, 1, 2, 2, 2]


def test_ground_truth_affinities_give_back_the_ground_truth():
    _, gt = make_sample("small", seed=2)
    affs = affinities_from_labels(gt)
    assert same_partition(connected_components(affs), gt)
    seg = affinities_to_segmentation(affs, voxel_size=(40, 4, 4), merge_threshold=0.5)
    assert seg.dtype == np.uint64 and seg.shape == gt.shape and seg.min() >= 1
    assert same_partition(seg, gt)


def test_agglomerated_watershed_survives_noise_that_merges_components():
    _, gt = make_sample("small", seed=2)
    rng = np.random.default_rng(0)
    affs = np.clip(affinities_from_labels(gt) + rng.normal(0, 0.2, (3,) + gt.shape), 0, 1).astype(np.float32)
    # about 1% of the edges across boundaries leak above 0.5: components merge nearly everything
    assert cremi_scores(connected_components(affs), gt)["voi_merge"] > 1.0
    scores = cremi_scores(affinities_to_segmentation(affs, voxel_size=(40, 4, 4), merge_threshold=0.5), gt)
    assert scores["voi"] < 0.05 and scores["adapted_rand"] < 0.01


def _two_discs_with_a_bridge() -> np.ndarray:
    """Two discs of one (wrongly merged) object, joined by a one-pixel bridge."""
    yy, xx = np.mgrid[:21, :41]
    discs = ((yy - 10) ** 2 + (xx - 10) ** 2 <= 64) | ((yy - 10) ** 2 + (xx - 30) ** 2 <= 64)
    bridge = (yy == 10) & (xx >= 10) & (xx <= 30)
    return (discs | bridge)[None].astype(np.uint64)


def test_watershed_splits_objects_at_a_leaky_neck_where_components_cannot():
    mask = _two_discs_with_a_bridge()
    affs = affinities_from_labels(mask)
    assert len(np.unique(connected_components(affs)[mask == 1])) == 1
    fragments = watershed_fragments(affs, voxel_size=(1, 1, 1), fragments_in_xy=True, seed_radius=4)
    left, right = fragments[0, 10, 10], fragments[0, 10, 30]
    assert left != right
    inside = mask[0] == 1
    assert (fragments[0][inside] == left).sum() > 150 and (fragments[0][inside] == right).sum() > 150


def test_unfilled_fragments_leave_boundaries_unlabelled():
    gt = np.ones((1, 8, 8), np.uint64)
    gt[:, :, 4:] = 2
    affs = affinities_from_labels(gt)
    affs[:, :, :, 3:6] = 0.0  # a band of low affinity, three voxels wide
    filled = watershed_fragments(affs, voxel_size=(1, 1, 1), fragments_in_xy=True)
    unfilled = watershed_fragments(affs, voxel_size=(1, 1, 1), fragments_in_xy=True, fill=False)
    assert (filled > 0).all()
    assert (unfilled[:, :, 3:5] == 0).all() and (unfilled[:, :, :3] > 0).all() and (unfilled[:, :, 6:] > 0).all()


def _fragments_and_leak():
    """A1/A2 (one object, strong 3-edge contact), B beside both; A1-B leaks (0.8), A2-B does not."""
    fragments = np.array([[[1, 1, 1, 3, 3, 3]] * 2 + [[2, 2, 2, 3, 3, 3]] * 2], np.uint64)
    affs = np.ones((3,) + fragments.shape, np.float32)
    affs[1, 0, 2, :3] = 0.9  # y edges between rows 1 and 2, under A1/A2
    affs[1, 0, 2, 3:] = 1.0
    affs[2, 0, :2, 3] = 0.8  # x edges A1 | B
    affs[2, 0, 2:, 3] = 0.0  # x edges A2 | B
    return fragments, affs


def test_region_adjacency_sums_affinities_per_touching_pair():
    fragments, affs = _fragments_and_leak()
    edges, sums, counts = region_adjacency(fragments, affs)
    found = {tuple(e): (s, c) for e, s, c in zip(edges.tolist(), sums.tolist(), counts.tolist())}
    assert found == {(1, 2): (pytest.approx(2.7), 3), (1, 3): (pytest.approx(1.6), 2), (2, 3): (0.0, 2)}


def test_hierarchical_agglomeration_re_averages_after_each_merge():
    fragments, affs = _fragments_and_leak()
    static = agglomerate(fragments, affs, 0.5, hierarchical=False)
    assert len(np.unique(static)) == 1  # the leak (0.8) joins everything
    merged = agglomerate(fragments, affs, 0.5)
    # A1+A2 first (0.9); then A-B averages (0.8*2 + 0*2)/4 = 0.4 < 0.5
    assert merged[0, 0, 0] == merged[0, 3, 0] != merged[0, 0, 5]
    assert len(np.unique(merged)) == 2


def test_relabel_consecutive_keeps_zero_and_order():
    small = np.array([0, 7, 3, 7, 0, 9], np.uint64)
    large = small * np.uint64(2**50)
    assert relabel_consecutive(small).tolist() == [0, 2, 1, 2, 0, 3]
    assert relabel_consecutive(large).tolist() == [0, 2, 1, 2, 0, 3]


def test_affinities_must_fit_the_neighbourhood():
    with pytest.raises(SegmentError, match="3 offsets"):
        connected_components(np.ones((2, 4, 4, 4), np.float32))
    with pytest.raises(SegmentError, match="nearest-neighbour"):
        watershed_fragments(np.ones((1, 4, 4, 4), np.float32), neighborhood=[(-2, 0, 0)], fragments_in_xy=False)
    with pytest.raises(SegmentError, match="voxel_size"):
        watershed_fragments(np.ones((3, 4, 4, 4), np.float32), voxel_size=(1, 1))
    assert NEAREST_NEIGHBORHOOD == ((-1, 0, 0), (0, -1, 0), (0, 0, -1))
