"""``DownSample``: a new array with every ``factor``-th voxel of another."""

from __future__ import annotations

import logging
import numbers

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..geometry import Coordinate
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class DownSample(BatchFilter):
    """Downsample arrays in a batch by given factors (by taking every ``factor``-th voxel, starting
    at the first voxel of the requested ROI; no smoothing).

    Args:

        source (:class:`ArrayKey`):

            The key of the array to downsample.

        factor (``int`` or ``tuple`` of ``int``):

            The factor to downsample with.

        target (:class:`ArrayKey`):

            The key of the array to store the downsampled ``source``.
    """

    thread_safe = True

    def __init__(self, source: ArrayKey, factor: int | tuple[int, ...], target: ArrayKey):
        if not isinstance(source, ArrayKey) or not isinstance(target, ArrayKey):
            raise ArgumentError(f"DownSample: source and target must be ArrayKeys, got {source!r}, {target!r}")
        if not isinstance(factor, (numbers.Integral, tuple, list)):
            raise ArgumentError(f"DownSample: factor should be an int or a tuple of ints, got {factor!r}")
        self.source = source
        self.factor = int(factor) if isinstance(factor, numbers.Integral) else Coordinate(factor)
        self.target = target

    def setup(self) -> None:
        if self.source not in self.spec:
            raise SpecError(f"DownSample: {self.source} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.source].copy()
        spec.voxel_size = spec.voxel_size * self.factor
        if spec.roi is not None:
            spec.roi = spec.roi.snap_to_grid(spec.voxel_size, mode="shrink")
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        spec = request[self.target].copy()
        spec.voxel_size = None
        spec.dtype = None
        deps[self.source] = spec
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        source = batch[self.source]
        dims = source.spec.roi.dims if source.spec.roi is not None else source.data.ndim
        factor = Coordinate((self.factor,) * dims) if isinstance(self.factor, int) else self.factor
        channels = (slice(None),) * (source.data.ndim - dims)
        data = source.data[channels + tuple(slice(None, None, f) for f in factor)]
        logger.debug("DownSample: %s by %s", self.source, factor)
        spec = self.spec[self.target].copy()
        spec.roi = request[self.target].roi
        spec.dtype = source.data.dtype
        outputs = Batch()
        outputs[self.target] = Array(data.copy(), spec, source.attrs)
        return outputs
