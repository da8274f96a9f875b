"""``UpSample``: a new array with every voxel of another repeated ``factor`` times."""

from __future__ import annotations

import logging
import numbers
from typing import cast

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..geometry import Coordinate, Roi
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class UpSample(BatchFilter):
    """Upsample arrays in a batch by given factors (nearest neighbour: each voxel is repeated).

    Args:

        source (:class:`ArrayKey`):

            The key of the array to upsample.

        factor (``int`` or :class:`Coordinate`):

            The factor to upsample with; the source's voxel size must be divisible by it.

        target (:class:`ArrayKey`):

            The key of the array to store the upsampled ``source``.
    """

    thread_safe = True

    def __init__(self, source: ArrayKey, factor: int | Coordinate, target: ArrayKey):
        if not isinstance(source, ArrayKey) or not isinstance(target, ArrayKey):
            raise ArgumentError(f"UpSample: source and target must be ArrayKeys, got {source!r}, {target!r}")
        if not isinstance(factor, (numbers.Integral, tuple, list)):
            raise ArgumentError(f"UpSample: factor should be an int or a Coordinate, got {factor!r}")
        self.source = source
        self.factor = factor if isinstance(factor, numbers.Integral) else Coordinate(factor)
        self.target = target

    def setup(self) -> None:
        if self.source not in self.spec:
            raise SpecError(f"UpSample: {self.source} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.source].copy()
        if spec.roi is None or spec.voxel_size is None:
            raise SpecError(f"UpSample: {self.source} must be spatial (a ROI and a voxel size), got {spec}")
        if not isinstance(self.factor, Coordinate):
            self.factor = Coordinate((int(self.factor),) * spec.roi.dims)
        if not spec.voxel_size.is_multiple_of(self.factor):
            raise SpecError(
                f"UpSample: voxel size {spec.voxel_size} of {self.source} is not divisible by the factor {self.factor}"
            )
        spec.voxel_size = spec.voxel_size / self.factor
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        spec = self.spec[self.source].copy()
        asked, voxel_size = request[self.target].roi, self.spec[self.source].voxel_size
        spec.roi = cast(Roi, asked).snap_to_grid(cast(Coordinate, voxel_size), mode="grow")  # spatial: checked in setup
        spec.dtype = None
        deps[self.source] = spec
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        source = batch[self.source]
        data = source.data
        for d, f in enumerate(self.factor):
            data = np.repeat(data, f, axis=data.ndim - self.factor.dims + d)
        logger.debug("UpSample: %s by %s", self.source, self.factor)
        spec = self.spec[self.target].copy()
        spec.roi = source.spec.roi
        spec.dtype = data.dtype
        outputs = Batch()
        outputs[self.target] = Array(data, spec, source.attrs).crop(cast(Roi, request[self.target].roi))
        return outputs
