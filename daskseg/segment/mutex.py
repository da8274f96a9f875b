"""Mutex watershed (Wolf et al. 2018) on affinities with any neighbourhood, through the
``mwatershed`` package: attractive and repulsive edges in one greedy pass, so long-range
affinities can keep apart two objects whose nearest-neighbour boundary leaks.

    seg = mutex_watershed(affs, neighborhood=[[-1, 0, 0], [0, -1, 0], [0, 0, -1], [0, -9, 0], [0, 0, -9]])

Affinity ``a`` of a channel becomes the edge weight ``a - bias``: above the bias an edge
attracts, below it repels (the mutex). Long-range channels usually get a higher bias (split
biased, as mwatershed's documentation advises).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..errors import SegmentError
from .agglomeration import relabel_consecutive
from .graph import check_affinities, nearest_channels
from .watershed import fill_unlabelled

logger = logging.getLogger(__name__)


def mutex_watershed(
    affs: np.ndarray,
    neighborhood: Sequence[Sequence[int]],
    bias: float = 0.5,
    long_range_bias: float = 0.5,
    min_size: int = 0,
) -> np.ndarray:
    """Segment affinities ``(channels, *spatial)`` by mutex watershed into uint64 ids 1..n.

    Args:
        affs (np.ndarray): affinities in [0, 1], one channel per offset of ``neighborhood``
            (gunpowder's convention: channel ``c`` at ``p`` links ``p`` and ``p + offset_c``).
        neighborhood (Sequence[Sequence[int]]): the offsets; must hold a nearest-neighbour
            offset along every axis (they keep every object connected).
        bias (float): subtracted from the nearest-neighbour affinities.
        long_range_bias (float): subtracted from the other (long-range) affinities.
        min_size (int): segments of fewer voxels are dissolved and their voxels given to the
            neighbouring segment across the strongest nearest-neighbour edge (0: keep all).

    Returns:
        np.ndarray: uint64 ids 1..n, of the affinities' spatial shape.

    Raises:
        SegmentError: the channels do not match the neighbourhood, or it lacks a
            nearest-neighbour offset along some axis.
    """
    import mwatershed

    affs = np.asarray(affs)
    offsets = check_affinities(affs, neighborhood)
    nearest = nearest_channels(offsets)
    dims = affs.ndim - 1
    axes = {next(a for a, o in enumerate(offsets[c]) if o) for c in nearest}
    if len(axes) < dims:
        raise SegmentError(
            f"the mutex watershed needs a nearest-neighbour offset along every axis (e.g. {[-1, 0, 0]}); "
            f"the neighbourhood is {[list(o) for o in offsets]}"
        )
    for name, value in (("bias", bias), ("long_range_bias", long_range_bias)):
        if not 0.0 <= float(value) <= 1.0:
            raise SegmentError(f"the mutex watershed's {name} must lie in [0, 1], got {value}")
    biases = np.array([bias if c in nearest else long_range_bias for c in range(len(offsets))], np.float64)
    weights = affs.astype(np.float64) - biases.reshape((-1,) + (1,) * dims)
    if np.isnan(weights).any():
        raise SegmentError("the affinities hold NaN: the mutex watershed cannot order their edges")
    labels = np.asarray(mwatershed.agglom(weights, [list(o) for o in offsets]), np.uint64)
    alone = labels == 0  # mwatershed leaves voxels that no attractive edge joined at 0
    if alone.any():
        labels[alone] = int(labels.max()) + 1 + np.arange(int(alone.sum()), dtype=np.uint64)
    if min_size > 1:
        ids, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        small = sizes[inverse.ravel()].reshape(labels.shape) < min_size
        if small.all():
            logger.warning("mutex watershed: every segment is smaller than %d voxels; keeping them", min_size)
        elif small.any():
            labels = np.where(small, np.uint64(0), labels)
            nn_affs = affs[list(nearest)]
            labels = fill_unlabelled(labels, nn_affs, [offsets[c] for c in nearest])
    return relabel_consecutive(labels)
