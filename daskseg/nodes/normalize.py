"""``Normalize``: scale an array to floats in [0, 1]."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


def default_factor(dtype: np.dtype) -> float | None:
    """The factor ``Normalize`` picks for a dtype: 1/255 for uint8, 1/65535 for uint16, 1 for floats, else None."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 1.0 / 255
    if dtype == np.uint16:
        return 1.0 / (256 * 256 - 1)
    if np.issubdtype(dtype, np.floating):
        return 1.0
    return None


class Normalize(BatchFilter):
    """Normalize the values of an array to be floats between 0 and 1, based on its data type.

    The data is converted to ``dtype`` and multiplied by ``factor``. Without a factor one is
    chosen from the array's data type: ``uint8`` → ``1/255``, ``uint16`` → ``1/65535``; float
    data already in [0, 1] is only converted (factor 1). Other data types need an explicit
    ``factor``.

    Args:

        array (:class:`ArrayKey`):

            The key of the array to modify.

        factor (scalar, optional):

            The factor to use. If not given, a factor is chosen based on the ``dtype`` of the
            array (e.g., ``np.uint8`` results in a factor of ``1.0/255``).

        dtype (data-type, optional):

            The data type of the normalized array. Defaults to ``np.float32``.
    """

    thread_safe = True

    def __init__(self, array: ArrayKey, factor: float | None = None, dtype: Any = np.float32):
        self.array = array
        self.factor = factor
        self.dtype = np.dtype(dtype)

    def setup(self) -> None:
        if self.array not in self.spec:
            raise SpecError(f"Normalize: {self.array} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.array].copy()
        spec.dtype = self.dtype
        self.updates(self.array, spec)

    def prepare(self, request: BatchRequest) -> None:
        # upstream delivers its own dtype; only the output is ``self.dtype``
        if self.array in request and request[self.array].dtype is not None:
            spec = request[self.array].copy()
            spec.dtype = None
            request[self.array] = spec
        return

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        if self.array not in batch:
            return None
        array = batch[self.array]
        factor = self.factor if self.factor is not None else self._auto_factor(array.data)
        logger.debug("scaling %s (%s) by %s to %s", self.array, array.data.dtype, factor, self.dtype)
        data = array.data.astype(self.dtype) * np.asarray(factor, dtype=self.dtype)
        spec = array.spec.copy()
        spec.dtype = self.dtype
        out = Batch()
        out[self.array] = Array(data, spec, array.attrs)
        return out

    def _auto_factor(self, data: np.ndarray) -> float:
        factor = default_factor(data.dtype)
        if factor is not None and np.issubdtype(data.dtype, np.floating):
            if data.size and (data.min() < 0 or data.max() > 1):
                raise ValueError(
                    f"Normalize: {self.array} is {data.dtype} with values in [{data.min()}, {data.max()}], not in "
                    "[0, 1]; give a factor, e.g. Normalize(key, factor=1/data_max)"
                )
        if factor is not None:
            return factor
        raise ValueError(
            f"Normalize: no automatic factor for {self.array} of dtype {data.dtype} (only uint8, uint16 and "
            "floats in [0, 1]); give a factor"
        )
