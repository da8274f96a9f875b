"""Per-block downsampling against hand-computed small arrays: the mean (partial border voxels made
of the voxels they have, integers rounded) and the non-zero mode (ties to the smaller label)."""

from __future__ import annotations

import numpy as np
import pytest

from daskseg.pyramid import downsample, downsample_mean, downsample_mode


def test_mean_of_pairs_in_plane():
    data = np.array([[[0.0, 2.0, 4.0, 8.0], [2.0, 4.0, 0.0, 0.0]]], np.float32)  # (1, 2, 4)
    out = downsample_mean(data, (1, 2, 2))
    np.testing.assert_array_equal(out, [[[2.0, 3.0]]])
    assert out.dtype == np.float32


def test_mean_of_partial_border_voxels_uses_only_the_voxels_there():
    # 1-D: [1 | 2 3 | 4 5 | 6]: one voxel before the data belongs to the first coarse voxel
    data = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]])
    out = downsample_mean(data, (1, 1, 2), before=(0, 0, 1))
    np.testing.assert_array_equal(out, [[[1.0, 2.5, 4.5, 6.0]]])
    # and a shorter last voxel: [1 2 3 | 4 5 6 | 7]
    out = downsample_mean(np.arange(1.0, 8.0)[None, None], (1, 1, 3))
    np.testing.assert_array_equal(out, [[[2.0, 5.0, 7.0]]])


def test_mean_keeps_integers_rounded_half_to_even_and_channels_apart():
    affs = np.array([[[[0, 1, 255, 255]]], [[[3, 4, 10, 13]]]], np.uint8)  # (2 channels, 1, 1, 4)
    out = downsample_mean(affs, (1, 1, 2))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[[0, 255]]], [[[4, 12]]]])  # 0.5 -> 0, 3.5 -> 4, 11.5 -> 12


def test_mean_in_all_axes_equals_the_block_means():
    rng = np.random.default_rng(0)
    data = rng.random((4, 6, 8))
    expected = data.reshape(2, 2, 3, 2, 4, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(downsample_mean(data, (2, 2, 2)), expected, rtol=1e-12)


def test_mode_is_the_most_frequent_non_zero_label():
    labels = np.array(
        [[[5, 5, 7, 0], [5, 7, 0, 0]], [[3, 3, 9, 8], [3, 4, 8, 9]]], np.uint64
    )  # (2, 2, 4), factors (1, 2, 2)
    out = downsample_mode(labels, (1, 2, 2))
    # 5 5 5 7 -> 5; 7 0 0 0 -> 7 (zeros ignored); 3 3 3 4 -> 3; 9 8 8 9 -> tie -> 8
    np.testing.assert_array_equal(out, [[[5, 7]], [[3, 8]]])
    assert out.dtype == np.uint64


def test_mode_is_zero_only_where_all_are_zero_and_keeps_big_ids_exact():
    big = np.uint64(2**63 + 12345)
    labels = np.zeros((2, 2, 4), np.uint64)
    labels[1, 1, 3] = big
    labels[0, :, 0] = 2
    labels[0, 0, 1] = 2**40
    labels[1, 0, 1] = 2**40
    out = downsample_mode(labels, (2, 2, 2))
    # first 2x2x2: 2, 2, 2**40, 2**40 -> tie -> 2; second: one `big`, the rest 0 -> big
    np.testing.assert_array_equal(out, np.array([[[2, big]]], np.uint64))
    assert downsample_mode(np.zeros((2, 2, 2), np.int32), (2, 2, 2)).tolist() == [[[0]]]


def test_mode_of_partial_border_voxels():
    labels = np.array([[[4, 6, 6, 7, 1]]], np.uint32)
    # coarse voxels: [pad 4 | 6 6 | 7 1]: one voxel outside before
    np.testing.assert_array_equal(downsample_mode(labels, (1, 1, 2), before=(0, 0, 1)), [[[4, 6, 1]]])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown downsampling method 'median'"):
        downsample(np.zeros((2, 2, 2)), (2, 2, 2), "median")
    with pytest.raises(ValueError, match="before"):
        downsample_mean(np.zeros((2, 2, 2)), (2, 2, 2), before=(2, 0, 0))
    with pytest.raises(ValueError, match="at least 1"):
        downsample_mean(np.zeros((2, 2, 2)), (0, 2, 2))
