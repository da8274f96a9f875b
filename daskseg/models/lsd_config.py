"""The local-shape-descriptor head of a multitask network (MtLSD, Sheridan et al. 2022).

A network config with ``"lsds": {...}`` has a second 1x1x1 head on the U-Net's top features,
``lsd_channels`` channels with a sigmoid, trained towards ``AddLocalShapeDescriptor``'s
descriptors (weighted by its ``lsds_mask``) next to the affinities; the loss is
``affs_loss_weight * loss(affinities) + loss_weight * loss(descriptors)``. Pure Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import NetConfigError

LSD_MODES = ("gaussian", "sphere")


@dataclass(frozen=True)
class LsdConfig:
    """What the LSD head learns and how much it weighs.

    Args:
        sigma: the descriptors' Gaussian sigma (sphere radius) in world units (nm).
        mode: ``"gaussian"`` or ``"sphere"``.
        downsample: ``AddLocalShapeDescriptor``'s ``downsample`` (2 is about three times faster,
            and coarser).
        components: channels of the descriptor to learn (e.g. ``"0129"``); default all 10.
        loss_weight: weight of the descriptors' loss in the sum.
        affs_loss_weight: weight of the affinities' loss in the sum.
        gt, weights, pred: the names of the target, its weights (the lsds mask) and the prediction in
            the Train and Predict nodes' dicts.
    """

    sigma: float = 80.0
    mode: str = "gaussian"
    downsample: int = 1
    components: str | None = None
    loss_weight: float = 1.0
    affs_loss_weight: float = 1.0
    gt: str = "gt_lsds"
    weights: str = "lsds_weights"
    pred: str = "pred_lsds"

    def __post_init__(self):
        if not float(self.sigma) > 0:
            raise NetConfigError(f"lsds.sigma must be a positive number of nm, got {self.sigma!r}")
        if self.mode not in LSD_MODES:
            raise NetConfigError(f"lsds.mode must be one of {LSD_MODES}, got {self.mode!r}")
        if int(self.downsample) != self.downsample or self.downsample < 1:
            raise NetConfigError(f"lsds.downsample must be a positive integer, got {self.downsample!r}")
        if self.components is not None:
            if not (isinstance(self.components, str) and self.components and set(self.components) <= set("0123456789")):
                raise NetConfigError(
                    f"lsds.components must be a string of channel digits like '0129', got {self.components!r}"
                )
        for name in ("loss_weight", "affs_loss_weight"):
            if not float(getattr(self, name)) >= 0:
                raise NetConfigError(f"lsds.{name} must be >= 0, got {getattr(self, name)!r}")

    def channels(self, dims: int = 3) -> int:
        """Channels of the head: the selected components, else 10 in 3D (6 in 2D)."""
        if self.components is not None:
            return len(self.components)
        return 2 * dims + dims * (dims - 1) // 2 + 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LsdConfig:
        """Inverse of ``to_dict``; unknown keys raise a ``NetConfigError`` naming them."""
        if not isinstance(d, dict):
            raise NetConfigError(f"lsds must be a JSON object of LSD settings, got {d!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise NetConfigError(f"unknown lsds fields {unknown}; fields are {sorted(names)}")
        return cls(**d)
