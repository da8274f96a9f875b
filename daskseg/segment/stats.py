"""Statistics of a label volume, to compare synthetic data with real EM (``daskseg info --stats``).

All are in-plane, section by section, as EM is imaged and annotated: the calibre of the objects
(the equivalent diameter of each object's cross-section in each section it appears in,
``2 * sqrt(area / pi)``), the fraction of voxels on a boundary (their label differs from a y or x
neighbour), and the fraction of voxels in cross-sections thinner than 200 nm (axons in CREMI).

An object cut twice in one section (a branch leaving and coming back) counts as one cross-section
of the summed area; in neuropil that is rare enough not to move the percentiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SegmentError

PERCENTILES = (5, 25, 50, 75, 95)


def label_statistics(
    labels: Any,
    voxel_size: Sequence[float],
    *,
    thin: float = 200.0,
    percentiles: Sequence[float] = PERCENTILES,
) -> dict[str, Any]:
    """Calibre distribution, boundary fraction and thin fraction of ``labels`` (z, y, x); 0 is background.

    Args:
        labels: integer labels, anything indexable by section (numpy array, zarr array).
        voxel_size: nm per voxel (z, y, x); the diameters use y and x.
        thin: the diameter (nm) under which a cross-section counts as thin.
        percentiles: which percentiles of the per-object, per-section diameters to give.

    Returns a dict: ``objects`` (distinct ids), ``sections``, ``cross_sections`` (object-section
    pairs), ``diameter_percentiles_nm`` ({percentile: nm}), ``mean_diameter_nm``,
    ``boundary_fraction`` and ``thin_fraction`` (of the labelled voxels), ``thin_nm``.
    """
    if len(getattr(labels, "shape", ())) != 3:
        raise SegmentError(f"label statistics need a 3-D (z, y, x) volume, got shape {getattr(labels, 'shape', None)}")
    if not np.issubdtype(np.dtype(labels.dtype), np.integer):
        raise SegmentError(f"label statistics need integer labels, got dtype {labels.dtype}")
    pixel_area = float(voxel_size[-2]) * float(voxel_size[-1])
    diameters: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    boundary = 0
    labelled = 0
    ids: set[int] = set()
    for z in range(labels.shape[0]):
        section = np.asarray(labels[z])
        present, area = np.unique(section, return_counts=True)
        keep = present != 0
        present, area = present[keep], area[keep]
        ids.update(present.tolist())
        diameters.append(2.0 * np.sqrt(area * pixel_area / np.pi))
        counts.append(area)
        on = np.zeros(section.shape, bool)
        for axis in (0, 1):
            lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(2))
            hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(2))
            change = section[lo] != section[hi]
            on[lo] |= change
            on[hi] |= change
        boundary += int(np.count_nonzero(on & (section != 0)))
        labelled += int(area.sum())
    d = np.concatenate(diameters) if diameters else np.zeros(0)
    n = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    return {
        "objects": len(ids),
        "sections": int(labels.shape[0]),
        "cross_sections": int(len(d)),
        "diameter_percentiles_nm": {float(q): float(v) for q, v in zip(percentiles, np.percentile(d, percentiles))}
        if len(d)
        else {},
        "mean_diameter_nm": float(d.mean()) if len(d) else 0.0,
        "boundary_fraction": boundary / labelled if labelled else 0.0,
        "thin_fraction": float(n[d < thin].sum()) / labelled if labelled else 0.0,
        "thin_nm": float(thin),
    }


def format_statistics(stats: dict[str, Any]) -> str:
    """:func:`label_statistics` as the lines ``daskseg info --stats`` prints."""
    pct = ", ".join(f"p{q:g} {v:.0f}" for q, v in stats["diameter_percentiles_nm"].items())
    return "\n".join(
        [
            f"objects:           {stats['objects']} in {stats['sections']} sections "
            f"({stats['cross_sections']} cross-sections)",
            f"calibre (nm):      {pct}; mean {stats['mean_diameter_nm']:.0f}",
            f"boundary fraction: {stats['boundary_fraction']:.3f}",
            f"thinner than {stats['thin_nm']:.0f} nm: {stats['thin_fraction']:.3f} of the labelled voxels",
        ]
    )
