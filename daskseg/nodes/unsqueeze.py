"""``Unsqueeze``: add a leading (non-spatial) axis of length 1 to arrays."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


def _as_keys(arrays: ArrayKey | Iterable[ArrayKey]) -> list[ArrayKey]:
    return [arrays] if isinstance(arrays, ArrayKey) else list(arrays)


class Unsqueeze(BatchFilter):
    """Unsqueeze a batch at a given axis: insert a new axis of length 1 (e.g. a channel or batch
    axis before the spatial axes). ROIs and voxel sizes are unchanged.

    Args:

        arrays (``list`` of :class:`ArrayKey`):

            The arrays to unsqueeze.

        axis (``int``):

            Position of the new axis, defaults to 0. It must lie among the non-spatial (leading)
            axes, i.e. at most the number of channel axes the array already has.
    """

    def __init__(self, arrays: ArrayKey | Iterable[ArrayKey], axis: int = 0):
        self.arrays = _as_keys(arrays)
        if int(axis) != axis or axis < 0:
            raise ValueError(f"Unsqueeze: axis must be a non-negative integer, got {axis!r}")
        self.axis = int(axis)

    def setup(self) -> None:
        for key in self.arrays:
            if key not in self.spec:
                raise SpecError(f"Unsqueeze: {key} is not provided upstream; provided: {sorted(self.spec)}")
            self.updates(key, self.spec[key].copy())
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        for key in self.arrays:
            if key in request:
                deps[key] = request[key].copy()
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        outputs = Batch()
        for key in self.arrays:
            if key not in batch:
                continue
            array = batch[key]
            if not array.spec.nonspatial and array.spec.roi is not None:
                channel_dims = array.data.ndim - array.spec.roi.dims
                if self.axis > channel_dims:
                    raise SpecError(
                        f"Unsqueeze: axis={self.axis} not permitted for {key} of shape {array.data.shape} with "
                        f"{array.spec.roi.dims} spatial axes: only non-spatial axes 0..{channel_dims} can be added"
                    )
            outputs[key] = Array(np.expand_dims(array.data, self.axis), array.spec.copy(), array.attrs)
        return outputs
