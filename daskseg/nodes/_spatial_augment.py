"""Shared plumbing of the augmentations that move all spatial arrays of a request by one
spatial transformation (:class:`ElasticAugment`, :class:`SimpleAugment`, :class:`ShiftAugment`):
requesting upstream exactly the region each array's transformed voxels come from, and resampling
the delivered data onto the requested grid."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..geometry import Coordinate, Roi, lcm_voxel_size
from ..pipeline import BatchFilter
from ..transform import GridMap, SpatialTransform

logger = logging.getLogger(__name__)

#: What a spatial augmentation decided for one request: per array, the map from the requested
#: voxels to the upstream data, and whether it is interpolated linearly.
ResamplingPlan = dict[ArrayKey, tuple[GridMap, bool]]


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
            shifts[z] = base + offset
        elif r < prob_slip + prob_shift:
            base = base + offset
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

    def _request_extent(self, request: BatchRequest, keys: list[ArrayKey]) -> tuple[Coordinate, Roi]:
        """The least common multiple of the voxel sizes of ``keys`` and the union of their requested ROIs."""
        sizes = []
        for key in keys:
            vs = self.spec[key].voxel_size
            if vs is None:
                raise SpecError(f"{type(self).__name__}: {key} has no voxel size upstream ({self.spec[key]})")
            sizes.append(vs)
        total = request[keys[0]].roi
        for key in keys[1:]:
            total = total.union(request[key].roi)
        return lcm_voxel_size(sizes), total

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

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        maps: ResamplingPlan = request.plan if isinstance(request.plan, dict) else {}
        for key, (grid, interpolate) in maps.items():
            array = batch[key]
            data = grid.apply(array.data, array.spec.roi, interpolate)
            spec = array.spec.copy()
            spec.roi = request[key].roi
            batch[key] = Array(data, spec, array.attrs)
        return batch
