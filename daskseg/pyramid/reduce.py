"""Downsampling of one block: the mean (intensities, affinities) and the non-zero mode (labels).

Both take the source voxels that a block of coarse voxels covers and return the coarse voxels.
Coarse voxels lie on the world grid of their voxel size, so the source may begin inside a coarse
voxel (``before`` source voxels of it lie outside the source) and end inside one: such a border
voxel is made of the source voxels it has, never of padding.

- ``downsample_mean``: the mean of the covered source voxels, computed in float64; integer data is
  rounded to the nearest integer (halves to even) and kept in its dtype (uint8 affinities stay
  uint8 on the same 0..255 scale).
- ``downsample_mode``: the most frequent non-zero label of the covered voxels; ties go to the
  smaller label, and a coarse voxel is 0 only where all its voxels are 0. Unlike the mean it never
  invents a label, and unlike striding (keeping one voxel in ``f``) a thin or small object survives
  as long as it is the largest object in some coarse voxel, and every coarse voxel is decided by
  all the voxels it covers, so levels do not shift boundaries by up to ``f - 1`` voxels. Ignoring 0
  (background, masked or unlabelled voxels) keeps sparse annotations visible at coarse levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: How a level is made from the one before it.
METHODS = ("mean", "mode")


def _geometry(
    shape: Sequence[int], factors: Sequence[int], before: Sequence[int] | None
) -> tuple[int, list[tuple[int, int]], tuple[int, ...]]:
    """``(channel dims, padding per spatial axis, coarse spatial shape)``."""
    dims = len(factors)
    if len(shape) < dims:
        raise ValueError(
            f"data of shape {tuple(shape)} has fewer than the {dims} spatial axes of factors {tuple(factors)}"
        )
    if any(int(f) < 1 for f in factors):
        raise ValueError(f"downsampling factors must be whole numbers of at least 1, got {tuple(factors)}")
    before = tuple(before) if before is not None else (0,) * dims
    if len(before) != dims or any(not 0 <= b < f for b, f in zip(before, factors)):
        raise ValueError(f"before {before} must be {dims} numbers in [0, factor) for factors {tuple(factors)}")
    spatial = shape[len(shape) - dims :]
    pads = [(int(b), int(-(b + n) % f)) for b, n, f in zip(before, spatial, factors)]
    coarse = tuple((b + n + a) // int(f) for (b, a), n, f in zip(pads, spatial, factors))
    return len(shape) - dims, pads, coarse


def _grouped(data: np.ndarray, factors: Sequence[int], pads: list[tuple[int, int]], channels: int) -> np.ndarray:
    """Zero-padded ``data`` reshaped to ``(*channels, c0, f0, c1, f1, ...)``."""
    padded = np.pad(data, [(0, 0)] * channels + pads) if any(a or b for a, b in pads) else data
    shape = list(padded.shape[:channels])
    for n, f in zip(padded.shape[channels:], factors):
        shape += [n // int(f), int(f)]
    return padded.reshape(shape)


def _valid_counts(n: int, before: int, after: int, factor: int) -> np.ndarray:
    """Along one axis: how many source voxels each coarse voxel has."""
    counts = np.full((before + n + after) // factor, factor, np.int64)
    counts[0] -= before
    counts[-1] -= after
    return counts


def downsample_mean(data: np.ndarray, factors: Sequence[int], before: Sequence[int] | None = None) -> np.ndarray:
    """The mean of every ``factors``-sized group of voxels of the last ``len(factors)`` axes.

    Args:
        data (np.ndarray): ``(*channels, *spatial)`` source voxels.
        factors (Sequence[int]): the downsampling factor per spatial axis.
        before (Sequence[int], optional): per spatial axis, how many voxels of the first coarse
            voxel lie before ``data`` (outside the source); default none. The last coarse voxel of
            an axis covers the rest of ``data`` whatever its length.

    Returns:
        np.ndarray: ``(*channels, *coarse)`` in ``data``'s dtype (integers rounded).
    """
    channels, pads, coarse = _geometry(data.shape, factors, before)
    sums = _grouped(data.astype(np.float64, copy=False), factors, pads, channels)
    for axis in range(sums.ndim - 1, channels, -2):  # the factor axes, one by one
        sums = sums.sum(axis=axis)
    spatial = data.shape[channels:]
    counts = np.ones((), np.int64)
    for (b, a), n, f in zip(pads, spatial, factors):
        counts = np.multiply.outer(counts, _valid_counts(n, b, a, int(f)))
    mean = sums / counts
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        return np.clip(np.rint(mean), info.min, info.max).astype(data.dtype)
    if data.dtype == bool:
        return mean >= 0.5
    return mean.astype(data.dtype)


def downsample_mode(data: np.ndarray, factors: Sequence[int], before: Sequence[int] | None = None) -> np.ndarray:
    """The most frequent non-zero label of every ``factors``-sized group of voxels (ties: the smaller
    label; 0 where the group is all 0). Arguments as for ``downsample_mean``."""
    channels, pads, coarse = _geometry(data.shape, factors, before)
    grouped = _grouped(data, factors, pads, channels)  # padding is 0: ignored like background
    dims = len(factors)
    order = (
        list(range(channels)) + [channels + 2 * i for i in range(dims)] + [channels + 2 * i + 1 for i in range(dims)]
    )
    rows = np.sort(grouped.transpose(order).reshape(-1, int(np.prod(factors))), axis=1)
    k = rows.shape[1]
    positions = np.broadcast_to(np.arange(k), rows.shape)
    starts = np.ones(rows.shape, bool)
    starts[:, 1:] = rows[:, 1:] != rows[:, :-1]
    run_start = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    run_length = np.where(rows != 0, positions - run_start + 1, 0)
    # the first position reaching the longest run ends the run of the smallest most frequent label
    best = np.argmax(run_length, axis=1)
    mode = rows[np.arange(len(rows)), best]
    return mode.reshape(data.shape[:channels] + coarse)


def downsample(
    data: np.ndarray, factors: Sequence[int], method: str, before: Sequence[int] | None = None
) -> np.ndarray:
    """``downsample_mean`` or ``downsample_mode`` by name (``'mean'`` or ``'mode'``)."""
    if method == "mean":
        return downsample_mean(data, factors, before)
    if method == "mode":
        return downsample_mode(data, factors, before)
    raise ValueError(f"unknown downsampling method {method!r}: use one of {METHODS}")
