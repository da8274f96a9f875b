"""``AsType``: cast an array to another data type."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class AsType(BatchFilter):
    """Cast arrays to a different datatype (ex: ``np.float32`` --> ``np.uint8``), with numpy's
    ``astype`` (no rescaling, no clipping).

    Args:

        source (:class:`ArrayKey`):

            The key of the array to cast.

        target_dtype (``str`` or dtype):

            The data type to cast to.

        target (:class:`ArrayKey`, optional):

            The key of the array to store the cast ``source``. If not given, ``source`` is
            replaced.
    """

    thread_safe = True

    def __init__(self, source: ArrayKey, target_dtype: Any, target: ArrayKey | None = None):
        if not isinstance(source, ArrayKey) or (target is not None and not isinstance(target, ArrayKey)):
            raise TypeError(f"AsType: source and target must be ArrayKeys, got {source!r} and {target!r}")
        self.source = source
        self.target = source if target is None else target
        self.target_dtype = np.dtype(target_dtype)

    def setup(self) -> None:
        if self.source not in self.spec:
            raise SpecError(f"AsType: {self.source} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.source].copy()
        spec.dtype = self.target_dtype
        if self.target != self.source:
            self.provides(self.target, spec)
        else:
            self.updates(self.source, spec)
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        spec = request[self.target].copy()
        spec.dtype = None  # upstream delivers its own dtype (a dependency's dtype replaces the request's)
        if self.target != self.source and self.source in request:
            spec.dtype = request[self.source].dtype
        deps[self.source] = spec
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        source = batch[self.source]
        spec = source.spec.copy()
        spec.dtype = self.target_dtype
        if self.target != self.source and not spec.nonspatial and spec.roi is not None:
            target_roi = request[self.target].roi
            if target_roi is not None and target_roi != spec.roi:
                source = source.crop(target_roi, copy=False)
                spec.roi = target_roi
        outputs = Batch()
        outputs[self.target] = Array(source.data.astype(self.target_dtype), spec, source.attrs)
        return outputs
