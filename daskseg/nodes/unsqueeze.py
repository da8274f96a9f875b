"""``Unsqueeze``: add a leading (non-spatial) axis of length 1 to arrays."""

from __future__ import annotations

import logging

import numpy as np

from ..array import Array, ArrayKey
from ..errors import SpecError
from ._axis_op import AxisOp

logger = logging.getLogger(__name__)


class Unsqueeze(AxisOp):
    """Unsqueeze a batch at a given axis: insert a new axis of length 1 (e.g. a channel or batch
    axis before the spatial axes). ROIs and voxel sizes are unchanged.

    Args:

        arrays (``list`` of :class:`ArrayKey`):

            The arrays to unsqueeze.

        axis (``int``):

            Position of the new axis, defaults to 0. It must lie among the non-spatial (leading)
            axes, i.e. at most the number of channel axes the array already has.
    """

    def _check_axis(self, key: ArrayKey, array: Array, channel_dims: int) -> None:
        if self.axis > channel_dims:
            raise SpecError(
                f"Unsqueeze: axis={self.axis} not permitted for {key} of shape {array.data.shape} with "
                f"{array.data.ndim - channel_dims} spatial axes: only non-spatial axes 0..{channel_dims} can be added"
            )

    def _apply(self, key: ArrayKey, data: np.ndarray) -> np.ndarray:
        return np.expand_dims(data, self.axis)
