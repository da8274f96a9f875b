"""``IntensityScaleShift``: a fixed linear map of intensities."""

from __future__ import annotations

import logging

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class IntensityScaleShift(BatchFilter):
    """Scales the intensities of a batch by ``scale``, then adds ``shift``::

        a = a * scale + shift

    The result has numpy's type for that expression (e.g. ``float32`` data stays ``float32``,
    integer data becomes ``float64`` with a float ``scale``); the array's spec says so.

    Args:

        array (:class:`ArrayKey`):

            The key of the array to modify.

        scale (``float``):
        shift (``float``):

            The shift and scale to apply to ``array``.
    """

    thread_safe = True

    def __init__(self, array: ArrayKey, scale: float, shift: float):
        self.array = array
        self.scale = scale
        self.shift = shift

    def _result_dtype(self, dtype: np.dtype) -> np.dtype:
        return (np.zeros(1, dtype=dtype) * self.scale + self.shift).dtype

    def setup(self) -> None:
        if self.array not in self.spec:
            raise SpecError(
                f"IntensityScaleShift: {self.array} is not provided upstream; provided: {sorted(self.spec)}"
            )
        spec = self.spec[self.array].copy()
        if spec.dtype is not None:
            spec.dtype = self._result_dtype(spec.dtype)
        self.updates(self.array, spec)
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        spec = request[self.array].copy()
        spec.dtype = None  # upstream delivers its own dtype (a dependency's dtype replaces the request's)
        deps[self.array] = spec
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        array = batch[self.array]
        data = array.data * self.scale + self.shift
        spec = array.spec.copy()
        spec.dtype = data.dtype
        outputs = Batch()
        outputs[self.array] = Array(data, spec, array.attrs)
        return outputs
