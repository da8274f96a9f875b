"""``IntensityAugment``: random scale and shift of intensities around their mean."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class IntensityAugment(BatchFilter):
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

    def setup(self) -> None:
        if self.array not in self.spec:
            raise SpecError(f"IntensityAugment: {self.array} is not provided upstream; provided: {sorted(self.spec)}")
        spec = self.spec[self.array]
        if self.z_section_wise and spec.roi is not None and spec.roi.dims != 3:
            raise SpecError(f"IntensityAugment: z_section_wise needs 3D data, but {self.array} has ROI {spec.roi}")
        if spec.dtype is not None and not np.issubdtype(spec.dtype, np.floating):
            raise SpecError(
                f"IntensityAugment: {self.array} is {spec.dtype}; intensity augmentation requires floats in "
                "[0, 1]. Consider using Normalize before."
            )
        self.updates(self.array, spec.copy())
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        deps = BatchRequest()
        deps[self.array] = request[self.array].copy()
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch | None:
        rng = self.random_generator(request)
        if rng.random() >= self.p:
            return None
        array = batch[self.array]
        data = array.data
        if not np.issubdtype(data.dtype, np.floating):
            raise SpecError(
                f"IntensityAugment: {self.array} is {data.dtype}; intensity augmentation requires floats in "
                "[0, 1]. Consider using Normalize before."
            )
        if self.clip and data.size and (data.min() < 0 or data.max() > 1):
            raise ValueError(
                f"IntensityAugment: {self.array} has values in [{data.min()}, {data.max()}]; intensity "
                "augmentation expects values in [0, 1]. Consider using Normalize before."
            )

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

        outputs = Batch()
        outputs[self.array] = Array(result, array.spec.copy(), array.attrs)
        return outputs

    def _slabs(self, shape: tuple[int, ...], dims: int):
        if self.z_section_wise:
            if dims != 3:
                raise SpecError(f"IntensityAugment: z_section_wise needs 3D data, {self.array} is {dims}D")
            slab = [-1] * len(shape)
            slab[len(shape) - dims] = 1
        elif self.slab is not None:
            if len(self.slab) != len(shape):
                raise SpecError(
                    f"IntensityAugment: slab {self.slab} has {len(self.slab)} entries, but {self.array} has "
                    f"{len(shape)} axes (shape {shape})"
                )
            slab = list(self.slab)
        else:
            slab = [-1] * len(shape)
        slab = [m if s == -1 else s for m, s in zip(shape, slab)]
        for start in itertools.product(*(range(0, m, max(s, 1)) for m, s in zip(shape, slab))):
            yield tuple(slice(b, b + s) for b, s in zip(start, slab))
