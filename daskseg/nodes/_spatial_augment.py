"""Shared plumbing of the augmentations that move all spatial arrays and graphs of a request by one
spatial transformation (:class:`ElasticAugment`, :class:`SimpleAugment`, :class:`ShiftAugment`):
requesting upstream exactly the region each array's transformed voxels come from (for graphs: the
region whose nodes may land in the requested ROI), resampling the delivered data onto the requested
grid, and moving graph nodes through the same map (inverted: a node goes where its voxel went)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..geometry import Coordinate, Roi, lcm_voxel_size
from ..graph import GraphKey
from ..pipeline import BatchFilter
from ..transform import GridMap, SpatialTransform

logger = logging.getLogger(__name__)

#: What a spatial augmentation decided for one request: per array, the map from the requested
#: voxels to the upstream data, and whether it is interpolated linearly; per graph, the transform.
ResamplingPlan = dict[ArrayKey | GraphKey, tuple[GridMap, bool] | SpatialTransform]


def slip_and_shift(
    sections: int,
    dims: int,
    prob_slip: float,
    prob_shift: float,
    rng: np.random.Generator,
    draw_offset: Callable[[bool], np.ndarray | None],
) -> np.ndarray:
    """World offsets (``(sections, dims)``) by which the content of each section moves: each
    section either slips (moves alone, with probability ``prob_slip``), starts a shift (it and all
    following sections move, with probability ``prob_shift``) or stays with the sections before it.

    Per section, one ``rng.random()`` decides; then ``draw_offset(moves)`` is called (``moves``:
    whether the section slips or shifts) and gives the offset, which may be None if it does not move.
    """
    shifts = np.zeros((sections, dims))
    base = np.zeros(dims)
    for z in range(sections):
        r = rng.random()
        offset = draw_offset(r < prob_slip + prob_shift)
        if r < prob_slip:
            shifts[z] = base + cast(np.ndarray, offset)  # a moving section has an offset
        elif r < prob_slip + prob_shift:
            base = base + cast(np.ndarray, offset)
            shifts[z] = base
        else:
            shifts[z] = base
    return shifts


class SpatialAugment(BatchFilter):
    """Base of the nodes that, with probability ``p`` per request, transform every spatial array
    of the request the same way (in world units).

    Subclasses set ``p`` in ``__init__`` and give :meth:`_draw_transform`; they may override
    :meth:`_interpolate` (default: linear interpolation) and :meth:`_check_source`. What
    ``prepare`` draws for a request travels to ``process`` in ``request.plan`` (a
    :class:`ResamplingPlan`), so one node serves concurrent requests.
    """

    thread_safe = True
    p: float

    def _draw_transform(
        self, request: BatchRequest, keys: list[ArrayKey], rng: np.random.Generator
    ) -> SpatialTransform | None:
        """The transformation for this request (of the spatial arrays ``keys``), drawn from ``rng``;
        None to leave the request untouched."""
        raise NotImplementedError

    def _interpolate(self, key: ArrayKey) -> bool:
        """Whether ``key`` is resampled by linear interpolation (else nearest neighbour)."""
        return True

    def _check_source(self, key: ArrayKey, roi: Roi, source: Roi) -> None:
        """Raise if ``source``, the upstream region ``key`` in ``roi`` needs, cannot be had."""

    def _request_extent(self, request: BatchRequest, keys: list) -> tuple[Coordinate, Roi]:
        """The least common multiple of the voxel sizes of the arrays among ``keys`` (1 per axis if
        there are none: a request of graphs only) and the union of the requested ROIs of ``keys``."""
        sizes = []
        for key in keys:
            if isinstance(key, GraphKey):
                continue
            vs = self.spec[key].voxel_size
            if vs is None:
                raise SpecError(f"{type(self).__name__}: {key} has no voxel size upstream ({self.spec[key]})")
            sizes.append(vs)
        total = request[keys[0]].roi
        for key in keys[1:]:
            total = total.union(request[key].roi)
        return (lcm_voxel_size(sizes) if sizes else Coordinate((1,) * total.dims)), total

    def prepare(self, request: BatchRequest) -> BatchRequest | None:
        rng = self.random_generator(request)
        if self.p < 1 and rng.random() >= self.p:
            return None
        keys = [k for k, s in request.items() if s.roi is not None and not s.nonspatial]
        if not keys:
            return None
        transform = self._draw_transform(request, keys, rng)
        if transform is None:
            return None

        deps = BatchRequest()
        maps: ResamplingPlan = {}
        for key, spec in request.items():
            if key not in keys:
                deps[key] = spec.copy()
                continue
            if isinstance(key, GraphKey):
                dep = spec.copy()
                dep.roi = self._graph_source_roi(key, spec.roi, transform, request, keys)
                if not spec.placeholder:
                    maps[key] = transform
                deps[key] = dep
                request[key] = dep
                logger.debug("%s: nodes of %s in %s come from %s upstream", type(self).__name__, key, spec.roi, dep.roi)
                continue
            interpolate = self._interpolate(key)
            grid = transform.grid(spec.roi, self.spec[key].voxel_size)
            source = grid.source_roi(interpolate)
            self._check_source(key, spec.roi, source)
            if not spec.placeholder:  # placeholders only pass their ROI on
                maps[key] = (grid, interpolate)
            dep = spec.copy()
            dep.roi = source
            deps[key] = dep
            request[key] = dep  # so that the upstream request is exactly the dependency
            logger.debug("%s: %s in %s needs %s upstream (%s)", type(self).__name__, key, spec.roi, source, grid.kind)
        request.plan = maps
        return deps

    def _graph_source_roi(self, key: GraphKey, roi: Roi, transform: SpatialTransform, request: BatchRequest, keys: list) -> Roi:
        """The upstream ROI whose nodes may land in ``roi``, within what upstream provides."""
        voxel_size, _ = self._request_extent(request, keys)
        source = transform.source_bounds(roi, voxel_size)
        provided = self.spec[key].roi
        if provided is not None:
            inside = source.intersect(provided)
            source = inside if not inside.empty else Roi(roi.begin, (0,) * roi.dims)
        return source

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        maps: ResamplingPlan = request.plan if isinstance(request.plan, dict) else {}
        for key, plan in maps.items():
            # prepare planned a transform for each graph and a (grid, interpolate) pair for each array
            if isinstance(key, GraphKey):
                self._move_nodes(batch, key, cast(SpatialTransform, plan), cast(Roi, request[key].roi))
                continue
            grid, interpolate = cast(tuple[GridMap, bool], plan)
            array = batch[key]
            data = grid.apply(array.data, cast(Roi, array.spec.roi), interpolate)
            spec = array.spec.copy()
            spec.roi = request[key].roi
            batch[key] = Array(data, spec, array.attrs)
        return batch

    def _move_nodes(self, batch: Batch, key: GraphKey, transform: SpatialTransform, roi: Roi) -> None:
        """Move every node of graph ``key`` to where the transformation takes its location; nodes that
        land outside ``roi`` are removed, their neighbours connected (as gunpowder)."""
        graph = batch[key]
        nodes = list(graph.nodes)
        if nodes:
            locations = np.stack([np.asarray(n.location, dtype=np.float64) for n in nodes])
            moved = transform.forward(locations[:, -transform.dims :])
            for node, location, new in zip(nodes, locations, moved):
                location[-transform.dims :] = new
                node.location = location.astype(graph.spec.dtype)
                if not roi.contains(node.location):
                    graph.remove_node(node, retain_connectivity=True)
        graph.spec.roi = roi
