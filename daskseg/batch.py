"""What nodes provide and what is asked of them: ``ProviderSpec``, ``BatchRequest`` and ``Batch``."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, MutableMapping
from typing import overload

from .array import Array, ArrayKey, ArraySpec
from .errors import RequestError, SpecError
from .geometry import Coordinate, Roi
from .graph import Graph, GraphKey, GraphSpec
from .profiling import ProfilingStats

Key = ArrayKey | GraphKey
Spec = ArraySpec | GraphSpec


class ProviderSpec(MutableMapping):
    """What a node (or pipeline) can deliver: ``ArrayKey`` to ``ArraySpec`` and ``GraphKey`` to
    ``GraphSpec``, as in gunpowder.

    ``spec[key]`` works for both kinds; ``array_specs`` and ``graph_specs`` hold each kind alone.
    Iteration yields the array keys, then the graph keys. A ``Roi`` given as a spec stands for a
    spec with that ROI.
    """

    def __init__(self, array_specs: dict | None = None, graph_specs: dict | None = None):
        self.array_specs: dict[ArrayKey, ArraySpec] = {}
        self.graph_specs: dict[GraphKey, GraphSpec] = {}
        for key, spec in (array_specs or {}).items():
            self[key] = spec
        for key, spec in (graph_specs or {}).items():
            self[key] = spec

    def _specs_of(self, key) -> dict:
        if isinstance(key, ArrayKey):
            return self.array_specs
        if isinstance(key, GraphKey):
            return self.graph_specs
        raise SpecError(f"keys must be ArrayKeys or GraphKeys, got {key!r} ({type(key).__name__})")

    def __setitem__(self, key: Key, spec: Spec | Roi) -> None:
        specs = self._specs_of(key)
        expected = ArraySpec if isinstance(key, ArrayKey) else GraphSpec
        if isinstance(spec, Roi):
            spec = expected(roi=spec)
        if not isinstance(spec, expected):
            raise SpecError(f"spec for {key} must be a{'n' if expected is ArraySpec else ''} {expected.__name__}, got {spec!r}")
        specs[key] = spec.copy()

    @overload
    def __getitem__(self, key: ArrayKey) -> ArraySpec: ...

    @overload
    def __getitem__(self, key: GraphKey) -> GraphSpec: ...

    @overload
    def __getitem__(self, key: Key) -> Spec: ...

    def __getitem__(self, key: Key) -> Spec:
        try:
            return self._specs_of(key)[key]
        except KeyError:
            raise KeyError(f"{key} is not in this spec (it has {sorted(self)})") from None
        except SpecError as e:
            raise KeyError(str(e)) from None

    def __delitem__(self, key: Key) -> None:
        del self._specs_of(key)[key]

    def __iter__(self) -> Iterator[Key]:
        yield from list(self.array_specs)
        yield from list(self.graph_specs)

    def __len__(self) -> int:
        return len(self.array_specs) + len(self.graph_specs)

    def copy(self):
        out = copy.copy(self)
        out.array_specs = {k: v.copy() for k, v in self.array_specs.items()}
        out.graph_specs = {k: v.copy() for k, v in self.graph_specs.items()}
        return out

    def _rois(self) -> Iterator[Roi]:
        specs: list[Spec] = [*self.array_specs.values(), *self.graph_specs.values()]
        for spec in specs:
            if spec.roi is not None:
                yield spec.roi

    def get_total_roi(self) -> Roi | None:
        """The union of all spatial ROIs, of arrays and graphs (None if there are none)."""
        total = None
        for roi in self._rois():
            total = roi if total is None else total.union(roi)
        return total

    def get_common_roi(self) -> Roi | None:
        """The intersection of all spatial ROIs, of arrays and graphs (None if there are none)."""
        common = None
        for roi in self._rois():
            common = roi if common is None else common.intersect(roi)
        return common

    def get_lcm_voxel_size(self, keys=None) -> Coordinate | None:
        """The least common multiple of the voxel sizes of the arrays ``keys`` (all arrays if None;
        graph keys are skipped); None if none has a voxel size."""
        from .geometry import lcm_voxel_size

        keys = self.array_specs.keys() if keys is None else [k for k in keys if isinstance(k, ArrayKey)]
        sizes = [self[k].voxel_size for k in keys if self[k].voxel_size is not None]
        return lcm_voxel_size(sizes) if sizes else None

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, ProviderSpec)
            and self.array_specs == other.array_specs
            and self.graph_specs == other.graph_specs
        )

    def __repr__(self) -> str:
        lines = [f"\t{k}: {v}" for k, v in self.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class BatchRequest(ProviderSpec):
    """What a downstream node asks for: a spec per key, plus the random seed of this request.

    ``add(key, size)`` centres all requested ROIs on a common centre, as in gunpowder, so that
    ``request.add(raw, input_size); request.add(affs, output_size)`` asks for the output inside
    the input's context. Requests with the same ``random_seed`` produce identical batches.

    ``plan`` is where a filter's ``prepare`` leaves what it decided for this request (a drawn
    transformation, the sections to deface) for its ``process``, which receives it as
    ``request.plan``: per-request state travels with the request, so one node can serve several
    requests at once. It is never sent upstream, copied, or compared.
    """

    _seeds = itertools.count()

    def __init__(self, array_specs: dict | None = None, graph_specs: dict | None = None, random_seed: int | None = None):
        super().__init__(array_specs, graph_specs)
        self.random_seed = random_seed
        self.plan: object = None

    def copy(self) -> BatchRequest:
        out = super().copy()
        out.plan = None
        return out

    def add(self, key: Key, size, voxel_size=None, directed: bool | None = None, placeholder: bool = False) -> None:
        """Request ``key`` (an array or a graph) with a ROI of ``size`` (world units), centred with
        the other requests; ``directed`` only for graphs."""
        size = Coordinate(size)
        roi = Roi((0,) * len(size), size)
        spec: Spec
        if isinstance(key, GraphKey):
            spec = GraphSpec(roi=roi, directed=directed, placeholder=placeholder)
        else:
            spec = ArraySpec(roi=roi, placeholder=placeholder)
            if voxel_size is not None:
                spec.voxel_size = Coordinate(voxel_size)
        self[key] = spec
        self._center_rois()

    def _center_rois(self) -> None:
        total = self.get_total_roi()
        if total is None:
            return
        center = total.center
        specs: list[Spec] = [*self.array_specs.values(), *self.graph_specs.values()]
        for spec in specs:
            if spec.roi is not None:
                spec.roi = spec.roi.shift(center - spec.roi.center)

    def update_with(self, other: BatchRequest) -> BatchRequest:
        """A copy with the specs of ``other`` added, as in gunpowder: for keys in both, the ROIs
        are united, the other fields ``other`` sets (voxel size, ...) replace ours, and the dtype
        is always ``other``'s.

        This is how a filter's dependencies join the downstream request: a key requested
        downstream and needed with context by the filter is read once, in the union.
        """
        out = self.copy()
        for key, spec in other.items():
            if isinstance(key, GraphKey):
                out[key] = out.graph_specs[key].update_with(spec) if key in out.graph_specs else spec
                continue
            mine = out.array_specs.get(key)
            if mine is None or mine.nonspatial or spec.nonspatial:
                out[key] = spec
                continue
            merged = mine.update_with(spec)
            # the dependency says which dtype the node needs from upstream (None: whatever is there),
            # so nodes that convert dtypes (Normalize, AsType) are not handed the downstream dtype
            merged.dtype = spec.dtype
            if mine.roi is not None and spec.roi is not None:
                merged.roi = mine.roi.union(spec.roi)
            merged.placeholder = spec.placeholder
            out[key] = merged
        return out

    def merge(self, other: BatchRequest) -> BatchRequest:
        """A copy asking for the union of both requests' ROIs for keys requested by both."""
        out = self.copy()
        for key, spec in other.items():
            if key in out and out[key].roi is not None and spec.roi is not None:
                merged = out[key].copy()
                merged.roi = out[key].roi.union(spec.roi)
                out[key] = merged
            else:
                out[key] = spec
        return out

    def remove_placeholders(self) -> None:
        for key in [k for k, s in self.array_specs.items() if s.placeholder]:
            del self.array_specs[key]
        for gkey in [k for k, s in self.graph_specs.items() if s.placeholder]:
            del self.graph_specs[gkey]

    def with_seed(self) -> BatchRequest:
        """This request if it has a seed, else a copy with a fresh one from this process's sequence."""
        if self.random_seed is not None:
            return self
        out = self.copy()
        out.random_seed = _next_seed()
        return out

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, BatchRequest)
            and self.array_specs == other.array_specs
            and self.graph_specs == other.graph_specs
        )


