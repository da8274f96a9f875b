"""``RenumberConnectedComponents``: give every connected component of one label its own label."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class RenumberConnectedComponents(BatchFilter):
    """Find connected components of the same value, and replace each component with a new label.

    Components are face-connected (6-neighbourhood in 3D, as gunpowder's ``malis.mknhood3d``) and
    numbered 1, 2, ... in the order of their first voxel (C order). Background (0) stays 0.

    Args:

        labels (:class:`ArrayKey`):

            The label array to modify.
    """

    thread_safe = True

    def __init__(self, labels: ArrayKey):
        if not isinstance(labels, ArrayKey):
            raise ArgumentError(f"RenumberConnectedComponents: labels must be an ArrayKey, got {labels!r}")
        self.labels = labels

    def setup(self) -> None:
        if self.labels not in self.spec:
            raise SpecError(
                f"RenumberConnectedComponents: {self.labels} is not provided upstream; provided: {sorted(self.spec)}"
            )
        self.updates(self.labels, self.spec[self.labels].copy())
        self.enable_autoskip()

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        array = batch[self.labels]
        data = array.data
        dims = array.spec.roi.dims if array.spec.roi is not None else data.ndim
        structure = np.zeros((3,) * data.ndim, dtype=bool)
        # channel axes are not spatial: no connections across them
        structure[(1,) * (data.ndim - dims)] = ndimage.generate_binary_structure(dims, 1)
        out = np.zeros(data.shape, dtype=np.int64)
        count = 0
        for value in np.unique(data):
            if value == 0:
                continue
            components, n = ndimage.label(data == value, structure=structure)
            out[components > 0] = components[components > 0] + count
            count += n
        # number in order of first voxel, independent of the label values
        _, first = np.unique(out.ravel(), return_index=True)
        order = np.unique(out.ravel())
        relabel = np.zeros(count + 1, dtype=np.int64)
        nonzero = order != 0
        ranks = np.argsort(np.argsort(first[nonzero])) + 1
        relabel[order[nonzero]] = ranks
        out = relabel[out]
        if np.issubdtype(data.dtype, np.integer) and count > np.iinfo(data.dtype).max:
            raise SpecError(
                f"RenumberConnectedComponents: {count} components do not fit {self.labels}'s dtype {data.dtype}; "
                f"cast it first (AsType)"
            )
        logger.debug("RenumberConnectedComponents: %d components in %s", count, self.labels)
        outputs = Batch()
        outputs[self.labels] = Array(out.astype(data.dtype), array.spec.copy(), array.attrs)
        return outputs
