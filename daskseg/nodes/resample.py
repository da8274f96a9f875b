"""``Resample``: a new array at another voxel size, by spline interpolation."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..geometry import Coordinate, Roi
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class Resample(BatchFilter):
    """Up- or downsample arrays in a batch to match a given voxel size.

    As gunpowder's, this is not a pixel-perfect copy of :class:`DownSample`/:class:`UpSample`
    (it handles non-integer factors). It interpolates with ``scipy.ndimage.zoom`` in grid mode
    (voxels as areas, as skimage's ``rescale`` that gunpowder uses), without skimage's
    anti-aliasing when downsampling; non-interpolatable arrays always use nearest neighbour.

    Args:

        source (:class:`ArrayKey`):

            The key of the array to resample.

        target_voxel_size (:class:`Coordinate`):

            The voxel size of the target.

        target (:class:`ArrayKey`):

            The key of the array to store the resampled ``source``.

        ndim (``int``, optional):

            Dimensionality of resampling: only the last ``ndim`` axes get a context voxel on each
            side for interpolation. Default is the dimensionality of ``target_voxel_size``.

        interp_order (``int``, optional):

            The order of interpolation, 0 (nearest) to 5. Default is 0 if the array is not
            interpolatable, and 1 otherwise.
    """

    thread_safe = True

    def __init__(
        self,
        source: ArrayKey,
        target_voxel_size: Sequence[int],
        target: ArrayKey,
        ndim: int | None = None,
        interp_order: int | None = None,
    ):
        if not isinstance(source, ArrayKey) or not isinstance(target, ArrayKey):
            raise ArgumentError(f"Resample: source and target must be ArrayKeys, got {source!r}, {target!r}")
        if interp_order is not None and not 0 <= interp_order <= 5:
            raise ArgumentError(f"Resample: interp_order must be in 0..5, got {interp_order}")
        self.source = source
        self.target_voxel_size = Coordinate(target_voxel_size)
        self.target = target
        self.ndim = len(self.target_voxel_size) if ndim is None else ndim
        self.interp_order = interp_order

    def _lcm(self) -> Coordinate:
        source = self.spec[self.source].checked_voxel_size(f"Resample's source {self.source}")
        return Coordinate(math.lcm(a, b) for a, b in zip(source, self.target_voxel_size))

    def setup(self) -> None:
        if self.source not in self.spec:
            raise SpecError(f"Resample: {self.source} is not provided upstream; provided: {sorted(self.spec)}")
        source_vs = self.spec[self.source].checked_voxel_size(f"Resample's source {self.source}")
        if len(source_vs) != len(self.target_voxel_size):
            raise SpecError(f"Resample: target voxel size {self.target_voxel_size} and {self.source}'s {source_vs} differ in dims")
        self.pad = Coordinate((0,) * (len(source_vs) - self.ndim) + tuple(source_vs[-self.ndim :]))
        spec = self.spec[self.source].copy()
        spec.voxel_size = self.target_voxel_size
        spec.roi = spec.checked_roi(f"Resample's source {self.source}").snap_to_grid(self._lcm(), mode="shrink")
        self.provides(self.target, spec)
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        lcm = self._lcm()
        spec = self.spec[self.source].copy()
        requested = request[self.target].checked_roi(f"the request for Resample's target {self.target}")
        roi = requested.grow(self.pad, self.pad).snap_to_grid(lcm, mode="grow")
        spec.roi = roi.intersect(spec.checked_roi(f"Resample's source {self.source}")).snap_to_grid(lcm, mode="shrink")
        deps = BatchRequest()
        deps[self.source] = spec
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        source = batch[self.source]
        source_spec = self.spec[self.source]
        source_roi = source.spec.checked_roi(f"Resample's source {self.source}")
        dims = source_roi.dims
        source_vs = source_spec.checked_voxel_size(f"Resample's source {self.source}")
        scales = tuple(s / t for s, t in zip(source_vs, self.target_voxel_size))
        zoom = (1.0,) * (source.data.ndim - dims) + scales
        order = 1 if self.interp_order is None else self.interp_order
        if source_spec.interpolatable is False and order != 0:
            if self.interp_order is not None:
                logger.warning("Resample: %s is not interpolatable; using nearest neighbour", self.source)
            order = 0
        if order == 0:
            data = ndimage.zoom(source.data, zoom, order=0, mode="nearest", grid_mode=True)
        else:
            data = ndimage.zoom(
                source.data.astype(np.float32), zoom, order=order, mode="nearest", grid_mode=True
            ).astype(source.data.dtype)
        spec = source.spec.copy()
        spec.voxel_size = self.target_voxel_size
        spec.roi = Roi(source_roi.begin, self.target_voxel_size * Coordinate(data.shape[-dims:]))
        spec.dtype = data.dtype
        outputs = Batch()
        outputs[self.target] = Array(data, spec, source.attrs).crop(
            request[self.target].checked_roi(f"the request for Resample's target {self.target}")
        )
        return outputs
