"""Membranes where labels change: which voxels, and how dark and thick each contact is drawn.

In EM the membranes between two processes differ from contact to contact: some are thick and
dark, some thin, some tight contacts barely show. ``membrane_ink`` gives every pair of touching
objects its own darkness and thickness (drawn from a table keyed by the pair, so it is the same
all along their contact and deterministic from the seed) and lets the darkness vary smoothly
along the membrane, so that even visible membranes have faint stretches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

_PAIR_TABLE = 8191
"""Size of the table of per-contact properties (a prime); pairs are hashed into it."""


def boundary_mask(labels: np.ndarray, axes: Sequence[int] = (1, 2)) -> np.ndarray:
    """Voxels whose label differs from a direct neighbour along ``axes`` (both sides of each change)."""
    mask = np.zeros(labels.shape, bool)
    for axis in axes:
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        change = labels[tuple(lo)] != labels[tuple(hi)]
        mask[tuple(lo)] |= change
        mask[tuple(hi)] |= change
    return mask


def _pair_key(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A table index per unordered pair of ids (the same for (a, b) and (b, a))."""
    lo = np.minimum(a, b).astype(np.uint64)
    hi = np.maximum(a, b).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = lo * np.uint64(2654435761) ^ (hi * np.uint64(40503) + np.uint64(0x9E3779B9))
    return (h % np.uint64(_PAIR_TABLE)).astype(np.intp)


def membrane_ink(
    rng: np.random.Generator,
    labels: np.ndarray,
    darkness: tuple[float, float],
    faint_fraction: float,
    faint_darkness: tuple[float, float],
    thick_fraction: float,
    variation: float,
) -> np.ndarray:
    """How much membrane covers each voxel, in [0, 1] (float32, same shape as ``labels``).

    Args:
        rng: the sample's random generator.
        labels: the label volume (z, y, x); membranes are drawn on label changes within sections.
        darkness: range of a contact's ink, drawn uniformly per pair of touching objects.
        faint_fraction: fraction of contacts drawn near-invisible instead (tight contacts).
        faint_darkness: range of the ink of those faint contacts.
        thick_fraction: fraction of contacts drawn 4 voxels thick instead of 2.
        variation: relative amplitude of the smooth variation of the ink along a membrane.
    """
    ink_of = rng.uniform(*darkness, _PAIR_TABLE).astype(np.float32)
    faint = rng.random(_PAIR_TABLE) < faint_fraction
    ink_of[faint] = rng.uniform(*faint_darkness, int(faint.sum()))
    thick_of = rng.random(_PAIR_TABLE) < thick_fraction
    thin = np.zeros(labels.shape, np.float32)
    thick = np.zeros(labels.shape, np.float32)
    for axis in (1, 2):
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        a, b = labels[lo], labels[hi]
        change = np.nonzero(a != b)
        key = _pair_key(a[change], b[change])
        ink = ink_of[key]
        is_thick = thick_of[key]
        for target, sel in ((thin, ~is_thick), (thick, is_thick)):
            for side in (lo, hi):
                _max_into(target[side], tuple(c[sel] for c in change), ink[sel])
    if thick.any():
        ndi.grey_dilation(thick, size=(1, 3, 3), output=thick)
    np.maximum(thin, thick, out=thin)
    if variation > 0:
        # a smooth field (~25 voxels across in-plane), made at a quarter of the resolution in y and
        # x and read, interpolated, only where there is ink
        z, h, w = labels.shape
        field = rng.standard_normal((z, h // 4 + 2, w // 4 + 2), dtype=np.float32)
        ndi.gaussian_filter(field, sigma=(1.0, 1.5, 1.5), output=field)
        field *= np.float32(variation / (field.std() + 1e-6))
        where = np.nonzero(thin)
        coords = [where[0].astype(np.float32)] + [c.astype(np.float32) / np.float32(4) for c in where[1:]]
        along = ndi.map_coordinates(field, coords, order=1, mode="nearest") + np.float32(1.0)
        thin[where] *= np.clip(along, 0.0, 1.0 + variation)
    np.clip(thin, 0.0, 1.0, out=thin)
    return thin


def _max_into(view: np.ndarray, where: tuple[np.ndarray, ...], values: np.ndarray) -> None:
    """``view[where] = max(view[where], values)``, for ``where`` listing each voxel at most once
    (one axis and one side of the changes: a voxel has one neighbour there)."""
    view[where] = np.maximum(view[where], values)
