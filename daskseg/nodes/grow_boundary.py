"""``GrowBoundary``: widen the background boundary between labelled objects."""

from __future__ import annotations

import logging

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import GeometryError, SpecError
from ..pipeline import BatchFilter
from ._axis_op import spatial_data

logger = logging.getLogger(__name__)


class GrowBoundary(BatchFilter):
    """Grow a boundary between regions in a label array. Does not grow at the border of the batch
    or of an optionally provided mask.

    Every object (every label other than ``background``) is eroded by ``steps`` voxels wherever it
    touches a voxel with a different label, background included; the eroded voxels are set to
    ``background``. Erosion uses the face-connected (cross-shaped) structuring element ``steps``
    times, so a voxel becomes background iff a voxel of another label lies within city-block
    distance ``steps`` of it. Voxels outside the batch do not count, so objects do not shrink at
    the batch border. This is the semantics of gunpowder's ``GrowBoundary`` (one binary erosion per
    label), computed for all labels at once.

    Args:

        labels (:class:`ArrayKey`):

            The array containing labels (integer ids; spatial axes last).

        mask (:class:`ArrayKey`, optional):

            A mask indicating unknown regions with 0. This is to avoid boundaries to grow between
            labelled and unknown regions: masked-out voxels count as belonging to every object.
            The boundary is grown only where ``mask`` and ``labels`` overlap.

        steps (``int``, optional):

            Number of voxels (not world units!) to grow. ``0`` changes nothing.

        background (``int``, optional):

            The label to assign to the boundary voxels.

        only_xy (``bool``, optional):

            Do not grow a boundary in the z direction (the first of three spatial axes): every
            z-section is processed on its own.
    """

    thread_safe = True

    def __init__(
        self,
        labels: ArrayKey,
        mask: ArrayKey | None = None,
        steps: int = 1,
        background: int = 0,
        only_xy: bool = False,
    ):
        if int(steps) != steps or steps < 0:
            raise ValueError(f"GrowBoundary: steps must be a non-negative integer, got {steps!r}")
        self.labels = labels
        self.mask = mask
        self.steps = int(steps)
        self.background = background
        self.only_xy = only_xy

    def setup(self) -> None:
        for key in (self.labels, self.mask):
            if key is not None and key not in self.spec:
                raise SpecError(f"GrowBoundary: {key} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.labels]
        if self.only_xy and spec.roi is not None and spec.roi.dims != 3:
            raise SpecError(f"GrowBoundary: only_xy needs 3D labels, but {self.labels} has ROI {spec.roi}")
        if self.mask is not None:
            mask_vs = self.spec[self.mask].voxel_size
            if mask_vs is not None and spec.voxel_size is not None and mask_vs != spec.voxel_size:
                raise SpecError(
                    f"GrowBoundary: mask {self.mask} has voxel size {mask_vs}, labels {self.labels} have "
                    f"{spec.voxel_size}; they must match"
                )
        self.updates(self.labels, spec.copy())
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        deps[self.labels] = request[self.labels].copy()
        if self.mask is not None:
            mask_spec = request[self.labels].copy()
            mask_spec.dtype = None
            provided = self.spec[self.mask].roi
            if mask_spec.roi is not None and provided is not None:
                # the mask may cover less than the labels: grow only where both exist
                mask_spec.roi = mask_spec.roi.intersect(provided)
                if mask_spec.roi.empty:
                    raise GeometryError(
                        f"GrowBoundary: requested ROI {request[self.labels].roi} of {self.labels} does not "
                        f"intersect the ROI {provided} of mask {self.mask}"
                    )
            deps[self.mask] = mask_spec
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        labels = batch[self.labels]
        roi = labels.spec.roi
        dims = roi.dims if roi is not None else labels.data.ndim
        channel_dims = labels.data.ndim - dims
        spatial_axes = tuple(range(channel_dims, labels.data.ndim))
        axes = spatial_axes[-2:] if self.only_xy else spatial_axes
        data = np.array(labels.data)  # never modify upstream's array in place

        if self.mask is None:
            grow_boundary(data, self.steps, self.background, axes, out=data)
        else:
            mask = batch[self.mask]
            if mask.spec.roi is None or roi is None:
                raise GeometryError(f"GrowBoundary: labels {self.labels} and mask {self.mask} must both have a ROI")
            common = mask.spec.roi.intersect(roi)
            if common.empty:
                raise GeometryError(
                    f"GrowBoundary: ROIs of labels {self.labels} {roi} and mask {self.mask} {mask.spec.roi} "
                    "do not intersect"
                )
            vs = labels.spec.voxel_size
            in_labels = _slices(common, roi, vs, channel_dims)
            mask_data = spatial_data(mask.crop(common, copy=False).data, dims, f"GrowBoundary: mask {self.mask}")
            view = data[in_labels]
            view[...] = grow_boundary(view, self.steps, self.background, axes, mask=mask_data)

        spec = labels.spec.copy()
        out = Batch()
        out[self.labels] = Array(data, spec, labels.attrs)
        return out


def _slices(inner, outer, voxel_size, channel_dims: int) -> tuple[slice, ...]:
    begin = (inner.begin - outer.begin) / voxel_size
    end = begin + inner.shape / voxel_size
    return (slice(None),) * channel_dims + tuple(slice(b, e) for b, e in zip(begin, end))


def _shifted(ndim: int, axis: int, start, stop) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[axis] = slice(start, stop)
    return tuple(index)


def _stride(shape, axis: int) -> int:
    return int(np.prod(shape[axis + 1 :], dtype=np.int64))


def _combine_neighbours(out: np.ndarray, source: np.ndarray, axis: int, ufunc, identity) -> None:
    """``out[p] = ufunc(out[p], source[p - e], source[p + e])`` along ``axis``, ignoring the outside.

    Works on the flat (contiguous) arrays, which is several times faster than strided slices;
    the first/last slice of ``source`` is set to ``identity`` while shifting so that nothing leaks
    across rows, and restored afterwards.
    """
    n = out.shape[axis]
    if n < 2:
        return
    s = _stride(out.shape, axis)
    flat_out, flat_src = out.reshape(-1), source.reshape(-1)
    first = _shifted(source.ndim, axis, 0, 1)
    last = _shifted(source.ndim, axis, n - 1, n)
    wraps = axis > 0
    # out[p] with source[p + e]: the source's first slice along axis must not reach the previous row
    if wraps:
        saved = source[first].copy()
        source[first] = identity
    ufunc(flat_out[:-s], flat_src[s:], out=flat_out[:-s])
    if wraps:
        source[first] = saved
        saved = source[last].copy()
        source[last] = identity
    ufunc(flat_out[s:], flat_src[:-s], out=flat_out[s:])
    if wraps:
        source[last] = saved


def _boundary(labels: np.ndarray, axes) -> np.ndarray:
    """Voxels with a face neighbour (along ``axes``, inside the array) of a different label."""
    labels = np.ascontiguousarray(labels)
    flat = labels.reshape(-1)
    boundary = np.zeros(labels.shape, dtype=bool)
    flat_boundary = boundary.reshape(-1)
    differs = np.empty(labels.shape, dtype=bool)
    flat_differs = differs.reshape(-1)
    for axis in axes:
        n = labels.shape[axis]
        if n < 2:
            continue
        s = _stride(labels.shape, axis)
        # differs[p]: labels[p] != labels[p + e], False on the last slice along axis
        np.not_equal(flat[:-s], flat[s:], out=flat_differs[:-s])
        flat_differs[-s:] = False
        differs[_shifted(labels.ndim, axis, n - 1, n)] = False
        np.bitwise_or(flat_boundary, flat_differs, out=flat_boundary)
        np.bitwise_or(flat_boundary[s:], flat_differs[:-s], out=flat_boundary[s:])
    return boundary


def _dilate_cross(binary: np.ndarray, iterations: int, axes) -> np.ndarray:
    """Binary dilation by the city-block ball of radius ``iterations`` along ``axes``; outside is 0."""
    for _ in range(iterations):
        source = binary.copy()
        for axis in axes:
            _combine_neighbours(binary, source, axis, np.bitwise_or, False)
    return binary


def _extreme_cross(values: np.ndarray, iterations: int, axes, ufunc, identity) -> np.ndarray:
    """Grey erosion/dilation (``ufunc`` = minimum/maximum) by the city-block ball; outside ignored."""
    for _ in range(iterations):
        source = values.copy()
        for axis in axes:
            _combine_neighbours(values, source, axis, ufunc, identity)
    return values


def _limits(dtype: np.dtype):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return info.min, info.max
    if np.issubdtype(dtype, np.floating):
        return -np.inf, np.inf
    if dtype == np.bool_:
        return False, True
    raise SpecError(f"GrowBoundary: labels must be integers, got dtype {dtype}")


def grow_boundary(
    labels: np.ndarray,
    steps: int,
    background=0,
    axes=None,
    mask: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Erode every non-background object of ``labels`` by ``steps`` voxels where it meets another label.

    A voxel keeps its label iff all voxels within city-block distance ``steps`` along ``axes``
    (inside the array) carry that same label; other voxels become ``background``. With ``mask``
    (0 = unknown), unknown voxels are ignored when deciding, so objects do not shrink towards
    unknown regions, and an unknown voxel keeps its label iff the known voxels around it are one
    object. Returns ``out`` (a new array if not given).
    """
    axes = tuple(range(labels.ndim)) if axes is None else tuple(axes)
    if out is None:
        out = np.array(labels)
    elif out is not labels:
        out[...] = labels
    if steps == 0 or labels.size == 0:
        return out

    if mask is None:
        # a voxel is within `steps` of a different label iff it is within `steps - 1` of a voxel
        # that has a differing face neighbour (city-block balls are face-connected)
        near = _dilate_cross(_boundary(labels, axes), steps - 1, axes)
        np.putmask(out, near, background)
        return out

    try:
        mask = np.broadcast_to(mask, labels.shape)
    except ValueError:
        raise SpecError(
            f"GrowBoundary: mask of shape {mask.shape} does not match labels of shape {labels.shape}"
        ) from None
    known = mask != 0
    low, high = _limits(labels.dtype)
    lowest = _extreme_cross(np.where(known, labels, high), steps, axes, np.minimum, high)
    highest = _extreme_cross(np.where(known, labels, low), steps, axes, np.maximum, low)
    uniform = (lowest == highest) & (lowest != background)
    # no known voxel in reach: the voxel is unknown and counts as part of every object
    if np.any(labels != background):
        uniform |= lowest > highest
    out[~uniform] = background
    return out
