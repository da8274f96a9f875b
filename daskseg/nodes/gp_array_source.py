"""``GPArraySource``: provide an in-memory :class:`Array` under one array key."""

from __future__ import annotations

from typing import cast

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError
from ..geometry import Roi
from ..pipeline import BatchProvider


class GPArraySource(BatchProvider):
    """Provide ``array`` (gunpowder's ``gunpowder.nodes.gp_array_source.ArraySource``, exported as
    ``GPArraySource``): its spec is the array's, a request gets a copy of the requested part.

    Args:

        key (:class:`ArrayKey`): the key to provide the array under.

        array (:class:`Array`): the array, with ROI and voxel size in its spec (or nonspatial).
    """

    thread_safe = True

    def __init__(self, key: ArrayKey, array: Array):
        if not isinstance(key, ArrayKey) or not isinstance(array, Array):
            raise ArgumentError(f"GPArraySource takes an ArrayKey and an Array, got {key!r} and {type(array).__name__}")
        self.key = key
        self.array = array

    def setup(self) -> None:
        self.provides(self.key, self.array.spec.copy())

    def provide(self, request: BatchRequest) -> Batch:
        batch = Batch()
        if self.array.spec.nonspatial:
            batch[self.key] = self.array.copy()
        else:
            batch[self.key] = self.array.crop(cast(Roi, request[self.key].roi), copy=True)  # spatial: has a ROI
        return batch
