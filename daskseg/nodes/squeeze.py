"""``Squeeze``: remove a leading (non-spatial) axis of length 1 from arrays."""

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


class Squeeze(BatchFilter):
    """Squeeze a batch at a given axis: remove an axis of length 1 (e.g. a single channel).
    ROIs and voxel sizes are unchanged.

    Args:

        arrays (``list`` of :class:`ArrayKey`):

            The arrays to squeeze.

        axis (``int``):

            Position of the single-dimensional axis to remove, defaults to 0. Only non-spatial
            (leading) axes can be removed.
    """

    def __init__(self, arrays: ArrayKey | Iterable[ArrayKey], axis: int = 0):
        self.arrays = _as_keys(arrays)
        if int(axis) != axis or axis < 0:
            raise ValueError(f"Squeeze: axis must be a non-negative integer, got {axis!r}")
        self.axis = int(axis)

    def setup(self) -> None:
        for key in self.arrays:
            if key not in self.spec:
                raise SpecError(f"Squeeze: {key} is not provided upstream; provided: {sorted(self.spec)}")
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
            shape = array.data.shape
            if not array.spec.nonspatial and array.spec.roi is not None:
                channel_dims = array.data.ndim - array.spec.roi.dims
                if self.axis >= channel_dims:
                    raise SpecError(
                        f"Squeeze: axis={self.axis} not permitted for {key} of shape {shape} with "
                        f"{array.spec.roi.dims} spatial axes: only its {channel_dims} non-spatial axes can be removed"
                    )
            if self.axis >= len(shape) or shape[self.axis] != 1:
                raise SpecError(f"Squeeze: axis {self.axis} of {key} (shape {shape}) does not have length 1")
            outputs[key] = Array(np.squeeze(array.data, self.axis), array.spec.copy(), array.attrs)
        return outputs
