"""``BatchFilter``: a node with one upstream that changes requests on the way up and batches on the way down.

Subclasses implement (all optional):

- ``setup()``: declare new arrays with ``provides`` or changed ones with ``updates``; ``self.spec``
  starts as a copy of the upstream spec.
- ``prepare(request)``: return a ``BatchRequest`` of the upstream dependencies (or modify the request
  in place and return None, the older gunpowder style). What it decides for this request and
  ``process`` needs (a drawn transformation, ...) it leaves in ``request.plan``.
- ``process(batch, request)``: compute; modify ``batch`` in place or return a new ``Batch``;
  ``request.plan`` is what ``prepare`` left there for this request (None if nothing).

Keeping per-request state in ``request.plan`` instead of on ``self`` lets one node serve several
requests at once (``Scan(num_workers=4)``, the threads of a Dask worker under ``PreCache``); such a
node says so with ``thread_safe = True``. Nodes that do not (gunpowder nodes that keep state on
``self`` between ``prepare`` and ``process``) still work: they serve one request at a time.
"""

from __future__ import annotations

import copy

from ..array import ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import PipelineError, SpecError
from ..geometry import Roi
from ..graph import GraphKey, GraphSpec
from ..profiling import Timing
from .provider import BatchProvider


def dependency_spec(spec: ArraySpec, request: BatchRequest, key: ArrayKey, roi: Roi | None = None) -> ArraySpec:
    """What a filter requests of ``key`` upstream: a copy of ``spec`` that accepts any dtype and
    interpolatability, with ROI ``roi`` (default ``spec``'s), grown to cover what downstream asked
    of ``key`` itself (so the batch can pass it on).

    Args:
        spec (ArraySpec): the geometry to start from (the filter's own output spec, or upstream's).
        request (BatchRequest): the request the filter is preparing.
        key (ArrayKey): the array to request upstream.
        roi (Roi, optional): the ROI the filter needs of ``key``.
    """
    spec = spec.copy()
    spec.dtype = None
    spec.interpolatable = None
    if roi is not None:
        spec.roi = roi
    asked = request[key].roi if key in request else None
    if asked is not None and spec.roi is not None:
        spec.roi = spec.roi.union(asked)
    return spec


class BatchFilter(BatchProvider):
    """Base class of nodes with exactly one upstream provider."""

    _times_itself = True
    _accepts_placeholders = True

    def _init_spec(self) -> None:
        upstream = self.get_upstream_provider()
        self._spec = copy.deepcopy(upstream.spec)

    def updates(self, key: ArrayKey | GraphKey, spec: ArraySpec | GraphSpec) -> None:
        """Declare (in ``setup``) that this node changes ``key`` (an array or graph upstream provides)."""
        if key not in self.spec:
            raise SpecError(f"{self.name()} updates {key}, but it is not provided upstream: {sorted(self.spec)}")
        self._check_new_spec(key, spec)
        self.spec[key] = spec
        self._updated_keys().add(key)

    def provides(self, key: ArrayKey | GraphKey, spec: ArraySpec | GraphSpec) -> None:
        super().provides(key, spec)
        self._provided_keys().add(key)

    def _updated_keys(self) -> set:
        if not hasattr(self, "_updated"):
            self._updated: set = set()
        return self._updated

    def _provided_keys(self) -> set:
        if not hasattr(self, "_provided"):
            self._provided: set = set()
        return self._provided

    def enable_autoskip(self, skip: bool = True) -> None:
        """Skip this node for requests that contain none of the keys it provides or updates."""
        self._autoskip_enabled = skip

    def _can_skip(self, request: BatchRequest) -> bool:
        if not getattr(self, "_autoskip_enabled", False):
            return False
        mine = self._updated_keys() | self._provided_keys()
        return not any(key in mine for key in request)

    def internal_setup(self) -> None:
        self._updated = set()
        self._provided = set()
        super().internal_setup()

    def prepare(self, request: BatchRequest) -> BatchRequest | None:
        """Return what this node needs from upstream to serve ``request`` (None: the request itself)."""
        return None

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        """Compute this node's output in ``batch`` for the downstream ``request``."""
        return None

    def provide(self, request: BatchRequest) -> Batch:
        skip = self._can_skip(request)
        downstream_request = request.copy()
        timing_prepare = Timing(self, "prepare")
        dependencies = None
        with timing_prepare:
            if skip:
                upstream_request = request.copy()
            else:
                self.seed_global_rngs(request)
                upstream_request = request.copy()
                dependencies = self.prepare(upstream_request)
                downstream_request.plan = upstream_request.plan
                upstream_request.plan = None
                if isinstance(dependencies, BatchRequest):
                    # in-place changes prepare() made to the request count too, as in gunpowder
                    upstream_request = upstream_request.update_with(dependencies)
                elif dependencies is not None:
                    raise PipelineError(
                        f"{self.name()}.prepare() must return a BatchRequest or None, not {type(dependencies).__name__}"
                    )
                for key in self._provided_keys():
                    if key in upstream_request:
                        del upstream_request[key]
                upstream_request.random_seed = request.random_seed
            upstream_request.remove_placeholders()

        batch = self.get_upstream_provider().request_batch(upstream_request)

        timing_process = Timing(self, "process")
        with timing_process:
            if not skip:
                if dependencies is not None:
                    dependencies.remove_placeholders()
                    node_batch = batch.crop(dependencies)
                else:
                    node_batch = batch
                downstream_request.remove_placeholders()
                processed = self.process(node_batch, downstream_request)
                if processed is None:
                    processed = node_batch
                batch = batch.merge(processed, merge_profiling_stats=False)
        batch.profiling_stats.add(timing_prepare)
        batch.profiling_stats.add(timing_process)
        return batch

