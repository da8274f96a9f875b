"""``NoiseAugment``: add random noise to an intensity array."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..array import Array, ArrayKey
from ._float_augment import FloatAugment

logger = logging.getLogger(__name__)

# mode -> accepted keyword arguments and their defaults (as in skimage.util.random_noise)
_MODES: dict[str, dict[str, Any]] = {
    "gaussian": {"mean": 0.0, "var": 0.01},
    "localvar": {"local_vars": None},
    "poisson": {},
    "salt": {"amount": 0.05},
    "pepper": {"amount": 0.05},
    "s&p": {"amount": 0.05, "salt_vs_pepper": 0.5},
    "speckle": {"mean": 0.0, "var": 0.01},
}


class NoiseAugment(FloatAugment):
    """Add random noise to an array, with the modes and arguments of scikit-image's
    ``skimage.util.random_noise`` (re-implemented here; scikit-image is not needed). The noise
    is drawn from the request's random seed, so the same request gives the same noise.

    Modes and their keyword arguments:

    - ``'gaussian'``: add normal noise (``mean=0``, ``var=0.01``).
    - ``'localvar'``: add zero-mean normal noise with per-voxel variance ``local_vars`` (an
      array of the data's shape, required).
    - ``'poisson'``: Poisson noise generated from the data (values are scaled by the next power
      of two of the number of distinct values).
    - ``'salt'``, ``'pepper'``: replace a fraction ``amount=0.05`` of voxels with 1 (salt) or
      with the low end of the range, 0 or -1 (pepper).
    - ``'s&p'``: both, with ``amount=0.05`` and ``salt_vs_pepper=0.5`` the fraction of salt.
    - ``'speckle'``: multiplicative noise ``a + a * n``, ``n`` normal (``mean=0``, ``var=0.01``).

    Args:

        array (:class:`ArrayKey`):

            The intensity array to modify. Should be of type float and within range [-1, 1] or
            [0, 1].

        mode (``string``):

            Type of noise to add, see above.

        clip (``bool``):

            Whether to preserve the image range (either [-1, 1] or [0, 1]) by clipping values in
            the end (False also disables the check that the input lies in [-1, 1]).

        p (``float``, optional):

            Probability of applying the augmentation (drawn per request). Default is 1.0
            (always apply).

        kwargs:

            The arguments of the chosen mode (see above).
    """

    def __init__(self, array: ArrayKey, mode: str = "gaussian", clip: bool = True, p: float = 1.0, **kwargs: Any):
        if mode not in _MODES:
            raise ValueError(f"NoiseAugment: unknown mode {mode!r}; choose one of {sorted(_MODES)}")
        unknown = set(kwargs) - set(_MODES[mode])
        if unknown:
            raise TypeError(
                f"NoiseAugment: mode {mode!r} does not take {sorted(unknown)}; it takes {sorted(_MODES[mode])}"
            )
        if not 0 <= p <= 1:
            raise ValueError(f"NoiseAugment: p must be in [0, 1], got {p}")
        self.array = array
        self.mode = mode
        self.clip = clip
        self.p = p
        self.kwargs = {**_MODES[mode], **kwargs}
        if mode == "localvar" and self.kwargs["local_vars"] is None:
            raise TypeError("NoiseAugment: mode 'localvar' needs local_vars (per-voxel variances)")
        if mode in ("gaussian", "speckle") and self.kwargs["var"] < 0:
            raise ValueError(f"NoiseAugment: var must be non-negative, got {self.kwargs['var']}")
        if "amount" in self.kwargs and not 0 <= self.kwargs["amount"] <= 1:
            raise ValueError(f"NoiseAugment: amount must be in [0, 1], got {self.kwargs['amount']}")

    _low = -1.0
    _expected = "[-1, 1] or [0, 1]"
    _what = "noise augmentation"

    def _augment(self, array: Array, rng: np.random.Generator) -> np.ndarray:
        return random_noise(array.data, rng, self.mode, self.clip, **self.kwargs)


def random_noise(data: np.ndarray, rng: np.random.Generator, mode: str, clip: bool = True, **kwargs: Any) -> np.ndarray:
    """``data`` with noise of ``mode`` drawn from ``rng`` (see :class:`NoiseAugment`)."""
    low = -1.0 if data.size and data.min() < 0 else 0.0
    work = data.astype(np.float64)
    if mode == "gaussian":
        out = work + rng.normal(kwargs["mean"], kwargs["var"] ** 0.5, size=data.shape)
    elif mode == "speckle":
        out = work + work * rng.normal(kwargs["mean"], kwargs["var"] ** 0.5, size=data.shape)
    elif mode == "localvar":
        local_vars = np.asarray(kwargs["local_vars"], dtype=np.float64)
        if np.any(local_vars < 0):
            raise ValueError("NoiseAugment: local_vars must be non-negative")
        out = work + rng.normal(0.0, np.sqrt(np.broadcast_to(local_vars, data.shape)))
    elif mode == "poisson":
        levels = 2.0 ** np.ceil(np.log2(max(len(np.unique(work)), 1)))
        old_max = work.max() if work.size else 0.0
        if low == -1.0:
            work = (work + 1.0) / (old_max + 1.0)
        out = rng.poisson(work * levels) / levels
        if low == -1.0:
            out = out * (old_max + 1.0) - 1.0
    else:
        amount = kwargs["amount"]
        salt_fraction = {"salt": 1.0, "pepper": 0.0}.get(mode, kwargs.get("salt_vs_pepper", 0.5))
        flipped = rng.random(data.shape) < amount
        salted = rng.random(data.shape) < salt_fraction
        out = work.copy()
        out[flipped & salted] = 1.0
        out[flipped & ~salted] = low
    if clip:
        np.clip(out, low, 1.0, out=out)
    return out
