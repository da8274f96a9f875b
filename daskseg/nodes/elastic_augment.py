"""``ElasticAugment``: smooth random deformation, rotation, scaling and section misalignment."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from ..array import ArrayKey
from ..batch import BatchRequest
from ..errors import RequestError, SpecError
from ..geometry import Coordinate, Roi
from ..transform import ElasticField, SectionShifts, SpatialTransform
from ._spatial_augment import SpatialAugment, slip_and_shift

logger = logging.getLogger(__name__)


class ElasticAugment(SpatialAugment):
    """Elastically deform a batch: jittered control points, a random rotation in the plane of the
    last two axes, random scaling, and slipped or shifted sections (misaligned EM sections).

    All arrays of a batch get the same transformation, in world units, so arrays of different voxel
    sizes stay aligned; every array is delivered on its requested voxel grid. Graph nodes move with
    them: a node lands where the voxel it lies in went (nodes that land outside the requested ROI
    are removed, their neighbours connected). Upstream, exactly the
    region the transformation needs is requested for each array: the bounding box of the source
    points of its voxels, plus the one voxel linear interpolation reads beyond (none for nearest
    neighbour), on its voxel grid. Requests near the border of the data can therefore reach beyond
    it: put a :class:`RandomLocation` upstream, which keeps requests inside the data.

    Interpolatable arrays (``ArraySpec.interpolatable``; floats if unset) are interpolated linearly,
    the others (labels) by nearest neighbour, so no new label values appear.

    The deformation is gunpowder's: control points jittered with normal noise, interpolated with
    cubic splines (what gunpowder's ``subsample=1`` computes), plus the rotation and shifts. It is
    computed at control-point resolution and evaluated with small separable matrix products, never
    voxel by voxel, and all of it is applied to each array in one resampling. Differences to
    gunpowder 1.5: rotation and scaling act in world units around the centre of the request (the
    same for square x-y voxels and no scaling); a slipped section moves relative to the sections
    around it (gunpowder drops the preceding shifts for it); the random stream is the node's
    (``random_generator(request)``), so the same request seed gives the same batch.

    Args:

        control_point_spacing (``tuple`` of ``int``):

            Distance between control points for the elastic deformation, in voxels (of the least
            common multiple of the voxel sizes) per dimension. Along each axis, ``round(n / spacing)``
            control points (at least one) span the requested region of ``n`` voxels.

        jitter_sigma (``tuple`` of ``float``):

            Standard deviation of control point jitter distribution, in voxels per dimension.

        rotation_interval (``tuple`` of two ``floats``):

            Interval to randomly sample rotation angles from (in radians), for a rotation in the
            plane of the last two spatial axes around the centre of the request.

        scale_interval (``tuple`` of two ``floats``):

            Interval to randomly sample scale factors from; a factor of 2 zooms in (shows half the
            extent). Applies to all spatial axes.

        prob_slip (``float``):

            Probability of a section to "slip", i.e., be independently moved in x-y (relative to its
            neighbours).

        prob_shift (``float``):

            Probability of a section and all following sections to move in x-y.

        max_misalign (``int``):

            Maximal voxels to shift in x and y. Samples will be drawn uniformly from the integers in
            ``[-max_misalign, max_misalign]``. Used if ``prob_slip + prob_shift`` > 0; needs 3
            spatial dimensions (sections are cut along the first).

        subsample (``int``):

            Accepted for compatibility with gunpowder, where it trades accuracy for speed. daskseg
            computes the exact transformation cheaply, so it is ignored.

        spatial_dims (``int``):

            The number of spatial dimensions to transform (the last ones of the ROI, at most 3).
            Leading ROI dimensions are left as they are.

        use_fast_points_transform (``bool``):
        recompute_missing_points (``bool``):

            Accepted for compatibility with gunpowder, where they choose between a fast, approximate
            and an exact projection of graph nodes. daskseg moves every node exactly (the inverse of
            the arrays' coordinate map), so both are ignored.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0 (always apply).
    """

    def __init__(
        self,
        control_point_spacing: Sequence[int] | int,
        jitter_sigma: Sequence[float] | float,
        rotation_interval: Sequence[float],
        scale_interval: Sequence[float] = (1.0, 1.0),
        prob_slip: float = 0,
        prob_shift: float = 0,
        max_misalign: int = 0,
        subsample: int = 1,
        spatial_dims: int = 3,
        use_fast_points_transform: bool = False,
        recompute_missing_points: bool = True,
        p: float = 1.0,
    ):
        if len(rotation_interval) != 2 or len(scale_interval) != 2:
            raise ValueError(
                f"ElasticAugment: rotation_interval and scale_interval take two numbers each, got "
                f"{rotation_interval} and {scale_interval}"
            )
        if prob_slip < 0 or prob_shift < 0 or prob_slip + prob_shift > 1:
            raise ValueError(f"ElasticAugment: need 0 <= prob_slip + prob_shift <= 1, got {prob_slip} + {prob_shift}")
        if scale_interval[0] <= 0 or scale_interval[1] <= 0:
            raise ValueError(f"ElasticAugment: scale factors must be positive, got {scale_interval}")
        if spatial_dims < 1 or spatial_dims > 3:
            raise ValueError(f"ElasticAugment: spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        self.control_point_spacing = control_point_spacing
        self.jitter_sigma = jitter_sigma
        self.rotation_start = float(rotation_interval[0])
        self.rotation_max_amount = float(rotation_interval[1]) - float(rotation_interval[0])
        self.scale_min = float(scale_interval[0])
        self.scale_max = float(scale_interval[1])
        self.prob_slip = prob_slip
        self.prob_shift = prob_shift
        self.max_misalign = max_misalign
        self.subsample = subsample
        self.spatial_dims = spatial_dims
        self.use_fast_points_transform = use_fast_points_transform
        self.recompute_missing_points = recompute_missing_points
        self.p = p

    def _per_axis(self, value, name: str, dims: int) -> np.ndarray:
        values = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if values.size == 1:
            values = np.repeat(values, dims)
        if values.size != dims:
            raise SpecError(f"ElasticAugment: {name} {value} has {values.size} entries, but the data has {dims} spatial dimensions")
        return values

    def _interpolate(self, key: ArrayKey) -> bool:
        spec = self.spec[key]
        if spec.interpolatable is not None:
            return bool(spec.interpolatable)
        return spec.dtype is not None and np.issubdtype(spec.dtype, np.floating)

    def create_transform(self, master_roi: Roi, voxel_size: Coordinate, rng: np.random.Generator) -> SpatialTransform:
        """The transformation for a request whose ROIs span ``master_roi`` (on the ``voxel_size`` grid)."""
        dims = master_roi.dims
        spatial = min(self.spatial_dims, dims)
        first = dims - spatial
        shape = master_roi.shape / voxel_size
        vs = np.asarray(voxel_size, dtype=np.float64)
        center = np.asarray(master_roi.begin, dtype=np.float64) + np.asarray(master_roi.shape, dtype=np.float64) / 2

        matrix = np.eye(dims)
        scale = self.scale_min + rng.random() * (self.scale_max - self.scale_min)
        angle = self.rotation_start + rng.random() * self.rotation_max_amount
        if spatial >= 2 and angle != 0:
            cos, sin = math.cos(angle), math.sin(angle)
            matrix[-2:, -2:] = [[cos, sin], [-sin, cos]]
        matrix[first:, first:] /= scale

        elastic = None
        spacing = self._per_axis(self.control_point_spacing, "control_point_spacing", spatial)
        sigma = self._per_axis(self.jitter_sigma, "jitter_sigma", spatial)
        if np.any(sigma > 0):
            counts = [1] * first + [max(1, int(round(shape[first + d] / spacing[d]))) for d in range(spatial)]
            offsets = np.zeros((dims,) + tuple(counts))
            for d in range(spatial):
                if sigma[d] > 0:
                    offsets[first + d] = rng.normal(scale=sigma[d], size=counts) * vs[first + d]
            origin = np.asarray(master_roi.begin, dtype=np.float64) + vs / 2
            world_spacing = [
                (shape[d] - 1) / (counts[d] - 1) * vs[d] if counts[d] > 1 else vs[d] for d in range(dims)
            ]
            elastic = ElasticField(tuple(origin), tuple(world_spacing), offsets)

        sections = None
        if self.prob_slip + self.prob_shift > 0:
            if spatial < 3:
                raise SpecError(f"ElasticAugment: section slips and shifts need 3 spatial dimensions, the request has {spatial}")
            sections = SectionShifts(first, float(master_roi.begin[first]), float(vs[first]), self._misalignment(shape[first], dims, vs, rng))

        transform = SpatialTransform(dims, matrix, center, elastic=elastic, sections=sections)
        logger.debug("ElasticAugment: rotation %.4f, scale %.4f, %s", angle, scale, transform)
        return transform

    def _misalignment(self, sections: int, dims: int, voxel_size: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """World shifts (``(sections, dims)``) of slipped (one section) and shifted (all sections from
        one on) sections: whole voxels, up to ``max_misalign`` in each of the last two axes."""
        m = int(self.max_misalign)

        def offset(moves: bool) -> np.ndarray | None:
            if not moves:
                return None
            o = np.zeros(dims)
            o[-2:] = rng.integers(-m, m, size=2, endpoint=True) * voxel_size[-2:]
            return o

        return slip_and_shift(sections, dims, self.prob_slip, self.prob_shift, rng, offset)

    def _draw_transform(
        self, request: BatchRequest, keys: list[ArrayKey], rng: np.random.Generator
    ) -> SpatialTransform:
        voxel_size, total = self._request_extent(request, keys)
        return self.create_transform(total.snap_to_grid(voxel_size, mode="grow"), voxel_size, rng)

    def _check_source(self, key: ArrayKey, roi: Roi, source: Roi) -> None:
        provided = self.spec[key].roi
        if provided is not None and not provided.contains(source):
            raise RequestError(
                f"{type(self).__name__}: to deliver {key} in {roi}, the transformation needs {source} "
                f"upstream, which is not inside the provided {provided}. Put a RandomLocation upstream "
                "(it keeps requests inside the data) or request further from the border."
            )
