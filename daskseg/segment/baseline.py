"""The classical baseline a network has to beat: smoothed raw, thresholded, connected components.

Membranes are dark in EM, so the voxels brighter than a threshold are cell interiors:
smooth the raw in-plane (sections are imaged one by one), threshold it, label the 3-D
connected components (face connectivity), drop the small ones (noise, organelles), and give every
other voxel (membranes, dropped bits) to the nearest remaining component, in nm. The best
threshold of a small sweep, scored against ground truth, is an oracle choice: the baseline gets
its best chance.

    threshold, seg, scores = best_threshold_segmentation(raw, labels, voxel_size=(40, 4, 4))

numpy and scipy only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from ..errors import SegmentError
from .agglomeration import relabel_consecutive
from .evaluate import cremi_scores

logger = logging.getLogger(__name__)

THRESHOLDS = tuple(float(t) for t in np.round(np.linspace(0.3, 0.85, 12), 3))
"""The default sweep: raw intensities as a fraction of the range (0-255 for uint8)."""


def smoothed_intensities(raw: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """``raw`` (z, y, x) in [0, 1] (uint8 / 255, other types / their maximum), Gaussian-smoothed in-plane."""
    raw = np.asarray(raw)
    if raw.ndim != 3:
        raise SegmentError(f"the baseline segments 3-D raw (z, y, x), got shape {raw.shape}")
    scale = 255.0 if raw.dtype == np.uint8 else max(float(raw.max()), 1e-12)
    out = raw.astype(np.float32) / np.float32(scale)
    if sigma > 0:
        ndi.gaussian_filter(out, sigma=(0.0, sigma, sigma), output=out)
    return out


def threshold_segmentation(
    smoothed: np.ndarray,
    threshold: float,
    *,
    min_size: int = 100,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Segment smoothed intensities (see :func:`smoothed_intensities`) at ``threshold``: uint64 ids 1..n.

    Args:
        smoothed: intensities in [0, 1], membranes dark.
        threshold: voxels brighter than this are object interiors.
        min_size: components of fewer voxels are dropped (their voxels go to a neighbour).
        voxel_size: nm per voxel (z, y, x), for the distance to the nearest component.

    Every voxel gets an id; with no component left, the whole volume is one segment.
    """
    components, _ = ndi.label(smoothed > threshold)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    small = sizes < min_size
    components[small[components]] = 0
    if not components.any():
        return np.ones(smoothed.shape, np.uint64)
    index = ndi.distance_transform_edt(
        components == 0, sampling=tuple(float(v) for v in voxel_size), return_distances=False, return_indices=True
    )
    return relabel_consecutive(components[tuple(index)])


def best_threshold_segmentation(
    raw: np.ndarray,
    labels: np.ndarray,
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    sigma: float = 1.0,
    min_size: int = 100,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    mask: np.ndarray | None = None,
) -> tuple[float, np.ndarray, dict[str, float]]:
    """The classical baseline at its best threshold: ``(threshold, segmentation, CREMI scores)``.

    Args:
        raw: raw (z, y, x), membranes dark.
        labels: ground truth (0 ignored) the thresholds are scored against (lowest VOI wins).
        thresholds: the sweep, as fractions of the intensity range.
        sigma: in-plane Gaussian smoothing, in voxels.
        min_size: smallest component kept, in voxels.
        voxel_size: nm per voxel (z, y, x).
        mask: voxels to score (all by default).
    """
    if np.shape(raw) != np.shape(labels):
        raise SegmentError(f"raw shape {np.shape(raw)} differs from the labels' {np.shape(labels)}")
    if not len(thresholds):
        raise SegmentError("the baseline needs at least one threshold to try")
    smoothed = smoothed_intensities(raw, sigma)
    best: tuple[float, np.ndarray, dict[str, float]] | None = None
    for t in thresholds:
        seg = threshold_segmentation(smoothed, float(t), min_size=min_size, voxel_size=voxel_size)
        scores = cremi_scores(seg, labels, mask=mask)
        logger.debug("baseline threshold %.3f: VOI %.3f", t, scores["voi"])
        if best is None or scores["voi"] < best[2]["voi"]:
            best = (float(t), seg, scores)
    assert best is not None
    return best
