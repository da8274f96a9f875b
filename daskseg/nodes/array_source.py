"""``ArraySource``: provide a ``funlib.persistence.Array`` as one array key."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..array import Array, ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError
from ..geometry import Coordinate, as_roi
from ..pipeline import BatchProvider
from .dataset_source import INTERPOLATABLE_DTYPES

logger = logging.getLogger(__name__)


class ArraySource(BatchProvider):
    """A `funlib.persistence <https://github.com/funkelab/funlib.persistence>`_ array source.

    Provides any array in the ``funlib.persistence.Array`` format (a Zarr, N5 or in-memory array
    with world-unit offset and voxel size): its ROI, voxel size and dtype become the spec, and a
    request is read with the array's own world-unit indexing (``array[roi]``). Only the requested
    part is ever read.

    Args:

        key (:class:`ArrayKey`):

            The ArrayKey for accessing this array.

        array (``funlib.persistence.Array``):

            The array to provide (any object with ``roi``, ``voxel_size``, ``dtype`` and
            ``__getitem__(roi)`` works).

        interpolatable (``bool``, optional):

            Whether the array is interpolatable. If not given it is guessed based on dtype.
    """

    thread_safe = True

    def __init__(self, key: ArrayKey, array: Any, interpolatable: bool | None = None):
        if not isinstance(key, ArrayKey):
            raise ArgumentError(f"ArraySource: key must be an ArrayKey, got {key!r}")
        missing = [a for a in ("roi", "voxel_size", "dtype", "__getitem__") if not hasattr(array, a)]
        if missing:
            raise ArgumentError(
                f"ArraySource: {type(array).__name__} is not a funlib.persistence Array (it lacks {missing}); "
                f"open one with funlib.persistence.open_ds(path)"
            )
        dtype = np.dtype(array.dtype)
        if interpolatable is None:
            interpolatable = dtype.type in INTERPOLATABLE_DTYPES
        self.key = key
        self.array = array
        self.array_spec = ArraySpec(
            roi=as_roi(array.roi),
            voxel_size=Coordinate(array.voxel_size),
            interpolatable=interpolatable,
            dtype=dtype,
        )

    def setup(self) -> None:
        self.provides(self.key, self.array_spec.copy())

    def provide(self, request: BatchRequest) -> Batch:
        outputs = Batch()
        spec = self.array_spec.copy()
        spec.roi = request[self.key].roi
        data = np.asarray(self.array[spec.roi])
        logger.debug("ArraySource: read %s of %s (%s)", spec.roi, self.key, data.shape)
        outputs[self.key] = Array(data, spec)
        return outputs
