"""``Squeeze``: remove a leading (non-spatial) axis of length 1 from arrays."""

from __future__ import annotations

import logging

import numpy as np

from ..array import Array, ArrayKey
from ..errors import SpecError
from ._axis_op import AxisOp

logger = logging.getLogger(__name__)


class Squeeze(AxisOp):
    """Squeeze a batch at a given axis: remove an axis of length 1 (e.g. a single channel).
    ROIs and voxel sizes are unchanged.

    Args:

        arrays (``list`` of :class:`ArrayKey`):

            The arrays to squeeze.

        axis (``int``):

            Position of the single-dimensional axis to remove, defaults to 0. Only non-spatial
            (leading) axes can be removed.
    """

    def _check_axis(self, key: ArrayKey, array: Array, channel_dims: int) -> None:
        if self.axis >= channel_dims:
            raise SpecError(
                f"Squeeze: axis={self.axis} not permitted for {key} of shape {array.data.shape} with "
                f"{array.data.ndim - channel_dims} spatial axes: only its {channel_dims} non-spatial axes can be removed"
            )

    def _apply(self, key: ArrayKey, data: np.ndarray) -> np.ndarray:
        if self.axis >= data.ndim or data.shape[self.axis] != 1:
            raise SpecError(f"Squeeze: axis {self.axis} of {key} (shape {data.shape}) does not have length 1")
        return np.squeeze(data, self.axis)
