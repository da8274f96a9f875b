"""The ``easy`` preset's raw: the generator daskseg shipped first, kept unchanged (same arrays per seed).

Uniform cytoplasm with smooth texture, dark ellipsoid "mitochondria" on thick processes, membranes
equally dark wherever labels change in a section, a fainter smear across sections, blur and noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .cytoplasm import cytoplasm
from .membranes import boundary_mask
from .organelles import ellipsoid_along
from .shapes import Polylines, unit


def mitochondria(
    rng: np.random.Generator,
    labels: np.ndarray,
    polylines: Polylines,
    voxel_size: np.ndarray,
    density: float,
) -> np.ndarray:
    """Small dark ellipsoids on thick processes, elongated along them, never crossing a boundary."""
    mito = np.zeros(labels.shape, bool)
    upper = np.asarray(labels.shape) * voxel_size
    points = np.concatenate([pts[:-1] for _, pts, _ in polylines])
    axes = np.concatenate([np.diff(pts, axis=0) for _, pts, _ in polylines])
    radii = np.concatenate([rad[:-1] for _, _, rad in polylines])
    ok = np.all((points >= 0) & (points < upper), axis=1) & (radii > 60.0)
    points, axes, radii = points[ok], unit(axes[ok]), radii[ok]
    n = min(len(points), int(rng.poisson(density * np.prod(upper) / 1e9)))
    for j in rng.choice(len(points), n, replace=False):
        c = (points[j] // voxel_size).astype(int)
        semi_long, semi_short = radii[j] * rng.uniform(1.0, 2.5), radii[j] * rng.uniform(0.25, 0.45)
        box, along, dist2 = ellipsoid_along(points[j], axes[j], semi_long, voxel_size, labels.shape)
        inside = (along / semi_long) ** 2 + (dist2 - along**2) / semi_short**2 <= 1.0
        mito[box] |= inside & (labels[box] == labels[tuple(c)])
    return mito


def raw(
    rng: np.random.Generator,
    labels: np.ndarray,
    mito: np.ndarray,
    noise: float,
    blur: Sequence[float],
) -> np.ndarray:
    """EM-like uint8 raw: bright textured cytoplasm, dark membranes on label changes, blur and noise."""
    raw = cytoplasm(rng, labels, (0.62, 0.82), (0.7, 2.5, 2.5), 0.06)
    raw[mito] *= np.float32(0.55)
    # membranes: dark where labels change within a section; a membrane parallel to the section
    # (a label change between sections) shows as a fainter smear, as in anisotropic EM
    raw[boundary_mask(labels, axes=(0,))] *= np.float32(0.7)
    raw[boundary_mask(labels, axes=(1, 2))] = np.float32(0.18)
    ndi.gaussian_filter(raw, sigma=tuple(blur), output=raw)
    # section-to-section brightness jitter and shot noise
    raw += np.asarray(rng.normal(0.0, 0.02, labels.shape[0]), np.float32)[:, None, None]
    raw += rng.standard_normal(labels.shape, dtype=np.float32) * np.float32(noise)
    np.clip(raw, 0.0, 1.0, out=raw)
    raw *= np.float32(255.0)
    return np.rint(raw, out=raw).astype(np.uint8)
