"""Reading affinities for segmentation: values in [0, 1] whatever the stored dtype."""

from __future__ import annotations

import numpy as np

from ...errors import InputDataError
from ...geometry import Roi
from ...io import Dataset


def affinity_scale(affs: Dataset) -> float:
    """The divisor that maps ``affs``' stored values to [0, 1]: 255 for uint8 written by ``predict``
    (``daskseg.value_scale``), 1 for floats.

    Raises:
        InputDataError: integer affinities without scaling metadata.
    """
    if np.issubdtype(affs.dtype, np.floating):
        return 1.0
    scale = affs.attrs.get("daskseg", {}).get("value_scale")
    if scale is None:
        raise InputDataError(
            f"the affinities {affs.container}/{affs.name} are stored as {affs.dtype} without scaling metadata: "
            f"daskseg cannot tell which value means 1. Store them as float32 in [0, 1], or set the attribute "
            f"daskseg.value_scale (e.g. 255 for uint8 0..255), as `daskseg predict --dtype uint8` does"
        )
    return float(scale)


def read_affinities(affs: Dataset, roi: Roi, scale: float, channels: tuple[int, ...] | None = None) -> np.ndarray:
    """``affs`` in ``roi`` as float32 in [0, 1] (only ``channels``, when given).

    Raises:
        InputDataError: float values outside [0, 1] (or NaN), naming the ROI and the range found.
    """
    data = affs.read(roi)
    if channels is not None:
        data = data[list(channels)]
    if scale != 1.0:
        return data.astype(np.float32) / np.float32(scale)
    data = data.astype(np.float32, copy=False)
    if data.size:
        low, high = float(np.min(data)), float(np.max(data))
        if not (0.0 <= low and high <= 1.0):  # also catches NaN
            raise InputDataError(
                f"the affinities {affs.container}/{affs.name} hold values in [{low:g}, {high:g}] in {roi}, "
                f"outside [0, 1]: segmentation thresholds are probabilities. Were they written as logits?"
            )
    return data
