"""The microscope's part: blur, section-to-section contrast, uneven illumination, noise, bad sections.

Serial-section EM images every section separately, so brightness and contrast change from one
section to the next, a few sections come out with little contrast, a few are lost (zeros) and a
few are shifted against their neighbours (misaligned). Only the raw changes; the labels keep the
truth, as in a training volume whose defects the network has to see through.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

logger = logging.getLogger(__name__)


def image(
    rng: np.random.Generator,
    raw: np.ndarray,
    blur: Sequence[float],
    noise: float,
    gain_sd: float,
    offset_sd: float,
    shading: float,
    low_contrast: float,
    missing: float,
    shifted: float,
    max_shift: int,
) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Image float ``raw`` (z, y, x, values in [0, 1]) into uint8; returns it and the bad sections.

    Args:
        rng: the sample's random generator.
        raw: float32 object-level raw; changed in place.
        blur: Gaussian sigma in voxels (z, y, x).
        noise: standard deviation of the additive noise (fraction of the range); half of it is
            fine-grained, half blurred over a voxel (EM noise is not white).
        gain_sd, offset_sd: per-section contrast (multiplicative, around the mean) and brightness.
        shading: amplitude of a smooth brightness gradient across each section.
        low_contrast: probability of a section having 25-50% of the contrast.
        missing: probability of a section being lost (all zeros, as in an aligned stack).
        shifted: probability of a section being shifted by up to ``max_shift`` voxels in y and x.
    """
    z, h, w = raw.shape
    ndi.gaussian_filter(raw, sigma=tuple(blur), output=raw)
    mean = np.float32(raw.mean())
    gain = np.exp(rng.normal(0.0, gain_sd, z)).astype(np.float32)
    bad = {
        "low_contrast": np.flatnonzero(rng.random(z) < low_contrast).tolist(),
        "missing": np.flatnonzero(rng.random(z) < missing).tolist(),
        "shifted": np.flatnonzero(rng.random(z) < shifted).tolist(),
    }
    gain[bad["low_contrast"]] *= rng.uniform(0.25, 0.5, len(bad["low_contrast"])).astype(np.float32)
    offset = np.asarray(rng.normal(0.0, offset_sd, z), np.float32)
    raw -= mean
    raw *= gain[:, None, None]
    raw += (mean + offset)[:, None, None]
    if shading > 0:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = np.asarray(rng.uniform(0, 2 * np.pi, z), np.float32)
        amplitude = np.asarray(rng.uniform(0, shading, z), np.float32)
        for k in range(z):
            ramp = (np.cos(angle[k]) * yy / max(h, 1) + np.sin(angle[k]) * xx / max(w, 1)) - 0.5
            raw[k] += amplitude[k] * ramp
    for k in bad["shifted"]:
        dy, dx = rng.integers(-max_shift, max_shift + 1, 2)
        raw[k] = ndi.shift(raw[k], (int(dy), int(dx)), order=0, mode="nearest")
    grain = rng.standard_normal(raw.shape, dtype=np.float32)
    smooth = rng.standard_normal(raw.shape, dtype=np.float32)
    ndi.gaussian_filter(smooth, sigma=(0, 1.0, 1.0), output=smooth)
    smooth *= np.float32(1.0 / (smooth.std() + 1e-6))
    grain += smooth
    raw += grain * np.float32(noise / np.sqrt(2.0))
    np.clip(raw, 0.0, 1.0, out=raw)
    raw[bad["missing"]] = 0.0  # a lost section: zeros in the aligned stack
    raw *= np.float32(255.0)
    logger.debug("imaged %s: bad sections %s", raw.shape, bad)
    return np.rint(raw, out=raw).astype(np.uint8), bad
