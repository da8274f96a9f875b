"""``ExcludeLabels``: replace some label ids by the background, optionally with an ignore mask."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from scipy.ndimage import distance_transform_edt

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class ExcludeLabels(BatchFilter):
    """Exclude several labels from the ground truth: they are replaced by ``background_value``.

    An optional ignore mask is 1 on every voxel that is not excluded and on excluded voxels closer
    than ``ignore_mask_erode`` (world units) to a voxel that is not excluded, and 0 elsewhere.

    Args:

        labels (:class:`ArrayKey`):

            The array containing the labels.

        exclude (``list`` of ``int``):

            The labels to exclude from ``labels``.

        ignore_mask (:class:`ArrayKey`, optional):

            The ignore mask to create.

        ignore_mask_erode (``float``, optional):

            By how much (in world units) to erode the ignore mask.

        background_value (``int``, optional):

            Value to replace excluded IDs, defaults to 0.
    """

    thread_safe = True

    def __init__(
        self,
        labels: ArrayKey,
        exclude: Iterable[int],
        ignore_mask: ArrayKey | None = None,
        ignore_mask_erode: float = 0,
        background_value: int = 0,
    ):
        if not isinstance(labels, ArrayKey) or (ignore_mask is not None and not isinstance(ignore_mask, ArrayKey)):
            raise ArgumentError(f"ExcludeLabels: labels and ignore_mask must be ArrayKeys, got {labels!r}, {ignore_mask!r}")
        self.labels = labels
        self.exclude = set(int(x) for x in exclude)
        self.ignore_mask = ignore_mask
        self.ignore_mask_erode = ignore_mask_erode
        self.background_value = background_value

    def setup(self) -> None:
        if self.labels not in self.spec:
            raise SpecError(f"ExcludeLabels: {self.labels} is not provided upstream; provided: {sorted(self.spec)}")
        self.updates(self.labels, self.spec[self.labels].copy())
        if self.ignore_mask is not None:
            spec = self.spec[self.labels].copy()
            spec.dtype = np.dtype(np.uint8)
            spec.interpolatable = False
            self.provides(self.ignore_mask, spec)

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        rois = [request[k].roi for k in (self.labels, self.ignore_mask) if k is not None and k in request]
        first, last = rois[0], rois[-1]
        roi = first.union(last) if first is not None and last is not None else first
        spec = self.spec[self.labels].copy()
        spec.roi = roi
        deps[self.labels] = spec
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        gt = batch[self.labels]
        data = gt.data.copy()
        excluded = np.isin(data, list(self.exclude))
        logger.debug("ExcludeLabels: %d voxels of %s excluded", int(excluded.sum()), self.labels)
        data[excluded] = self.background_value
        outputs = Batch()
        outputs[self.labels] = Array(data, gt.spec.copy(), gt.attrs)
        if self.ignore_mask is None or self.ignore_mask not in request:
            return outputs
        voxel_size = gt.spec.voxel_size if gt.spec.voxel_size is not None else (1,) * excluded.ndim
        if excluded.all():
            keep = np.zeros(data.shape, dtype=bool)  # nothing included: nothing within reach of it either
        else:
            distance_to_include = distance_transform_edt(excluded, sampling=tuple(voxel_size))
            keep = distance_to_include < self.ignore_mask_erode
        keep |= ~excluded
        spec = gt.spec.copy()
        spec.dtype = np.dtype(np.uint8)
        spec.interpolatable = False
        mask = Array(keep.astype(np.uint8), spec)
        asked = request[self.ignore_mask].roi
        outputs[self.ignore_mask] = mask.crop(asked) if asked is not None else mask
        return outputs
