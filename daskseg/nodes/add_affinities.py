"""``AddAffinities``: affinities between neighbouring voxels from a label array."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import RequestError, SpecError
from ..geometry import Coordinate, Roi
from ..pipeline import BatchFilter
from ..pipeline.filter import dependency_spec
from ._axis_op import spatial_data

logger = logging.getLogger(__name__)


class AddAffinities(BatchFilter):
    """Add an array with affinities for a given label array and neighborhood to the batch.

    Affinity values are created one for each voxel and entry in the neighborhood list, i.e., for
    each voxel and each neighbor of this voxel: channel ``i`` of the affinities (channels first,
    shape ``(len(affinity_neighborhood),) + spatial shape``) is 1 at voxel ``p`` iff the labels at
    ``p`` and at ``p + affinity_neighborhood[i]`` are equal and non-zero (0 is background and
    never affine).

    To compute affinities for the whole requested ROI, the labels are requested grown by the
    extent of the neighborhood (offset times voxel size, in world units); the labels passed
    downstream are cropped back to what was requested. The provided affinities ROI is therefore
    the labels ROI shrunk by that extent. The neighborhood is stored as
    ``batch.affinity_neighborhood``.

    Args:

        affinity_neighborhood (``list`` of array-like):

            List of offsets (in voxels) for the affinities to consider for each voxel, e.g.
            ``[[-1, 0, 0], [0, -1, 0], [0, 0, -1]]``.

        labels (:class:`ArrayKey`):

            The array to read the labels from.

        affinities (:class:`ArrayKey`):

            The array to generate containing the affinities.

        labels_mask (:class:`ArrayKey`, optional):

            The array to use as a mask for ``labels``. Affinities connecting at least one masked
            out label will be masked out in ``affinities_mask``. If not given,
            ``affinities_mask`` will contain ones everywhere (if requested).

        unlabelled (:class:`ArrayKey`, optional):

            A binary array to indicate unlabelled areas with 0. Affinities from labelled to
            unlabelled voxels are set to 0, affinities between unlabelled voxels are masked out
            (they will not be used for training).

        affinities_mask (:class:`ArrayKey`, optional):

            The array to generate containing the affinity mask, as derived from parameters
            ``labels_mask`` and ``unlabelled``.

        dtype (data-type, optional):

            The data type of ``affinities`` (and ``affinities_mask``). Defaults to ``np.uint8``.
    """

    thread_safe = True

    def __init__(
        self,
        affinity_neighborhood: Sequence[Sequence[int]],
        labels: ArrayKey,
        affinities: ArrayKey,
        labels_mask: ArrayKey | None = None,
        unlabelled: ArrayKey | None = None,
        affinities_mask: ArrayKey | None = None,
        dtype: Any = np.uint8,
    ):
        neighborhood = np.array(affinity_neighborhood)
        if neighborhood.ndim != 2 or neighborhood.shape[0] == 0 or not np.issubdtype(neighborhood.dtype, np.integer):
            raise ValueError(
                "AddAffinities: affinity_neighborhood must be a non-empty list of integer offsets of equal "
                f"length, got {affinity_neighborhood!r}"
            )
        self.affinity_neighborhood = neighborhood
        self.labels = labels
        self.affinities = affinities
        self.labels_mask = labels_mask
        self.unlabelled = unlabelled
        self.affinities_mask = affinities_mask
        self.dtype = np.dtype(dtype)

    def setup(self) -> None:
        for key in (self.labels, self.labels_mask, self.unlabelled):
            if key is not None and key not in self.spec:
                raise SpecError(f"AddAffinities: {key} is not provided upstream; provided: {sorted(self.spec)}")
        labels_spec = self.spec[self.labels]
        dims = self.affinity_neighborhood.shape[1]
        if labels_spec.roi is not None and labels_spec.roi.dims != dims:
            raise SpecError(
                f"AddAffinities: the neighborhood has {dims}D offsets, but {self.labels} is "
                f"{labels_spec.roi.dims}D (ROI {labels_spec.roi})"
            )
        voxel_size = labels_spec.voxel_size
        if voxel_size is None:
            raise SpecError(f"AddAffinities: {self.labels} has no voxel size: {labels_spec}")
        offsets = self.affinity_neighborhood
        self.padding_neg = Coordinate(min(0, int(offsets[:, d].min())) for d in range(dims)) * voxel_size
        self.padding_pos = Coordinate(max(0, int(offsets[:, d].max())) for d in range(dims)) * voxel_size
        logger.debug("padding neg: %s, pos: %s", self.padding_neg, self.padding_pos)

        spec = labels_spec.copy()
        if spec.roi is not None:
            spec.roi = spec.roi.grow(self.padding_neg, -self.padding_pos)
        spec.dtype = self.dtype
        spec.interpolatable = False
        self.provides(self.affinities, spec)
        if self.affinities_mask is not None:
            self.provides(self.affinities_mask, spec.copy())
        self.enable_autoskip()

    def _context(self, roi: Roi) -> Roi:
        """The labels ROI needed to compute affinities in ``roi``."""
        return roi.grow(-self.padding_neg, self.padding_pos)

    def prepare(self, request: BatchRequest) -> BatchRequest:
        for key in (self.labels_mask, self.unlabelled):
            if key is not None and key in request and self.labels in request:
                if request[key].roi != request[self.labels].roi:
                    raise RequestError(
                        f"AddAffinities: requested ROI {request[key].roi} of {key} differs from the requested "
                        f"ROI {request[self.labels].roi} of {self.labels}; they must be the same"
                    )
        reference = self._reference(request)
        context = self._context(request[reference].checked_roi(f"the request for AddAffinities' {reference}"))

        deps = BatchRequest()
        for key in (self.labels, self.labels_mask, self.unlabelled):
            if key is None:
                continue
            deps[key] = dependency_spec(request[reference], request, key, context)
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        reference = self._reference(request)
        affinities_roi = request[reference].checked_roi(f"the request for AddAffinities' {reference}")
        labels = batch[self.labels]
        voxel_size = labels.spec.voxel_size
        labels_data = self._spatial(labels, self.labels)

        spec = self.spec[self.affinities].copy()
        spec.roi = affinities_roi
        outputs = Batch()

        affinities = seg_to_affgraph(
            labels_data, self.affinity_neighborhood, self._crop(affinities_roi, labels.spec.roi, voxel_size)
        )
        if self.affinities in request:
            outputs[self.affinities] = Array(_as_dtype(affinities, self.dtype), spec)

        if self.affinities_mask is not None and self.affinities_mask in request:
            if self.labels_mask is not None:
                mask = batch[self.labels_mask]
                affinities_mask = seg_to_affgraph(
                    self._spatial(mask, self.labels_mask),
                    self.affinity_neighborhood,
                    self._crop(affinities_roi, mask.spec.roi, voxel_size),
                )
            else:
                affinities_mask = np.ones_like(affinities)
            if self.unlabelled is not None:
                unlabelled = batch[self.unlabelled]
                # affinities between two unlabelled voxels are masked out
                both_unlabelled = seg_to_affgraph(
                    self._spatial(unlabelled, self.unlabelled) == 0,
                    self.affinity_neighborhood,
                    self._crop(affinities_roi, unlabelled.spec.roi, voxel_size),
                )
                affinities_mask &= ~both_unlabelled
            outputs[self.affinities_mask] = Array(_as_dtype(affinities_mask, self.dtype), spec.copy())
        elif self.labels_mask is not None and not getattr(self, "_warned_unused_mask", False):
            logger.warning("AddAffinities: %s has a mask, but affinities_mask is not requested", self.labels)
            self._warned_unused_mask = True

        outputs.affinity_neighborhood = self.affinity_neighborhood
        return outputs

    def _reference(self, request: BatchRequest) -> ArrayKey:
        """The requested output whose ROI the affinities are computed in."""
        if self.affinities in request or self.affinities_mask is None:
            return self.affinities
        return self.affinities_mask

    def _crop(self, affinities_roi: Roi, array_roi: Roi | None, voxel_size: Coordinate | None) -> tuple[slice, ...]:
        """Voxel slices of ``affinities_roi`` inside an array covering ``array_roi``."""
        if array_roi is None or voxel_size is None:
            raise SpecError(f"AddAffinities: an input of the affinities in {affinities_roi} has no ROI or voxel size")
        if not array_roi.contains(self._context(affinities_roi)):
            raise RequestError(
                f"AddAffinities: array ROI {array_roi} does not contain the context {self._context(affinities_roi)} "
                f"needed for affinities in {affinities_roi}"
            )
        begin = (affinities_roi.begin - array_roi.begin) / voxel_size
        end = begin + affinities_roi.shape / voxel_size
        return tuple(slice(b, e) for b, e in zip(begin, end))

    @staticmethod
    def _spatial(array: Array, key: ArrayKey) -> np.ndarray:
        """The purely spatial data of ``array`` (leading singleton channel axes removed)."""
        return spatial_data(array.data, array.spec.checked_roi(f"AddAffinities' {key}").dims, f"AddAffinities: {key}")


def _as_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.bool_:
        return values
    if dtype.itemsize == 1 and np.issubdtype(dtype, np.integer):
        return values.view(dtype)  # bool -> uint8/int8 without a copy
    return values.astype(dtype)


def seg_to_affgraph(
    labels: np.ndarray,
    neighborhood: np.ndarray,
    region: tuple[slice, ...] | None = None,
) -> np.ndarray:
    """Boolean affinities ``(len(neighborhood),) + region shape`` of ``labels`` inside ``region``.

    ``aff[i, p] = labels[p] == labels[p + neighborhood[i]] != 0``. Neighbours outside ``labels``
    give 0. ``region`` (voxel slices, default: the whole array) selects the voxels ``p``.
    """
    neighborhood = np.asarray(neighborhood)
    labels = np.ascontiguousarray(labels)
    shape = labels.shape
    if neighborhood.ndim != 2 or neighborhood.shape[1] != labels.ndim:
        raise ValueError(f"neighborhood of shape {neighborhood.shape} does not fit {labels.ndim}D labels")
    if region is None:
        region = tuple(slice(0, s) for s in shape)
    begin = [r.start for r in region]
    end = [r.stop for r in region]
    out_shape = tuple(e - b for b, e in zip(begin, end))
    aff = np.zeros((len(neighborhood),) + out_shape, dtype=bool)
    if labels.size == 0 or aff.size == 0:
        return aff

    # Comparisons run on the flat, contiguous arrays (several times faster than on strided
    # views); a flat shift by `offset . strides` reaches the right neighbour wherever that
    # neighbour is inside the array, and the voxels whose neighbour is outside are zeroed below.
    flat = labels.reshape(-1)
    foreground = flat != 0
    strides = [int(np.prod(shape[d + 1 :], dtype=np.int64)) for d in range(labels.ndim)]
    same = np.zeros(flat.size, dtype=bool)
    for i, offset in enumerate(neighborhood):
        # voxels p of the region whose neighbour p + offset lies inside labels
        lo = [max(b, -o) for b, o in zip(begin, offset)]
        hi = [min(e, s - o) for e, s, o in zip(end, shape, offset)]
        if any(h <= low for low, h in zip(lo, hi)):
            continue
        shift = int(sum(int(o) * st for o, st in zip(offset, strides)))
        if shift > 0:
            np.equal(flat[:-shift], flat[shift:], out=same[:-shift])
            np.logical_and(same[:-shift], foreground[:-shift], out=same[:-shift])
        elif shift < 0:
            np.equal(flat[-shift:], flat[:shift], out=same[-shift:])
            np.logical_and(same[-shift:], foreground[-shift:], out=same[-shift:])
        else:
            same[:] = foreground
        here = tuple(slice(low, h) for low, h in zip(lo, hi))
        aff[i][tuple(slice(low - b, h - b) for low, h, b in zip(lo, hi, begin))] = same.reshape(shape)[here]
    return aff
