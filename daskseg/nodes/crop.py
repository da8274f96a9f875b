"""``Crop``: limit the ROI an array is provided in."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..array import ArrayKey
from ..errors import SpecError
from ..geometry import Coordinate, Roi
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class Crop(BatchFilter):
    """Limit the provided ROI of an array, either to a given :class:`Roi` or by cropping
    fractions (or absolute amounts) from the faces of the provided ROI.

    Requests outside the cropped ROI are refused with a ``RequestError``; requests inside it
    pass unchanged. Fractional crops are rounded down to whole voxels.

    Args:

        key (:class:`ArrayKey`):

            The key of the array to modify.

        roi (:class:`Roi` or ``None``):

            The ROI to crop to; it must lie inside the upstream ROI and on the voxel grid.

        fraction_negative (``tuple`` of ``float``):

            Relative crop starting from the negative end of the provided ROI (e.g. ``0.25``
            removes the lower quarter along that axis).

        fraction_positive (``tuple`` of ``float``):

            Relative crop starting from the positive end of the provided ROI.

        abs_negative (``tuple`` of ``int`` or :class:`Coordinate`):

            Amount (world units) to crop from the negative end of the provided ROI.

        abs_positive (``tuple`` of ``int`` or :class:`Coordinate`):

            Amount (world units) to crop from the positive end of the provided ROI.
    """

    thread_safe = True

    def __init__(
        self,
        key: ArrayKey,
        roi: Roi | None = None,
        fraction_negative: Sequence[float] | None = None,
        fraction_positive: Sequence[float] | None = None,
        abs_negative: Sequence[int] | None = None,
        abs_positive: Sequence[int] | None = None,
    ):
        relative = (fraction_negative, fraction_positive, abs_negative, abs_positive)
        if roi is not None and any(v is not None for v in relative):
            raise ValueError("Crop: 'roi' and the 'fraction_...'/'abs_...' arguments can not be given together")
        if (fraction_positive is not None and abs_positive is not None) or (
            fraction_negative is not None and abs_negative is not None
        ):
            raise ValueError("Crop: 'fraction_...' and 'abs_...' can not be given for the same side")
        if roi is None and all(v is None for v in relative):
            raise ValueError("Crop: one of 'roi', 'fraction_...' or 'abs_...' has to be given")
        self.key = key
        self.roi = roi
        self.fraction_negative = None if fraction_negative is None else tuple(float(f) for f in fraction_negative)
        self.fraction_positive = None if fraction_positive is None else tuple(float(f) for f in fraction_positive)
        self.abs_negative = None if abs_negative is None else Coordinate(abs_negative)
        self.abs_positive = None if abs_positive is None else Coordinate(abs_positive)
        for f in (self.fraction_negative or ()) + (self.fraction_positive or ()):
            if not 0 <= f < 1:
                raise ValueError(f"Crop: crop fractions must lie in [0, 1), got {f}")

    def setup(self) -> None:
        if self.key not in self.spec:
            raise SpecError(f"Crop: asked to crop {self.key}, which is not provided upstream: {sorted(self.spec)}")
        spec = self.spec[self.key].copy()
        provided = spec.roi
        if provided is None:
            raise SpecError(f"Crop: {self.key} is provided without a ROI, there is nothing to crop")
        vs = getattr(spec, "voxel_size", None)  # graphs have none

        if self.roi is not None:
            if not provided.contains(self.roi):
                raise SpecError(f"Crop: ROI {self.roi} of {self.key} is not contained in the upstream ROI {provided}")
            cropped = self.roi
        else:
            if provided.unbounded:
                raise SpecError(f"Crop: cannot crop fractions of the unbounded ROI {provided} of {self.key}")
            negative = self._amount(self.fraction_negative, self.abs_negative, provided, vs)
            positive = self._amount(self.fraction_positive, self.abs_positive, provided, vs)
            if any(n + p >= s for n, p, s in zip(negative, positive, provided.shape)):
                raise SpecError(
                    f"Crop: cropping {negative} (negative) and {positive} (positive) from {self.key} leaves nothing of "
                    f"its ROI {provided}"
                )
            cropped = provided.grow(-negative, -positive)
        if vs is not None and not cropped.is_aligned(vs):
            raise SpecError(f"Crop: cropped ROI {cropped} of {self.key} is not a multiple of its voxel size {vs}")
        logger.debug("Crop: %s from %s to %s", self.key, provided, cropped)
        spec.roi = cropped
        self.updates(self.key, spec)

    @staticmethod
    def _amount(fraction, absolute, provided: Roi, vs: Coordinate | None) -> Coordinate:
        dims = provided.dims
        if absolute is not None:
            return absolute
        if fraction is None:
            return Coordinate((0,) * dims)
        if len(fraction) != dims:
            raise SpecError(f"Crop: {len(fraction)} crop fractions given for a {dims}D ROI {provided}")
        step = vs if vs is not None else Coordinate((1,) * dims)
        # whole voxels only: round the cropped amount down to the voxel grid
        return Coordinate(int(s // v * f) * v for s, v, f in zip(provided.shape, step, fraction))
