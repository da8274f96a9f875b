"""Shared plumbing of the augmentations that change the values of one float array in place
(:class:`IntensityAugment`, :class:`NoiseAugment`)."""

from __future__ import annotations

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter


class FloatAugment(BatchFilter):
    """Base of the nodes that, with probability ``p`` per request, replace the float data of
    ``array`` by :meth:`_augment` of it (same ROI, spec and dtype).

    Subclasses set ``array``, ``clip`` and ``p`` and the class attributes ``_low`` (the input
    must lie in ``[_low, 1]`` when ``clip`` is set), ``_expected`` (that range in words) and
    ``_what`` (the augmentation in words).
    """

    thread_safe = True

    array: ArrayKey
    clip: bool
    p: float
    _low: float = 0.0
    _expected: str = "[0, 1]"
    _what: str = "augmentation"

    def _not_float(self, dtype: np.dtype) -> SpecError:
        return SpecError(
            f"{type(self).__name__}: {self.array} is {dtype}; {self._what} requires floats in {self._expected}. "
            "Consider using Normalize before."
        )

    def setup(self) -> None:
        if self.array not in self.spec:
            raise SpecError(f"{type(self).__name__}: {self.array} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.array]
        if spec.dtype is not None and not np.issubdtype(spec.dtype, np.floating):
            raise self._not_float(spec.dtype)
        self.updates(self.array, spec.copy())
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        rng = self.random_generator(request)
        if rng.random() >= self.p:
            return None
        array = batch[self.array]
        data = array.data
        if not np.issubdtype(data.dtype, np.floating):
            raise self._not_float(data.dtype)
        if self.clip and data.size and (data.min() < self._low or data.max() > 1):
            raise ValueError(
                f"{type(self).__name__}: {self.array} has values in [{data.min()}, {data.max()}]; {self._what} "
                f"expects values in {self._expected}. Consider using Normalize before."
            )
        result = self._augment(array, rng)
        outputs = Batch()
        outputs[self.array] = Array(result.astype(data.dtype, copy=False), array.spec.copy(), array.attrs)
        return outputs

    def _augment(self, array: Array, rng: np.random.Generator) -> np.ndarray:
        """The new data of ``array`` (whose values have been checked), drawn from ``rng``."""
        raise NotImplementedError
