"""Statistics of labels and raw, to compare synthetic data with real EM (``daskseg info --stats``).

All are in-plane, section by section, as EM is imaged and annotated: the calibre of the objects
(the equivalent diameter of each object's cross-section in each section it appears in,
``2 * sqrt(area / pi)``), the fraction of voxels on a boundary (their label differs from a y or x
neighbour), and the fraction of voxels in cross-sections thinner than 200 nm (axons in CREMI).

An object cut twice in one section (a branch leaving and coming back) counts as one cross-section
of the summed area; in neuropil that is rare enough not to move the percentiles. For raw: brightness,
contrast, and how they change from section to section (flat sections hint at missing ones).

Both read a volume section by section, so a reader that yields sections keeps memory to one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import SegmentError

PERCENTILES = (5, 25, 50, 75, 95)


def _sections(volume: Iterable[np.ndarray], what: str) -> Iterator[np.ndarray]:
    """The 2-D sections of ``volume`` (a 3-D array, or any iterable of sections)."""
    if isinstance(volume, np.ndarray) and volume.ndim != 3:
        raise SegmentError(f"{what} statistics need a 3-D (z, y, x) volume, got shape {volume.shape}")
    for section in volume:
        section = np.asarray(section)
        if section.ndim != 2:
            raise SegmentError(f"{what} statistics need 2-D sections (y, x), got shape {section.shape}")
        yield section


def _in_plane_boundary(section: np.ndarray) -> np.ndarray:
    """Pixels whose label differs from a y or x neighbour (both sides of each change)."""
    on = np.zeros(section.shape, bool)
    for axis in (0, 1):
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(2))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(2))
        change = section[lo] != section[hi]
        on[lo] |= change
        on[hi] |= change
    return on


def label_statistics(
    labels: Iterable[np.ndarray],
    voxel_size: Sequence[float],
    *,
    thin: float = 200.0,
    percentiles: Sequence[float] = PERCENTILES,
) -> dict[str, Any]:
    """Calibre distribution, boundary fraction and thin fraction of ``labels``; 0 is background.

    Args:
        labels: integer labels (z, y, x): a 3-D array, or any iterable of its sections (a
            reader that yields one section at a time keeps memory to a section).
        voxel_size: nm per voxel (z, y, x); the diameters use y and x.
        thin: the diameter (nm) under which a cross-section counts as thin.
        percentiles: which percentiles of the per-object, per-section diameters to give.

    Returns a dict: ``objects`` (distinct ids), ``sections``, ``cross_sections`` (object-section
    pairs), ``diameter_percentiles_nm`` ({percentile: nm}), ``mean_diameter_nm``,
    ``boundary_fraction`` and ``thin_fraction`` (of the labelled voxels), ``thin_nm``.
    """
    pixel_area = float(voxel_size[-2]) * float(voxel_size[-1])
    diameters: list[np.ndarray] = []
    areas: list[np.ndarray] = []
    boundary = labelled = sections = 0
    ids: set[int] = set()
    for section in _sections(labels, "label"):
        if not np.issubdtype(section.dtype, np.integer):
            raise SegmentError(f"label statistics need integer labels, got dtype {section.dtype}")
        present, area = np.unique(section, return_counts=True)
        keep = present != 0
        present, area = present[keep], area[keep]
        ids.update(present.tolist())
        diameters.append(2.0 * np.sqrt(area * pixel_area / np.pi))
        areas.append(area)
        boundary += int(np.count_nonzero(_in_plane_boundary(section) & (section != 0)))
        labelled += int(area.sum())
        sections += 1
    d = np.concatenate(diameters) if diameters else np.zeros(0)
    n = np.concatenate(areas) if areas else np.zeros(0, np.int64)
    return {
        "objects": len(ids),
        "sections": sections,
        "cross_sections": int(len(d)),
        "diameter_percentiles_nm": (
            {float(q): float(v) for q, v in zip(percentiles, np.percentile(d, percentiles))} if len(d) else {}
        ),
        "mean_diameter_nm": float(d.mean()) if len(d) else 0.0,
        "boundary_fraction": boundary / labelled if labelled else 0.0,
        "thin_fraction": float(n[d < thin].sum()) / labelled if labelled else 0.0,
        "thin_nm": float(thin),
    }


def intensity_statistics(raw: Iterable[np.ndarray]) -> dict[str, Any]:
    """Brightness and contrast of ``raw`` and how they change from section to section.

    Args:
        raw: intensities (z, y, x): a 3-D array or any iterable of its sections.

    Returns a dict: ``sections``, ``mean`` and ``std`` (over all voxels), ``section_mean_sd`` (the
    standard deviation of the sections' means: brightness changes), ``section_contrast_cv`` (of
    the sections' standard deviations, relative to their mean: contrast changes) and
    ``flat_sections`` (indices of sections with under a quarter of the median contrast: missing
    or nearly blank).
    """
    means, stds, sizes = [], [], []
    for section in _sections(raw, "intensity"):
        values = section.astype(np.float64)
        means.append(values.mean())
        stds.append(values.std())
        sizes.append(values.size)
    if not means:
        raise SegmentError("intensity statistics need at least one section")
    m, s, w = np.array(means), np.array(stds), np.array(sizes, float)
    mean = float(np.average(m, weights=w))
    std = float(np.sqrt(np.average(s**2 + (m - mean) ** 2, weights=w)))
    median = float(np.median(s))
    return {
        "sections": len(m),
        "mean": mean,
        "std": std,
        "section_mean_sd": float(m.std()),
        "section_contrast_cv": float(s.std() / s.mean()) if s.mean() > 0 else 0.0,
        "flat_sections": np.flatnonzero(s < 0.25 * median).tolist() if median > 0 else [],
    }


def format_statistics(stats: dict[str, Any]) -> str:
    """:func:`label_statistics` or :func:`intensity_statistics` as the lines ``daskseg info --stats`` prints."""
    if "flat_sections" in stats:
        return "\n".join(
            [
                f"intensity:         mean {stats['mean']:.1f}, std {stats['std']:.1f} over {stats['sections']} sections",
                f"per section:       brightness sd {stats['section_mean_sd']:.2f}, "
                f"contrast cv {stats['section_contrast_cv']:.3f}",
                f"flat sections:     {stats['flat_sections'] or 'none'}",
            ]
        )
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
