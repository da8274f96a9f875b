"""Affinity scores, the raw-intensity baseline and the section figure of the demo report."""

from __future__ import annotations

import numpy as np
import pytest

from daskseg.report import best_threshold_scores, binary_scores, gt_affinities, plot_section, raw_affinities


def test_binary_scores_hand_counted():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)  # tp=2, fn=1, fp=1, tn=4
    s = binary_scores(pred, truth)
    assert s["accuracy"] == pytest.approx(6 / 8)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["boundary_f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 1))  # tn=4 for the cut class
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_binary_scores_reject_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        binary_scores(np.zeros(3, bool), np.zeros(4, bool))


def test_raw_affinities_take_the_darker_neighbour():
    raw = np.array([[[255, 0, 255]]], np.uint8)  # (1, 1, 3): a dark voxel in the middle of a row
    affs = raw_affinities(raw)
    # x-affinity at p links p and p - 1: voxel 0 has no left neighbour (0), 1 and 2 touch the dark voxel
    np.testing.assert_array_equal(affs[2, 0, 0], [0.0, 0.0, 0.0])
    bright = raw_affinities(np.full((1, 1, 3), 255, np.uint8))
    np.testing.assert_array_equal(bright[2, 0, 0], [0.0, 1.0, 1.0])


def test_gt_affinities_of_two_objects():
    labels = np.array([[[1, 1, 2]]], np.uint64)
    affs = gt_affinities(labels)
    np.testing.assert_array_equal(affs[2, 0, 0], [False, True, False])
    assert not affs[0].any() and not affs[1].any()  # no neighbours in z and y


def test_best_threshold_finds_the_separating_value():
    truth = np.array([0, 0, 1, 1], bool)
    scores = np.array([0.1, 0.3, 0.6, 0.9])
    t, s = best_threshold_scores(scores, truth, thresholds=[0.2, 0.5, 0.7])
    assert t == 0.5 and s["f1"] == 1.0 and s["macro_f1"] == 1.0
    # by positive-class F1 alone, "everything connected" (threshold 0.2 keeps 3 of 4) is not best either
    t_f1, _ = best_threshold_scores(scores, truth, thresholds=[0.2, 0.5], criterion="f1")
    assert t_f1 == 0.5


def test_plot_section_writes_a_png(tmp_path):
    raw = np.random.default_rng(0).integers(0, 255, (4, 16, 16), dtype=np.uint8)
    affs = np.random.default_rng(1).random((3, 4, 16, 16), dtype=np.float32)
    path = plot_section(raw, affs, affs, tmp_path / "s.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # with labels and a segmentation: two more panels, so a wider image
    labels = np.repeat(np.arange(4), 256).reshape(4, 16, 16)
    wide = plot_section(raw, affs, affs, tmp_path / "w.png", labels=labels, segmentation=labels + 1)
    import matplotlib.image

    assert matplotlib.image.imread(wide).shape[1] > matplotlib.image.imread(path).shape[1] * 1.5
