"""``Pad``: make an array's ROI larger (or unbounded), filling outside the data."""

from __future__ import annotations

import logging
from typing import Any, cast

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..geometry import Coordinate, Roi
from ..graph import GraphKey
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class Pad(BatchFilter):
    """Add a padding around an array of another batch provider.

    This is useful if requested batches can be larger than what the source provides (e.g.
    to predict up to the border of a volume). Only the part of a request inside the upstream
    ROI is requested upstream; the rest is filled.

    Args:

        key (:class:`ArrayKey` or :class:`GraphKey`):

            The array or graph to pad (a padded graph has a larger ROI, no more nodes).

        size (:class:`Coordinate` or ``None``):

            The padding to add, in world units (a multiple of the voxel size). If ``None``, an
            infinite padding is added. If a coordinate, this amount is added to the ROI in the
            negative and the positive direction.

        mode (``str``):

            ``'constant'`` (fill with ``value``) or ``'reflect'`` (mirror the data at its
            border, without repeating the border voxel). Default is ``'constant'``.

        value (scalar or ``None``):

            The value to report inside the padding in ``'constant'`` mode. If not given, 0 is
            used.
    """

    thread_safe = True

    def __init__(self, key: ArrayKey | GraphKey, size: Coordinate | None, mode: str = "constant", value: Any = None):
        if mode not in ("constant", "reflect"):
            raise ValueError(f"Pad: invalid padding mode {mode!r}; use 'constant' or 'reflect'")
        self.key = key
        self.size = None if size is None else Coordinate(size)
        self.mode = mode
        self.value = value

    def setup(self) -> None:
        self.enable_autoskip()
        if self.key not in self.spec:
            raise SpecError(f"Pad: asked to pad {self.key}, but it is not provided upstream: {sorted(self.spec)}")
        spec = self.spec[self.key].copy()
        if spec.roi is None:
            raise SpecError(f"Pad: asked to pad {self.key}, but upstream provides it without a ROI")
        if self.size is not None:
            vs = getattr(spec, "voxel_size", None)  # graphs have none
            if vs is not None and not self.size.is_multiple_of(vs):
                raise SpecError(
                    f"Pad: padding size {self.size} of {self.key} is not a multiple of its voxel size {vs}"
                )
            spec.roi = spec.roi.grow(self.size, self.size)
        else:
            spec.roi = Roi((None,) * spec.roi.dims, (None,) * spec.roi.dims)
        self.updates(self.key, spec)
        self.upstream_roi: Roi = cast(Roi, self.get_upstream_provider().spec[self.key].roi)  # checked above

    def prepare(self, request: BatchRequest) -> None:
        # the request is changed in place (a dependency could only grow it)
        roi = request[self.key].roi if self.key in request else None
        if roi is None:
            return
        inside = roi.intersect(self.upstream_roi)
        if inside.empty:
            logger.debug("Pad: requested %s ROI %s lies outside upstream's %s", self.key, roi, self.upstream_roi)
            # an empty ROI still tells the channel shape and dtype of the array
            inside = Roi(self.upstream_roi.begin, (0,) * roi.dims)
        spec = request[self.key].copy()
        spec.roi = inside
        request[self.key] = spec
        return

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        if self.key not in request or request[self.key].roi is None:
            return None
        if isinstance(self.key, GraphKey):  # a padded graph has no more nodes, only a larger ROI
            graph = batch[self.key]
            graph.spec.roi = request[self.key].roi
            return None
        array = batch[self.key]
        to_roi = cast(Roi, request[self.key].roi)  # checked above
        from_roi, vs = array.spec.roi, array.spec.voxel_size
        if from_roi is None or vs is None:
            raise SpecError(f"Pad: {self.key} must be spatial (a ROI and a voxel size) to be padded")
        channels = array.data.ndim - to_roi.dims
        fill = 0 if self.value is None else self.value
        if from_roi.empty:
            if self.mode == "reflect":
                raise SpecError(
                    f"Pad: cannot reflect {self.key} into {to_roi}, which lies entirely outside its data "
                    f"{self.upstream_roi}; use mode='constant' or request closer to the data"
                )
            data = np.full(array.data.shape[:channels] + tuple(to_roi.shape / vs), fill, dtype=array.data.dtype)
        else:
            lower = (from_roi.begin - to_roi.begin) / vs
            upper = (to_roi.end - from_roi.end) / vs
            pad_width = [(0, 0)] * channels + [(int(a), int(b)) for a, b in zip(lower, upper)]
            if self.mode == "reflect":
                data = np.pad(array.data, pad_width, mode="reflect")
            else:
                data = np.pad(array.data, pad_width, mode="constant", constant_values=fill)
        spec = array.spec.copy()
        spec.roi = to_roi
        out = Batch()
        out[self.key] = Array(data, spec, array.attrs)
        return out
