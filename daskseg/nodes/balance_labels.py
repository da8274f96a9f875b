"""``BalanceLabels``: per-voxel loss weights that balance the classes of a label array."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter
from ..pipeline.filter import dependency_spec
from ._slabs import slab_slices

logger = logging.getLogger(__name__)


class BalanceLabels(BatchFilter):
    """Creates a scale array to balance the loss between class labels.

    In the masked-in area of each slab, the fraction ``frac_c`` of voxels of class ``c`` is
    computed (voxels counted where the mask is non-zero, divided by the sum of the mask), clipped
    to ``[clipmin, clipmax]``, and every voxel of class ``c`` gets the weight::

        scale = mask / (num_classes * frac_c)

    so that, when no clipping happens, every class contributes the same total weight. Masked-out
    voxels get a scale of 0. Note that this only balances loss weights per batch and does not
    accumulate statistics about class balance across batches.

    Args:

        labels (:class:`ArrayKey`):

            An array containing binary or integer labels in ``[0, num_classes)`` (e.g. the
            affinities of :class:`AddAffinities`).

        scales (:class:`ArrayKey`):

            A array with scales to be created. This new array will have the same ROI and
            resolution as ``labels``, and dtype ``float32``.

        mask (:class:`ArrayKey`, optional):

            An optional mask (or list of masks) to consider for balancing. Every voxel marked
            with a 0 will not contribute to the scaling and will have a scale of 0 in ``scales``.

        slab (``tuple`` of ``int``, optional):

            A shape specification to perform the balancing in slabs of this size. -1 can be used
            to refer to the actual size of the label array. For example, a slab of::

                (1, -1, -1, -1)

            will perform the balancing for every channel ``[0:1, :]``, ``[1:2, :]``, ...
            individually.

        num_classes (``int``, optional):

            The number of classes. Labels will be expected to be in the interval
            [0, ``num_classes``). Defaults to 2 for binary classification.

        clipmin (``float``, optional):
        clipmax (``float``, optional):

            The class fractions are clipped to this range before computing the weights, so that
            rare classes do not get extreme weights. ``None`` disables a bound.
    """

    thread_safe = True

    def __init__(
        self,
        labels: ArrayKey,
        scales: ArrayKey,
        mask: ArrayKey | Iterable[ArrayKey] | None = None,
        slab: Sequence[int] | None = None,
        num_classes: int = 2,
        clipmin: float | None = 0.05,
        clipmax: float | None = 0.95,
    ):
        self.labels = labels
        self.scales = scales
        if mask is None:
            self.masks: list[ArrayKey] = []
        elif isinstance(mask, ArrayKey):
            self.masks = [mask]
        else:
            self.masks = list(mask)
        self.slab = tuple(slab) if slab is not None else None
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"BalanceLabels: num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.clipmin = clipmin
        self.clipmax = clipmax

    def setup(self) -> None:
        for key in [self.labels, *self.masks]:
            if key not in self.spec:
                raise SpecError(f"BalanceLabels: {key} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.labels].copy()
        spec.dtype = np.dtype(np.float32)
        self.provides(self.scales, spec)
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        for key in [self.labels, *self.masks]:
            deps[key] = dependency_spec(request[self.scales], request, key)
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        roi = request[self.scales].roi
        labels = batch[self.labels]
        if roi is not None and labels.spec.roi != roi:
            labels = labels.crop(roi, copy=False)
        data = self._check_labels(labels.data)

        mask = None
        for key in self.masks:
            array = batch[key]
            if roi is not None and array.spec.roi != roi:
                array = array.crop(roi, copy=False)
            try:
                mask = np.broadcast_to(array.data, data.shape).astype(np.float32) if mask is None else mask * array.data
            except ValueError:
                raise SpecError(
                    f"BalanceLabels: mask {key} of shape {array.data.shape} does not fit labels {self.labels} of "
                    f"shape {data.shape}"
                ) from None

        scale = np.empty(data.shape, dtype=np.float32)
        for slices in slab_slices(data.shape, self.slab or (-1,) * data.ndim, f"BalanceLabels: labels {self.labels}"):
            scale[slices] = self._weights(data[slices], None if mask is None else mask[slices])

        spec = self.spec[self.scales].copy()
        spec.roi = labels.spec.roi
        outputs = Batch()
        outputs[self.scales] = Array(scale, spec)
        return outputs

    def _check_labels(self, data: np.ndarray) -> np.ndarray:
        if data.dtype == np.bool_:
            return data.view(np.uint8)
        if data.size == 0:
            return data.astype(np.intp)
        lowest, highest = data.min(), data.max()
        if lowest < 0 or highest >= self.num_classes:
            raise ValueError(
                f"BalanceLabels: labels {self.labels} have values in [{lowest}, {highest}], not in "
                f"[0, {self.num_classes}); set num_classes"
            )
        if not np.issubdtype(data.dtype, np.integer):
            if not np.array_equal(data, np.floor(data)):
                raise ValueError(f"BalanceLabels: labels {self.labels} ({data.dtype}) are not integral class ids")
            data = data.astype(np.intp)
        return data

    def _weights(self, labels: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """The scales of one slab: ``mask / (num_classes * clip(frac_c))`` at voxels of class ``c``."""
        if mask is None:
            masked_in = float(labels.size)
            counted = labels
        else:
            masked_in = float(mask.sum(dtype=np.float64))
            counted = labels[mask != 0]
        if self.num_classes <= 16:
            counts = np.array([np.count_nonzero(counted == c) for c in range(self.num_classes)])
        else:
            counts = np.bincount(counted.ravel().astype(np.intp), minlength=self.num_classes)
        fracs = counts / masked_in if masked_in > 0 else np.zeros(self.num_classes)
        if self.clipmin is not None or self.clipmax is not None:
            fracs = np.clip(fracs, self.clipmin, self.clipmax)
        present = counts > 0
        weights = np.zeros(self.num_classes, dtype=np.float64)
        weights[present] = 1.0 / (self.num_classes * fracs[present])
        scale = weights.astype(np.float32)[labels]
        if mask is not None:
            scale *= mask
        return scale
