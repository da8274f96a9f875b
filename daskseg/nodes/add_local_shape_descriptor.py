"""``AddLocalShapeDescriptor``: local shape descriptors of a segmentation, as a training target."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..array import Array, ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, RequestError, SpecError
from ..geometry import Coordinate, Roi
from ..local_shape_descriptor import (
    MODES,
    get_local_shape_descriptors,
    kernel_reach,
    normalize_sigma,
    num_channels,
    parse_components,
)
from ..pipeline import BatchFilter
from ..pipeline.filter import dependency_spec
from ._axis_op import spatial_data

logger = logging.getLogger(__name__)


class AddLocalShapeDescriptor(BatchFilter):
    """Create a local segmentation shape descriptor for each voxel (Sheridan et al. 2022).

    The arguments and results are those of the ``lsds`` package's gunpowder node
    (``lsd.train.gp.AddLocalShapeDescriptor``); see :mod:`daskseg.local_shape_descriptor` for the
    descriptor (3D: mean offset zyx 0-2, variances 3-5, Pearson zy/zx/yx 6-8, size 9, each in
    [0, 1]; 2D: 0-1, 2-3, 4, 5) and how it is computed (per object on its bounding box, many times
    faster than ``lsds``, with the same values).

    The segmentation is requested grown by the kernel's reach (``3 * sigma`` for the Gaussian,
    ``sigma`` for the sphere, rounded to whole (downsampled) voxels as the kernel is), so the
    descriptors do not depend on what lies beyond the request; labels passed downstream are cropped
    back to what was asked. ``descriptor`` is provided where that context is available: the
    segmentation's ROI shrunk by the reach (``lsds`` declares the segmentation's ROI and fails near
    its border).

    Args:

        segmentation (:class:`ArrayKey`):

            The array storing the segmentation to use.

        descriptor (:class:`ArrayKey`):

            The array of the shape descriptor to generate (``float32``, channels first).

        lsds_mask (:class:`ArrayKey`, optional):

            The array to store a binary mask the size of the descriptors. Background voxels, which
            do not have a descriptor, will be set to 0. This can be used as a loss scale during
            training, such that background is ignored.

        labels_mask (:class:`ArrayKey`, optional):

            The array to use as a mask for labels: if given, ``lsds_mask`` is this mask (instead
            of "segmentation is not background"), as in ``lsds``.

        unlabelled (:class:`ArrayKey`, optional):

            A binary array to indicate unlabelled areas with 0; they are 0 in ``lsds_mask``.

        sigma (``float`` or ``tuple`` of ``float``):

            The context to consider to compute the shape descriptor in world units. This will be
            the standard deviation of a Gaussian kernel or the radius of the sphere.

        mode (``str``):

            Either ``gaussian`` or ``sphere``. Specifies how to accumulate local statistics:
            ``gaussian`` uses Gaussian convolution to compute a weighed average of statistics
            inside an object. ``sphere`` accumulates values in a sphere.

        components (``str``, optional):

            The components of the local shape descriptors to compute and return, a string of
            channel indices such as ``"0129"`` or ``"345"``. Defaults to all components.

        downsample (``int``, optional):

            Downsample the segmentation mask to extract the statistics with the given factor.
            Default is 1 (no downsampling).
    """

    thread_safe = True

    def __init__(
        self,
        segmentation: ArrayKey,
        descriptor: ArrayKey,
        lsds_mask: ArrayKey | None = None,
        labels_mask: ArrayKey | None = None,
        unlabelled: ArrayKey | None = None,
        sigma: float | Sequence[float] = 5.0,
        mode: str = "gaussian",
        components: str | None = None,
        downsample: int = 1,
    ):
        if mode not in MODES:
            raise ArgumentError(f"AddLocalShapeDescriptor: mode must be one of {MODES}, got {mode!r}")
        if int(downsample) != downsample or downsample < 1:
            raise ArgumentError(f"AddLocalShapeDescriptor: downsample must be a positive integer, got {downsample!r}")
        self.segmentation = segmentation
        self.descriptor = descriptor
        self.lsds_mask = lsds_mask
        self.labels_mask = labels_mask
        self.unlabelled = unlabelled
        self.sigma = sigma
        self.mode = mode
        self.components = components
        self.downsample = int(downsample)
        try:
            parse_components(components, 3)  # the 2D range is checked in setup
        except ArgumentError as e:
            raise ArgumentError(f"AddLocalShapeDescriptor: {e}") from None

    def setup(self) -> None:
        for key in (self.segmentation, self.labels_mask, self.unlabelled):
            if key is not None and key not in self.spec:
                raise SpecError(
                    f"AddLocalShapeDescriptor: {key} is not provided upstream; provided: {sorted(self.spec)}"
                )
        seg_spec = self._array_spec(self.segmentation)
        voxel_size = seg_spec.voxel_size
        if voxel_size is None or seg_spec.roi is None:
            raise SpecError(f"AddLocalShapeDescriptor: {self.segmentation} has no voxel size or ROI: {seg_spec}")
        dims = seg_spec.roi.dims
        if dims not in (2, 3):
            raise SpecError(f"AddLocalShapeDescriptor: {self.segmentation} must be 2D or 3D, has ROI {seg_spec.roi}")
        try:
            self._sigma = normalize_sigma(self.sigma, dims)
            self._channels = len(parse_components(self.components, dims))
            reach = kernel_reach(self._sigma, voxel_size, self.mode, self.downsample)
        except ArgumentError as e:
            raise ArgumentError(f"AddLocalShapeDescriptor: {e}") from None
        if self.mode == "sphere" and len({s / v for s, v in zip(self._sigma, voxel_size)}) != 1:
            raise ArgumentError(
                f"AddLocalShapeDescriptor: mode 'sphere' needs the same sigma in voxels on every axis; "
                f"sigma {self._sigma}, voxel size {voxel_size}"
            )
        #: world units of segmentation needed on each side of a descriptor ROI
        self.context = Coordinate(reach) * voxel_size
        logger.debug(
            "%s: context %s (channels %d of %d)", self.name(), self.context, self._channels, num_channels(dims)
        )

        spec = seg_spec.copy()
        spec.roi = seg_spec.roi.grow(-self.context, -self.context)
        spec.dtype = np.float32
        self.provides(self.descriptor, spec)
        if self.lsds_mask is not None:
            self.provides(self.lsds_mask, spec.copy())
        self.enable_autoskip()

    def _array_spec(self, key: ArrayKey) -> ArraySpec:
        spec = self.spec[key]
        if not isinstance(spec, ArraySpec):
            raise SpecError(f"AddLocalShapeDescriptor: {key} must be an array, got {spec!r}")
        return spec

    def _requested_roi(self, request: BatchRequest) -> Roi:
        key = self.descriptor if self.descriptor in request else self.lsds_mask
        roi = request[key].roi  # type: ignore[index]
        if roi is None:
            raise RequestError(f"AddLocalShapeDescriptor: the request for {key} has no ROI")
        return roi

    def prepare(self, request: BatchRequest) -> BatchRequest:
        roi = self._requested_roi(request)
        if self.descriptor in request and self.lsds_mask is not None and self.lsds_mask in request:
            if request[self.lsds_mask].roi != roi:
                raise RequestError(
                    f"AddLocalShapeDescriptor: requested ROI {request[self.lsds_mask].roi} of {self.lsds_mask} "
                    f"differs from the requested ROI {roi} of {self.descriptor}; they must be the same"
                )
        deps = BatchRequest()
        needs = {self.segmentation: roi.grow(self.context, self.context)}
        if self.lsds_mask is not None and self.lsds_mask in request:
            for key in (self.labels_mask, self.unlabelled):
                if key is not None:
                    needs[key] = roi
        for key, needed in needs.items():
            deps[key] = dependency_spec(self._array_spec(key), request, key, needed)
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        roi = self._requested_roi(request)
        segmentation = batch[self.segmentation]
        seg_roi = segmentation.spec.roi
        voxel_size = segmentation.spec.voxel_size
        seg_data = spatial_data(segmentation.data, roi.dims, f"AddLocalShapeDescriptor: {self.segmentation}")
        region = _slices(roi, seg_roi, voxel_size)
        spec = self._array_spec(self.descriptor).copy()
        spec.roi = roi
        outputs = Batch()
        if self.descriptor in request:
            descriptor = get_local_shape_descriptors(
                seg_data,
                self._sigma,
                components=self.components,
                voxel_size=voxel_size,
                region=region,
                mode=self.mode,
                downsample=self.downsample,
            )
            outputs[self.descriptor] = Array(descriptor, spec)
        if self.lsds_mask is not None and self.lsds_mask in request:
            if self.labels_mask is not None:
                mask = self._crop(batch, self.labels_mask, roi) != 0
            else:
                mask = seg_data[region] != 0
            if self.unlabelled is not None:
                mask = mask & (self._crop(batch, self.unlabelled, roi) != 0)
            values = np.broadcast_to(mask.astype(np.float32), (self._channels,) + mask.shape)
            outputs[self.lsds_mask] = Array(np.ascontiguousarray(values), spec.copy())
        return outputs

    def _crop(self, batch: Batch, key: ArrayKey, roi: Roi) -> np.ndarray:
        array = batch[key]
        data = spatial_data(array.data, roi.dims, f"AddLocalShapeDescriptor: {key}")
        return data[_slices(roi, array.spec.roi, array.spec.voxel_size)]


def _slices(roi: Roi, array_roi: Roi | None, voxel_size: Coordinate | None) -> tuple[slice, ...]:
    """Voxel slices of ``roi`` inside an array covering ``array_roi``."""
    if array_roi is None or voxel_size is None:
        raise RequestError(f"AddLocalShapeDescriptor: arrays must be spatial (a ROI and a voxel size) to cut {roi}")
    if not array_roi.contains(roi):
        raise RequestError(f"AddLocalShapeDescriptor: array ROI {array_roi} does not contain {roi}")
    begin = (roi.begin - array_roi.begin) / voxel_size
    end = begin + roi.shape / voxel_size
    return tuple(slice(int(b), int(e)) for b, e in zip(begin, end))
