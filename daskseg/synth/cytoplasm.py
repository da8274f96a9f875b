"""Cytoplasm: every object its own brightness plus a smooth grainy texture, the raw's starting point."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi


def cytoplasm(
    rng: np.random.Generator,
    labels: np.ndarray,
    brightness: tuple[float, float],
    texture_sigma: Sequence[float],
    texture_sd: float,
) -> np.ndarray:
    """Float32 raw (z, y, x) of ``labels``' objects before membranes and the microscope.

    Args:
        rng: the sample's random generator (draws the brightnesses, then the texture).
        labels: the label volume; each object (and the background 0) gets one brightness.
        brightness: the range the objects' brightnesses are drawn from, uniformly.
        texture_sigma: the texture's smoothing (voxels, z, y, x).
        texture_sd: the texture's standard deviation after smoothing.
    """
    n_objects = int(labels.max())
    values = rng.uniform(*brightness, n_objects + 1).astype(np.float32)
    raw = values[labels]
    texture = rng.standard_normal(labels.shape, dtype=np.float32)
    ndi.gaussian_filter(texture, sigma=tuple(texture_sigma), output=texture)
    texture *= np.float32(texture_sd / (texture.std() + 1e-6))
    raw += texture
    return raw
