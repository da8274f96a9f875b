"""Multiscale pyramids: the factor rule (``factors.py``) and the per-block downsampling (``reduce.py``).
The blockwise job that writes the levels is ``daskseg.blockwise.pyramid``."""

from .factors import default_factors, given_factors, next_factor
from .reduce import METHODS, downsample, downsample_mean, downsample_mode

__all__ = [
    "METHODS",
    "default_factors",
    "downsample",
    "downsample_mean",
    "downsample_mode",
    "given_factors",
    "next_factor",
]
