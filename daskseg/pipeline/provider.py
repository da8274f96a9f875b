"""``BatchProvider``: the gunpowder node protocol every daskseg node implements.

A provider declares what it can deliver in ``setup()`` (via ``provides``), and delivers it in
``provide(request)``. ``request_batch`` wraps ``provide`` with the checks that make errors readable
(unknown key, ROI outside what is provided, voxel-size or dtype mismatch) and returns exactly the
requested ROIs and keys.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import ClassVar

import numpy as np

from ..array import ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest, ProviderSpec
from ..errors import PipelineError, RequestError, SpecError
from ..graph import GraphKey, GraphSpec
from ..profiling import Timing

logger = logging.getLogger(__name__)


class BatchProvider:
    """Base class of all nodes: sources override ``setup`` and ``provide``."""

    # filters time their own prepare/process, joins (RandomProvider) are not timed (their provide()
    # is mostly upstream's time); sources are timed around provide()
    _times_itself = False
    # whether provide() gets placeholder specs (filters and joins do; sources never read them)
    _accepts_placeholders = False
    #: Whether one instance may serve several requests at once (from ``Scan(num_workers>1)``'s
    #: threads or a multi-threaded Dask worker under ``PreCache``): True for nodes that keep
    #: per-request state in ``request.plan`` (or locals), not on ``self``. Every daskseg node is;
    #: for other nodes (False, the default) requests are served one at a time.
    thread_safe: ClassVar[bool] = False
    #: The name this node's random stream is keyed by (see ``pipeline/streams.py``); None: its
    #: class and its index among the nodes of that class in the pipeline.
    seed_name: str | None = None
    _upstream_providers: list[BatchProvider]
    _spec: ProviderSpec | None

    # --- wiring ------------------------------------------------------------------------------
    def add_upstream_provider(self, provider: BatchProvider) -> BatchProvider:
        self._upstream().append(provider)
        return provider

    def remove_upstream_providers(self) -> None:
        self._upstream_providers = []

    def get_upstream_providers(self) -> list[BatchProvider]:
        return list(self._upstream())

    def get_upstream_provider(self) -> BatchProvider:
        ups = self._upstream()
        if len(ups) != 1:
            raise PipelineError(
                f"{self.name()} needs exactly one upstream provider, it has {len(ups)}; "
                "use a tuple of pipelines + RandomProvider()/MergeProvider() to join several"
            )
        return ups[0]

    def _upstream(self) -> list[BatchProvider]:
        if not hasattr(self, "_upstream_providers"):
            self._upstream_providers = []
        return self._upstream_providers

    def __add__(self, other):
        from .pipeline import Pipeline

        return Pipeline(self) + other

    def __radd__(self, other):
        from .pipeline import Pipeline

        return other + Pipeline(self)

    # --- spec --------------------------------------------------------------------------------
    @property
    def spec(self) -> ProviderSpec:
        """What this node provides (after setup: upstream's spec plus what it adds or updates)."""
        if not hasattr(self, "_spec") or self._spec is None:
            self._spec = ProviderSpec()
        return self._spec

    def provides(self, key: ArrayKey | GraphKey, spec: ArraySpec | GraphSpec) -> None:
        """Declare (in ``setup``) that this node provides a new array or graph ``key``."""
        if key in self.spec:
            raise SpecError(f"{self.name()} provides {key}, but it is already provided upstream: {self.spec[key]}")
        self._check_new_spec(key, spec)
        self.spec[key] = spec

    def _check_new_spec(self, key: ArrayKey | GraphKey, spec: ArraySpec | GraphSpec) -> None:
        if isinstance(key, GraphKey) != isinstance(spec, GraphSpec):
            raise SpecError(f"{self.name()}: {key} needs a{' GraphSpec' if isinstance(key, GraphKey) else 'n ArraySpec'}, got {spec!r}")
        if isinstance(spec, GraphSpec) or spec.nonspatial:
            return
        if spec.roi is not None and spec.voxel_size is not None and not spec.roi.is_aligned(spec.voxel_size):
            raise SpecError(
                f"{self.name()}: ROI {spec.roi} of {key} is not a multiple of its voxel size {spec.voxel_size}"
            )

    # --- life cycle --------------------------------------------------------------------------
    def setup(self) -> None:
        """Declare what this node provides; called once, upstream nodes first."""

    def teardown(self) -> None:
        """Release resources (files, workers); called once when the pipeline is torn down."""

    @property
    def is_set_up(self) -> bool:
        """Whether ``setup`` ran and ``teardown`` has not yet."""
        return getattr(self, "_is_setup", False)

    def internal_teardown(self) -> None:
        self._is_setup = False
        self.teardown()

    def _init_spec(self) -> None:
        self._spec = None

    def internal_setup(self) -> None:
        self._is_setup = False
        self._init_spec()
        self.setup()
        # a node that keeps per-request state on self serves one request at a time
        self._serial_lock = None if self.thread_safe else threading.Lock()
        self._is_setup = True

    # --- requests ----------------------------------------------------------------------------
    def request_batch(self, request: BatchRequest) -> Batch:
        """Check ``request`` against this node's spec, provide it, and return exactly what was asked."""
        if not self.is_set_up:
            raise PipelineError(f"{self.name()} is not set up: request batches inside `with build(pipeline):`")
        request = request.with_seed()
        self.check_request_consistency(request)
        timing = None if self._times_itself else Timing(self, "provide")
        if timing is not None:
            timing.start()
        upstream_request = request.copy()
        if not self._accepts_placeholders:
            upstream_request.remove_placeholders()
        if self._serial_lock is None:
            batch = self.provide(upstream_request)
        else:
            with self._serial_lock:
                batch = self.provide(upstream_request)
        if timing is not None:
            timing.stop()
            batch.profiling_stats.add(timing)
        return self._deliver(batch, request)

    def check_request_consistency(self, request: BatchRequest) -> None:
        """Raise a ``RequestError`` naming the key and ROIs if ``request`` asks for the impossible."""
        for key, req in request.items():
            if req.placeholder:
                continue
            if key not in self.spec:
                raise RequestError(
                    f"{self.name()}: {key} was requested (ROI {req.roi}) but is not provided here; provided keys: "
                    f"{sorted(self.spec)}"
                )
            provided = self.spec[key]
            if isinstance(key, GraphKey):
                self._check_graph_request(key, req, provided)
                continue
            if provided.nonspatial or req.roi is None:
                continue
            if req.voxel_size is not None and provided.voxel_size is not None and req.voxel_size != provided.voxel_size:
                raise RequestError(
                    f"{self.name()}: {key} requested at voxel size {req.voxel_size} (ROI {req.roi}), but provided at "
                    f"{provided.voxel_size} (ROI {provided.roi})"
                )
            if req.dtype is not None and provided.dtype is not None and req.dtype != provided.dtype:
                raise RequestError(
                    f"{self.name()}: {key} requested as {req.dtype} (ROI {req.roi}), but provided as {provided.dtype}"
                )
            vs = provided.voxel_size
            if vs is not None and not req.roi.is_aligned(vs):
                raise RequestError(
                    f"{self.name()}: requested ROI {req.roi} of {key} is not a multiple of its voxel size {vs}"
                )
            if provided.roi is not None and not provided.roi.contains(req.roi):
                raise RequestError(
                    f"{self.name()}: requested ROI {req.roi} of {key} lies outside the provided ROI {provided.roi}"
                )

    def _check_graph_request(self, key: GraphKey, req: GraphSpec, provided: GraphSpec) -> None:
        if req.roi is not None and provided.roi is not None and not provided.roi.contains(req.roi):
            raise RequestError(
                f"{self.name()}: requested ROI {req.roi} of {key} lies outside the provided ROI {provided.roi}"
            )
        if req.directed is not None and provided.directed is not None and req.directed != provided.directed:
            raise RequestError(
                f"{self.name()}: {key} requested with directed={req.directed}, but provided with directed={provided.directed}"
            )

    def _deliver(self, batch: Batch, request: BatchRequest) -> Batch:
        out = batch._empty_like()
        for key, req in request.items():
            if req.placeholder:
                continue
            if isinstance(key, GraphKey):
                out[key] = self._deliver_graph(batch, key, req)
                continue
            if key not in batch:
                raise PipelineError(f"{self.name()} was asked for {key} but its batch does not contain it")
            array = batch[key]
            if req.roi is not None and not array.spec.nonspatial and array.spec.roi != req.roi:
                if not array.spec.roi.contains(req.roi):
                    raise PipelineError(
                        f"{self.name()} delivered {key} with ROI {array.spec.roi}, which does not contain "
                        f"the requested {req.roi}"
                    )
                array = array.crop(req.roi, copy=False)
            provided = self.spec[key] if key in self.spec else None
            if provided is not None and provided.dtype is not None and array.data.dtype != provided.dtype:
                raise SpecError(
                    f"{self.name()} delivered {key} as {array.data.dtype}, but declared {provided.dtype}"
                )
            out[key] = array
        return out

    def _deliver_graph(self, batch: Batch, key: GraphKey, req: GraphSpec):
        if key not in batch:
            raise PipelineError(f"{self.name()} was asked for {key} but its batch does not contain it")
        graph = batch[key]
        if req.roi is not None and graph.spec.roi != req.roi:
            if graph.spec.roi is not None and not graph.spec.roi.contains(req.roi):
                raise PipelineError(
                    f"{self.name()} delivered {key} with ROI {graph.spec.roi}, which does not contain the requested {req.roi}"
                )
            graph = graph.crop(req.roi)
        if req.directed is not None and graph.directed != req.directed:
            raise SpecError(f"{self.name()} delivered {key} with directed={graph.directed}, but directed={req.directed} was requested")
        return graph

    def provide(self, request: BatchRequest) -> Batch:
        """Produce a batch for ``request`` (sources implement this)."""
        raise NotImplementedError(f"{self.name()} does not implement provide()")

    # --- randomness --------------------------------------------------------------------------
    @property
    def random_stream(self) -> str | None:
        """The name of this node's random stream, given when its pipeline is set up."""
        return getattr(self, "_random_stream", None)

    def set_random_stream(self, name: str | None) -> None:
        """Key this node's random stream by ``name`` (``Pipeline.setup`` does, from ``stream_names``;
        teardown clears it)."""
        from .streams import stream_key

        self._random_stream = name
        self._stream_key = None if name is None else stream_key(name)

    def random_generator(self, request: BatchRequest) -> np.random.Generator:
        """This node's random stream for ``request``: the same seed gives the same draws."""
        key = getattr(self, "_stream_key", None) or []
        return np.random.default_rng([request.random_seed or 0, *key])

    def seed_global_rngs(self, request: BatchRequest) -> None:
        """Seed numpy's and Python's global RNGs from the request, for nodes written against them."""
        seed = int(self.random_generator(request).integers(2**32))
        np.random.seed(seed)
        random.seed(seed)

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return self.name()
