"""``IntensityAugment``: random scale and shift of intensities around their mean."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..array import Array, ArrayKey
from ..errors import SpecError
from ._float_augment import FloatAugment
from ._slabs import slab_slices

logger = logging.getLogger(__name__)


class IntensityAugment(FloatAugment):
    """Randomly scale and shift the values of an intensity array.

    Expects float data in [0, 1] (use :class:`Normalize` first).

    Args:

        array (:class:`ArrayKey`):

            The intensity array to modify.

        scale_min (``float``):
        scale_max (``float``):
        shift_min (``float``):
        shift_max (``float``):

            The min and max of the uniformly randomly drawn scaling and shifting values for the
            intensity augmentation. Intensities are changed as::

                a = a.mean() + (a-a.mean())*scale + shift

        z_section_wise (``bool``):

            Perform the augmentation z-section wise: every section gets its own scale, shift and
            mean. Requires 3D arrays and assumes that z is the first spatial dimension. The same
            as ``slab`` with 1 for z and -1 elsewhere.

        clip (``bool``):

            Set to False if modified values should not be clipped to [0, 1] (this also disables
            the check that the input lies in [0, 1]).

        p (``float``, optional):

            Probability of applying the augmentation (drawn per request). Default is 1.0
            (always apply).

        slab (``tuple`` of ``int``, optional):

            A shape specification (one entry per axis of the data, channels included) to perform
            the intensity augment in slabs of this size, each with its own scale, shift and mean.
            -1 can be used to refer to the actual size of the array. For example, a slab of::

                (2, -1, -1, -1)

            will perform the intensity augment for every each slice ``[0:2,:]``, ``[2:4,:]``, ...
            individually on 4D data.
    """

    def __init__(
        self,
        array: ArrayKey,
        scale_min: float,
        scale_max: float,
        shift_min: float,
        shift_max: float,
        z_section_wise: bool = False,
        clip: bool = True,
        p: float = 1.0,
        slab: Sequence[int] | None = None,
    ):
        if scale_min > scale_max or shift_min > shift_max:
            raise ValueError(
                f"IntensityAugment: need scale_min <= scale_max and shift_min <= shift_max, got scale "
                f"[{scale_min}, {scale_max}], shift [{shift_min}, {shift_max}]"
            )
        self.array = array
        self.scale_min = scale_min
        self.scale_max = scale_max
        self.shift_min = shift_min
        self.shift_max = shift_max
        if z_section_wise and slab is not None:
            raise ValueError("IntensityAugment: z_section_wise and slab are mutually exclusive")
        if not 0 <= p <= 1:
            raise ValueError(f"IntensityAugment: p must be in [0, 1], got {p}")
        self.z_section_wise = z_section_wise
        self.clip = clip
        self.p = p
        self.slab = tuple(slab) if slab is not None else None

    _expected = "[0, 1]"
    _what = "intensity augmentation"

    def setup(self) -> None:
        super().setup()
        spec = self.spec[self.array]
        if self.z_section_wise and spec.roi is not None and spec.roi.dims != 3:
            raise SpecError(f"IntensityAugment: z_section_wise needs 3D data, but {self.array} has ROI {spec.roi}")

    def _augment(self, array: Array, rng: np.random.Generator) -> np.ndarray:
        data = array.data
        result = np.empty_like(data)
        for slices in self._slabs(data.shape, array.spec.roi.dims if array.spec.roi is not None else data.ndim):
            part = data[slices]
            scale = rng.uniform(self.scale_min, self.scale_max)
            shift = rng.uniform(self.shift_min, self.shift_max)
            mean = part.mean(dtype=np.float64) if part.size else 0.0
            # a.mean() + (a - a.mean())*scale + shift, written so that scale=1, shift=0 is exact
            offset = data.dtype.type(mean * (1 - scale) + shift)
            np.add(part * data.dtype.type(scale), offset, out=result[slices])
        if self.clip:
            np.clip(result, 0, 1, out=result)
        return result

    def _slabs(self, shape: tuple[int, ...], dims: int):
        if self.z_section_wise:
            if dims != 3:
                raise SpecError(f"IntensityAugment: z_section_wise needs 3D data, {self.array} is {dims}D")
            slab = [-1] * len(shape)
            slab[len(shape) - dims] = 1
        else:
            slab = list(self.slab) if self.slab is not None else [-1] * len(shape)
        return slab_slices(shape, slab, f"IntensityAugment: {self.array}")