_seed_base: int | None = None


def set_seed(seed: int) -> None:
    """Make the seeds given to requests without one reproducible from ``seed`` in this process."""
    global _seed_base
    _seed_base = int(seed)
    BatchRequest._seeds = itertools.count()


def _next_seed() -> int:
    global _seed_base
    if _seed_base is None:
        import secrets

        _seed_base = secrets.randbits(32)
    return (_seed_base * 1_000_003 + next(BatchRequest._seeds)) % (2**32)


class Batch(MutableMapping):
    """Arrays and graphs produced for one request, keyed by ``ArrayKey``/``GraphKey``, with their
    profiling stats; ``arrays`` and ``graphs`` hold each kind alone."""

    _ids = itertools.count()

    def __init__(self):
        self.id = next(Batch._ids)
        self.arrays: dict[ArrayKey, Array] = {}
        self.graphs: dict[GraphKey, Graph] = {}
        self.profiling_stats = ProfilingStats()
        self.iteration: int | None = None
        self.loss: float | None = None
        self.affinity_neighborhood = None

    def _items_of(self, key) -> dict:
        if isinstance(key, ArrayKey):
            return self.arrays
        if isinstance(key, GraphKey):
            return self.graphs
        raise KeyError(f"batches are keyed by ArrayKeys or GraphKeys, not {key!r} ({type(key).__name__})")

    def __setitem__(self, key: Key, value: Array | Graph) -> None:
        if isinstance(key, GraphKey):
            if not isinstance(value, Graph):
                raise SpecError(f"{key} is a GraphKey: its batch entry must be a Graph, got {type(value).__name__}")
            self.graphs[key] = value
            return
        if not isinstance(value, Array):
            raise SpecError(f"batch entries must be Arrays, got {type(value).__name__} for {key}")
        self._items_of(key)[key] = value

    @overload
    def __getitem__(self, key: ArrayKey) -> Array: ...

    @overload
    def __getitem__(self, key: GraphKey) -> Graph: ...

    @overload
    def __getitem__(self, key: Key) -> Array | Graph: ...

    def __getitem__(self, key: Key) -> Array | Graph:
        try:
            return self._items_of(key)[key]
        except KeyError:
            raise KeyError(f"{key} is not in this batch (it has {sorted(self)})") from None

    def __delitem__(self, key: Key) -> None:
        del self._items_of(key)[key]

    def __iter__(self) -> Iterator[Key]:
        yield from list(self.arrays)
        yield from list(self.graphs)

    def __len__(self) -> int:
        return len(self.arrays) + len(self.graphs)

    def get_total_roi(self) -> Roi | None:
        total = None
        items: list[Array | Graph] = [*self.arrays.values(), *self.graphs.values()]
        for item in items:
            roi = item.spec.roi
            if roi is not None:
                total = roi if total is None else total.union(roi)
        return total

    @property
    def spec(self) -> ProviderSpec:
        return ProviderSpec({k: a.spec for k, a in self.arrays.items()}, {k: g.spec for k, g in self.graphs.items()})

    def crop(self, request: ProviderSpec, copy: bool = False) -> Batch:
        """A batch with only the requested keys, each cropped to its requested ROI (graphs keep the
        edges that leave the ROI and their outside ends, see :meth:`Graph.crop`)."""
        out = self._empty_like()
        for key, spec in request.items():
            if key not in self:
                raise RequestError(f"{key} was requested but is not in the batch (it has {sorted(self)})")
            if isinstance(key, GraphKey):
                graph = self.graphs[key]
                out.graphs[key] = graph if spec.roi is None or graph.spec.roi == spec.roi else graph.crop(spec.roi)
                continue
            array = self.arrays[key]
            if spec.roi is None or array.spec.nonspatial or array.spec.roi == spec.roi:
                out.arrays[key] = array
            else:
                out.arrays[key] = array.crop(spec.roi, copy=copy)
        return out

    def merge(self, other: Batch, merge_profiling_stats: bool = True) -> Batch:
        """A batch with the arrays and graphs of both; ``other``'s replace this batch's of the same key."""
        out = self._empty_like()
        out.arrays = dict(self.arrays)
        out.arrays.update(other.arrays)
        out.graphs = dict(self.graphs)
        out.graphs.update(other.graphs)
        if merge_profiling_stats:
            out.profiling_stats.merge_with(other.profiling_stats)
        for attr in ("iteration", "loss", "affinity_neighborhood"):
            if getattr(other, attr) is not None:
                setattr(out, attr, getattr(other, attr))
        return out

    def _empty_like(self) -> Batch:
        out = Batch.__new__(Batch)
        out.id = self.id
        out.arrays = {}
        out.graphs = {}
        out.profiling_stats = self.profiling_stats
        out.iteration = self.iteration
        out.loss = self.loss
        out.affinity_neighborhood = self.affinity_neighborhood
        return out

    def __repr__(self) -> str:
        lines = [f"\t{k}: {item.spec}" for k, item in self.items()]
        return f"Batch(id={self.id}, iteration={self.iteration},\n" + "\n".join(lines) + "\n)"
