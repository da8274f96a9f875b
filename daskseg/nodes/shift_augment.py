"""``ShiftAugment``: random slips and shifts of whole sections (misaligned EM sections)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import numpy as np

from ..array import ArrayKey
from ..batch import BatchRequest
from ..errors import SpecError
from ..transform import SectionShifts, SpatialTransform
from ._spatial_augment import SpatialAugment, slip_and_shift

logger = logging.getLogger(__name__)


class ShiftAugment(SpatialAugment):
    """Randomly shift sections along ``shift_axis`` against each other, by whole voxels.

    Each section (of the least common multiple of the voxel sizes) independently either slips
    (is moved, relative to its neighbours, by its own random offset), starts a shift (it and all
    following sections move by a random offset), or stays with the sections before it. Offsets are
    drawn per axis from a normal distribution with standard deviation ``sigma`` (world units) and
    rounded to whole voxels. All arrays and graph nodes are shifted the same way; upstream, the region the shifted
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

    def setup(self) -> None:
        total = self.spec.get_total_roi()
        if total is None:
            raise SpecError(f"ShiftAugment: upstream provides no spatial arrays ({sorted(self.spec)})")
        dims = total.dims
        if self.shift_axis not in range(dims):
            raise SpecError(f"ShiftAugment: shift_axis {self.shift_axis} is not an axis of {dims}D data")
        if np.ndim(self.sigma) == 0:
            sigmas = [float(cast(float, self.sigma))] * dims
            sigmas[self.shift_axis] = 0.0
        else:
            sigmas = [float(s) for s in cast(Sequence[float], self.sigma)]
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
        # an offset is drawn for every section, moving or not
        return slip_and_shift(
            sections, dims, self.prob_slip, self.prob_shift, rng, lambda moves: np.rint(rng.normal(size=dims) * sigma) * vs
        )

    def _draw_transform(
        self, request: BatchRequest, keys: list[ArrayKey], rng: np.random.Generator
    ) -> SpatialTransform | None:
        voxel_size, total = self._request_extent(request, keys)
        total = total.snap_to_grid(voxel_size, mode="grow")
        a = self.shift_axis
        shifts = self.shift_array(total.shape[a] // voxel_size[a], voxel_size, rng)
        logger.debug("ShiftAugment: section shifts %s", shifts.tolist())
        sections = SectionShifts(a, float(total.begin[a]), float(voxel_size[a]), -shifts)
        transform = SpatialTransform(total.dims, sections=sections)
        return None if transform.is_identity else transform

    def _interpolate(self, key: ArrayKey) -> bool:
        return False  # whole-voxel shifts: no voxel is interpolated
