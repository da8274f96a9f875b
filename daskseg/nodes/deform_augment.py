"""``DeformAugment``: random elastic deformation in world units, with rotations in any plane or 3D."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from ..array import ArrayKey
from ..batch import BatchRequest
from ..errors import ArgumentError, SpecError
from ..geometry import Coordinate
from ..transform import ElasticField, SpatialTransform
from .elastic_augment import ElasticAugment

logger = logging.getLogger(__name__)


class DeformAugment(ElasticAugment):
    """Elasticly deform a batch (gunpowder 1.5's newer deformation node): control points in world
    units, jittered in world units, a random scale, and a uniformly random rotation (in the plane of
    2D data or of ``rotation_axes``, else any 3D rotation).

    It is the same node as :class:`ElasticAugment` with another way of drawing the transformation:
    one coordinate map is applied once per array (linear interpolation for interpolatable arrays,
    nearest neighbour for labels), exactly the needed region is requested upstream, and graph nodes
    move with the arrays (a node lands where its voxel went; nodes landing outside the request are
    removed, their neighbours connected).

    Args:

        control_point_spacing (``tuple`` of ``int``):

            Distance between control points for the elastic deformation, in physical units per
            (spatial) dimension.

        jitter_sigma (``Sequence`` of ``float``):

            Standard deviation of control point jitter distribution, in physical units per dimension.

        scale_interval (``tuple`` of two ``floats``):

            Interval to randomly sample scale factors from (2 zooms in: shows half the extent).

        rotate (``bool``):

            Whether or not to apply rotations to the requested data. By default True.

        subsample (``int``):

            Accepted for compatibility; daskseg computes the exact transformation, so it is ignored.

        spatial_dims (``int``):

            The number of spatial dimensions in arrays (the last ones, at most 3).

        use_fast_points_transform (``bool``):
        recompute_missing_points (``bool``):
        graph_raster_voxel_size (``Coordinate``, optional):

            Accepted for compatibility; gunpowder uses them to move graph nodes approximately.
            daskseg moves every node exactly, so they are ignored.

        transform_key (``ArrayKey``, optional):

            gunpowder provides the deformation field under this key; daskseg does not (its map is
            never stored densely): giving one raises ``NotImplementedError``.

        p (``float``, optional):

            Probability applying the augmentation. Default is 1.0 (always apply).

        rotation_axes (``Sequence`` of ``int``, optional):

            The spatial axes within which to rotate (indices among the spatial dimensions, e.g.
            ``[1, 2]`` for y and x of z, y, x). The default is to rotate in all spatial dimensions.
    """

    control_point_spacing: Coordinate
    jitter_sigma: tuple[float, ...]

    def __init__(
        self,
        control_point_spacing: Sequence[int],
        jitter_sigma: Sequence[float],
        scale_interval: Sequence[float] = (1.0, 1.0),
        rotate: bool = True,
        subsample: int = 1,
        spatial_dims: int = 3,
        use_fast_points_transform: bool = False,
        recompute_missing_points: bool = True,
        transform_key: ArrayKey | None = None,
        graph_raster_voxel_size: Sequence[int] | None = None,
        p: float = 1.0,
        rotation_axes: Sequence[int] | None = None,
    ):
        spacing = Coordinate(control_point_spacing)
        sigma = np.asarray(jitter_sigma, dtype=np.float64).reshape(-1)
        if len(spacing) != len(sigma):
            raise ArgumentError(
                f"DeformAugment: control_point_spacing {tuple(spacing)} and jitter_sigma {sigma.tolist()} must have "
                "the same number of dimensions"
            )
        if any(s <= 0 for s in spacing):
            raise ArgumentError(f"DeformAugment: control_point_spacing must be positive, got {tuple(spacing)}")
        if len(scale_interval) != 2 or min(scale_interval) <= 0:
            raise ArgumentError(f"DeformAugment: scale_interval takes two positive numbers, got {scale_interval}")
        if not 1 <= spatial_dims <= 3:
            raise ArgumentError(f"DeformAugment: spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        if rotation_axes is not None:
            rotation_axes = sorted(int(a) for a in rotation_axes)
            if not 2 <= len(rotation_axes) <= spatial_dims or any(a < 0 or a >= spatial_dims for a in rotation_axes):
                raise ArgumentError(
                    f"DeformAugment: rotation_axes {rotation_axes} must name 2 or 3 of the {spatial_dims} spatial axes "
                    "(indices among the spatial dimensions)"
                )
        if transform_key is not None:
            raise NotImplementedError(
                "DeformAugment(transform_key=...): daskseg never stores the deformation densely; move points with "
                "a graph in the request instead (they follow the same map)"
            )
        super().__init__(
            control_point_spacing=tuple(spacing),
            jitter_sigma=tuple(sigma),
            rotation_interval=(0, 0),
            scale_interval=tuple(scale_interval),
            subsample=subsample,
            spatial_dims=spatial_dims,
            use_fast_points_transform=use_fast_points_transform,
            recompute_missing_points=recompute_missing_points,
            p=p,
        )
        self.control_point_spacing = spacing
        self.jitter_sigma = tuple(float(s) for s in sigma)
        self.rotate = rotate
        self.rotation_axes = rotation_axes
        self.transform_key = transform_key
        self.graph_raster_voxel_size = graph_raster_voxel_size

    def _draw_transform(self, request: BatchRequest, keys: list, rng: np.random.Generator) -> SpatialTransform:
        _, total = self._request_extent(request, keys)
        dims = total.dims
        spatial = min(self.spatial_dims, dims)
        first = dims - spatial
        if len(self.control_point_spacing) != spatial:
            raise SpecError(
                f"DeformAugment: control_point_spacing {tuple(self.control_point_spacing)} has "
                f"{len(self.control_point_spacing)} entries, the request {spatial} spatial dimensions"
            )
        begin = np.asarray(total.begin, dtype=np.float64)
        shape = np.asarray(total.shape, dtype=np.float64)
        center = begin + shape / 2

        scale = self.scale_min + rng.random() * (self.scale_max - self.scale_min)
        matrix = np.eye(dims)
        if self.rotate and spatial >= 2:
            axes = self.rotation_axes if self.rotation_axes is not None else list(range(spatial))
            axes = [first + a for a in axes]
            if len(axes) == 2:
                angle = rng.random() * 2 * math.pi
                cos, sin = math.cos(angle), math.sin(angle)
                a, b = axes
                matrix[a, a], matrix[a, b], matrix[b, a], matrix[b, b] = cos, sin, -sin, cos
            else:
                matrix[np.ix_(axes, axes)] = Rotation.random(random_state=rng).as_matrix()
        matrix[first:, first:] /= scale

        elastic = None
        if any(s > 0 for s in self.jitter_sigma):
            step = np.ones(dims)
            step[first:] = np.asarray(self.control_point_spacing, dtype=np.float64)
            # control points on the spacing's grid, one beyond the request on either side
            origin = np.floor(begin / step) * step - step
            counts = [1] * first + [int(math.ceil((begin[d] + shape[d] - origin[d]) / step[d])) + 2 for d in range(first, dims)]
            offsets = np.zeros((dims, *counts))
            for d in range(spatial):
                if self.jitter_sigma[d] > 0:
                    offsets[first + d] = rng.normal(scale=self.jitter_sigma[d], size=counts)
            origin[:first] = 0
            elastic = ElasticField(tuple(origin), tuple(step), offsets)
        transform = SpatialTransform(dims, matrix, center, elastic=elastic)
        logger.debug("DeformAugment: scale %.4f, %s", scale, transform)
        return transform
