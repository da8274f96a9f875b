"""Shared plumbing of :class:`Squeeze` and :class:`Unsqueeze`: one operation on one leading
(non-spatial) axis of each of a list of arrays, leaving ROIs and voxel sizes unchanged."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter


def _as_keys(arrays: ArrayKey | Iterable[ArrayKey]) -> list[ArrayKey]:
    return [arrays] if isinstance(arrays, ArrayKey) else list(arrays)


class AxisOp(BatchFilter):
    """Base of the nodes that change one leading axis of ``arrays`` (at ``axis``).

    Subclasses give :meth:`_check_axis` (is ``axis`` allowed for an array with
    ``channel_dims`` leading axes; raise :class:`SpecError` if not) and :meth:`_apply`.
    """

    thread_safe = True

    def __init__(self, arrays: ArrayKey | Iterable[ArrayKey], axis: int = 0):
        self.arrays = _as_keys(arrays)
        if int(axis) != axis or axis < 0:
            raise ValueError(f"{type(self).__name__}: axis must be a non-negative integer, got {axis!r}")
        self.axis = int(axis)

    def setup(self) -> None:
        for key in self.arrays:
            if key not in self.spec:
                raise SpecError(f"{type(self).__name__}: {key} is not provided upstream; provided: {sorted(self.spec)}")
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
                self._check_axis(key, array, array.data.ndim - array.spec.roi.dims)
            outputs[key] = Array(self._apply(key, array.data), array.spec.copy(), array.attrs)
        return outputs

    def _check_axis(self, key: ArrayKey, array: Array, channel_dims: int) -> None:
        raise NotImplementedError

    def _apply(self, key: ArrayKey, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def spatial_data(data: np.ndarray, dims: int, owner: str) -> np.ndarray:
    """``data`` without its leading channel axes, which must all have length 1 (``dims``: the
    number of spatial axes; ``owner``, e.g. ``"GrowBoundary: mask MASK"``, names node and array
    in the error)."""
    if data.ndim > dims:
        if any(s != 1 for s in data.shape[:-dims]):
            raise SpecError(f"{owner} has channel axes of shape {data.shape[:-dims]}; expected purely spatial data")
        data = data.reshape(data.shape[-dims:])
    return data
