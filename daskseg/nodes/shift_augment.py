"""``ShiftAugment``: random slips and shifts of whole sections (misaligned EM sections)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..geometry import lcm_voxel_size
from ..pipeline import BatchFilter
from ..transform import GridMap, SectionShifts, SpatialTransform

logger = logging.getLogger(__name__)


class ShiftAugment(BatchFilter):
    """Randomly shift sections along ``shift_axis`` against each other, by whole voxels.

    Each section (of the least common multiple of the voxel sizes) independently either slips
    (is moved, relative to its neighbours, by its own random offset), starts a shift (it and all
    following sections move by a random offset), or stays with the sections before it. Offsets are
    drawn per axis from a normal distribution with standard deviation ``sigma`` (world units) and
    rounded to whole voxels. All arrays are shifted the same way; upstream, the region the shifted
    sections come from is requested (the requested ROI grown by the largest shifts), and no voxel is
    interpolated.

    Args:

        prob_slip (``float``):

            Probability of a section to "slip", i.e., be independently moved.

        prob_shift (``float``):

            Probability of a section and all following sections to move.

        sigma (``float`` or ``tuple`` of ``float``):

            Standard deviation of the offsets, in world units; a number applies to every axis but
            ``shift_axis``, a tuple gives one per axis (0 along ``shift_axis``).

        shift_axis (``int``):

            The axis along which sections are cut (0, z, for EM).

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0 (always apply).
    """

    def __init__(
        self,
        prob_slip: float = 0,
        prob_shift: float = 0,
        sigma: float | Sequence[float] = 0,
        shift_axis: int = 0,
        p: float = 1.0,
    ):
        if prob_slip < 0 or prob_shift < 0 or prob_slip + prob_shift > 1:
            raise ValueError(f"ShiftAugment: need 0 <= prob_slip + prob_shift <= 1, got {prob_slip} + {prob_shift}")
        self.prob_slip = prob_slip
        self.prob_shift = prob_shift
        self.sigma = sigma
        self.shift_axis = shift_axis
        self.p = p
        self._maps: dict[ArrayKey, GridMap] = {}

    def setup(self) -> None:
        total = self.spec.get_total_roi()
        if total is None:
            raise SpecError(f"ShiftAugment: upstream provides no spatial arrays ({sorted(self.spec)})")
        dims = total.dims
        if self.shift_axis not in range(dims):
            raise SpecError(f"ShiftAugment: shift_axis {self.shift_axis} is not an axis of {dims}D data")
        if np.ndim(self.sigma) == 0:
            sigmas = [float(self.sigma)] * dims
            sigmas[self.shift_axis] = 0.0
        else:
            sigmas = [float(s) for s in self.sigma]
        if len(sigmas) != dims:
            raise SpecError(f"ShiftAugment: sigma {self.sigma} must have one entry per axis ({dims})")
        if sigmas[self.shift_axis] != 0:
            raise SpecError(f"ShiftAugment: sigma {self.sigma} must be 0 along the shift axis {self.shift_axis}")
        if not any(sigmas):
            raise SpecError(f"ShiftAugment: sigma {self.sigma} is zero along every axis; nothing would be shifted")
        self.shift_sigmas = tuple(sigmas)

    def shift_array(self, sections: int, voxel_size, rng: np.random.Generator) -> np.ndarray:
        """World offsets (``(sections, dims)``) by which the content of each section moves."""
        dims = len(self.shift_sigmas)
        vs = np.asarray(voxel_size, dtype=np.float64)
        sigma = np.asarray(self.shift_sigmas) / vs
        shifts = np.zeros((sections, dims))
        base = np.zeros(dims)
        for z in range(sections):
            r = rng.random()
            offset = np.rint(rng.normal(size=dims) * sigma) * vs
            if r < self.prob_slip:
                shifts[z] = base + offset
            elif r < self.prob_slip + self.prob_shift:
                base = base + offset
                shifts[z] = base
            else:
                shifts[z] = base
        return shifts

    def prepare(self, request: BatchRequest) -> BatchRequest | None:
        self._maps = {}
        rng = self.random_generator(request)
        if self.p < 1 and rng.random() >= self.p:
            return None
        keys = [k for k, s in request.items() if s.roi is not None and not s.nonspatial]
        if not keys:
            return None
        voxel_size = lcm_voxel_size([self.spec[k].voxel_size for k in keys])
        total = request[keys[0]].roi
        for key in keys[1:]:
            total = total.union(request[key].roi)
        total = total.snap_to_grid(voxel_size, mode="grow")
        a = self.shift_axis
        shifts = self.shift_array(total.shape[a] // voxel_size[a], voxel_size, rng)
        logger.debug("ShiftAugment: section shifts %s", shifts.tolist())
        sections = SectionShifts(a, float(total.begin[a]), float(voxel_size[a]), -shifts)
        transform = SpatialTransform(total.dims, sections=sections)
        if transform.is_identity:
            return None

        deps = BatchRequest()
        for key, spec in request.items():
            if key not in keys:
                deps[key] = spec.copy()
                continue
            grid = transform.grid(spec.roi, self.spec[key].voxel_size)
            if not spec.placeholder:  # placeholders only pass their ROI on
                self._maps[key] = grid
            dep = spec.copy()
            dep.roi = grid.source_roi(interpolate=False)
            deps[key] = dep
            request[key] = dep
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        for key, grid in self._maps.items():
            array = batch[key]
            data = grid.apply(array.data, array.spec.roi, interpolate=False)
            spec = array.spec.copy()
            spec.roi = request[key].roi
            batch[key] = Array(data, spec, array.attrs)
        self._maps = {}
        return batch
