"""Spatial transformations of arrays: one coordinate map, exact ROIs, applied once per array.

A :class:`SpatialTransform` says, for every world point ``p`` of an augmented batch, which world
point of the upstream data it shows::

    source(p) = center + matrix @ (p - center) + translation + elastic(p) + section_shift(p)

``matrix`` holds rotation, scaling, mirroring and transposition; ``elastic`` is a smooth
displacement interpolated by cubic splines from jittered control points (:class:`ElasticField`);
``section_shift`` moves whole sections along one axis (:class:`SectionShifts`, slips and shifts of
misaligned EM sections). All nodes that move voxels (``ElasticAugment``, ``SimpleAugment``,
``ShiftAugment``) build one of these and let it do the work; graph nodes go through the same map,
inverted (:meth:`SpatialTransform.forward`), so a node lands where its voxel went.

For an array with voxel size ``v`` and ROI ``r``, voxel ``i`` stands for the world point at its
centre, ``r.begin + (i + 0.5) * v``; so arrays of different voxel sizes transformed by the same map
stay aligned. :meth:`SpatialTransform.grid` evaluates the map on such a voxel grid and gives a
:class:`GridMap`, which knows exactly which upstream ROI is needed (:meth:`GridMap.source_roi`)
and resamples the upstream data onto the grid (:meth:`GridMap.apply`):

- a transform that only permutes and mirrors voxels returns a view of the upstream data;
- one that only moves whole sections by whole voxels copies sections;
- anything else is interpolated, linearly (order 1) or by nearest neighbour (order 0), section by
  section. The coordinate map is never built densely for terms that are separable; only an elastic
  displacement is evaluated per voxel, as one small matrix product per array.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from .errors import GeometryError, SpecError
from .geometry import Coordinate, Roi

logger = logging.getLogger(__name__)

#: Source coordinates closer than this (in voxels) to a voxel are taken to lie on it when the
#: needed upstream region is computed; it absorbs floating-point error, nothing else.
TOLERANCE = 1e-3

_INTEGRAL = 1e-6


def spline_weights(positions: np.ndarray, n: int) -> np.ndarray:
    """The matrix ``W`` (``len(positions)`` x ``n``) of cubic-spline interpolation.

    ``W @ values`` interpolates ``values`` (given at ``0, 1, ..., n-1``) at ``positions`` with an
    interpolating cubic B-spline and mirrored boundaries, which is what
    ``scipy.ndimage.zoom(values, ..., order=3)`` computes (and so gunpowder's elastic field).
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    if n == 1:
        return np.ones((positions.size, 1))
    eye = np.eye(n)
    columns = [ndimage.map_coordinates(eye[k], positions[None], order=3, mode="mirror") for k in range(n)]
    return np.stack(columns, axis=1)


@dataclass(frozen=True)
class ElasticField:
    """A smooth displacement field given at a regular grid of control points.

    Args:
        origin: world position of control point ``(0, ..., 0)``.
        spacing: world distance between neighbouring control points, per axis.
        offsets: ``(dims, n_0, ..., n_{dims-1})`` world displacement at each control point; between
            control points it is interpolated with cubic splines (:func:`spline_weights`).
    """

    origin: tuple[float, ...]
    spacing: tuple[float, ...]
    offsets: np.ndarray

    def __post_init__(self) -> None:
        dims = len(self.origin)
        if len(self.spacing) != dims or self.offsets.ndim != dims + 1 or self.offsets.shape[0] != dims:
            raise GeometryError(
                f"ElasticField: origin {self.origin}, spacing {self.spacing} and offsets of shape "
                f"{self.offsets.shape} do not describe the same number of dimensions"
            )
        if any(s <= 0 for s in self.spacing):
            raise GeometryError(f"ElasticField: control point spacing must be positive, got {self.spacing}")

    @property
    def dims(self) -> int:
        return len(self.origin)

    def weights(self, axis: int, positions: np.ndarray) -> np.ndarray:
        """Interpolation weights of the control points along ``axis`` at world ``positions``."""
        grid = (np.asarray(positions, dtype=np.float64) - self.origin[axis]) / self.spacing[axis]
        return spline_weights(grid, self.offsets.shape[1 + axis])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """The displacement at world ``points`` (``(m, dims)``), evaluated point by point."""
        points = np.asarray(points, dtype=np.float64)
        grid = (points - np.asarray(self.origin)) / np.asarray(self.spacing)
        return np.stack(
            [
                ndimage.map_coordinates(self.offsets[d].astype(np.float64), grid.T, order=3, mode="mirror")
                for d in range(self.dims)
            ],
            axis=1,
        )


@dataclass(frozen=True)
class SectionShifts:
    """Displacements of whole sections along one axis (misaligned EM sections).

    Args:
        axis: the axis along which sections are cut.
        origin: world coordinate along ``axis`` where section 0 begins.
        thickness: world thickness of a section.
        shifts: ``(n_sections, dims)`` world displacement of the source point for each section;
            points before section 0 or after the last one take the nearest section's shift.
    """

    axis: int
    origin: float
    thickness: float
    shifts: np.ndarray

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The ``(m, dims)`` shifts of the sections holding world ``positions`` along ``axis``."""
        index = np.floor((np.asarray(positions, dtype=np.float64) - self.origin) / self.thickness)
        index = np.clip(index, 0, len(self.shifts) - 1).astype(int)
        return np.asarray(self.shifts, dtype=np.float64)[index]


class SpatialTransform:
    """A map from world points of the output to world points of the source (see the module doc).

    Args:
        dims: number of spatial dimensions (2 or 3 for :meth:`grid`).
        matrix: ``(dims, dims)`` linear part (rotation, scaling, mirror, transpose); identity if None.
            Entries within 1e-12 of an integer are snapped to it, so that a rotation by 90 degrees is
            an exact permutation.
        center: world point the matrix acts around (origin if None).
        translation: world translation added to every source point.
        elastic: smooth displacement added to every source point.
        sections: section-wise displacement added to every source point.
    """

    def __init__(
        self,
        dims: int,
        matrix: np.ndarray | None = None,
        center: Sequence[float] | np.ndarray | None = None,
        translation: Sequence[float] | np.ndarray | None = None,
        elastic: ElasticField | None = None,
        sections: SectionShifts | None = None,
    ):
        self.dims = int(dims)
        matrix = np.eye(dims) if matrix is None else np.array(matrix, dtype=np.float64)
        if matrix.shape != (dims, dims):
            raise GeometryError(f"SpatialTransform: matrix of shape {matrix.shape} is not {dims}x{dims}")
        snapped = np.round(matrix)
        close = np.abs(matrix - snapped) < 1e-12
        matrix[close] = snapped[close]
        self.matrix = matrix
        self.center = np.zeros(dims) if center is None else np.array(center, dtype=np.float64)
        self.translation = np.zeros(dims) if translation is None else np.array(translation, dtype=np.float64)
        if self.center.shape != (dims,) or self.translation.shape != (dims,):
            raise GeometryError(f"SpatialTransform: center and translation must have {dims} entries")
        if elastic is not None and elastic.dims != dims:
            raise GeometryError(f"SpatialTransform: {dims}D transform with a {elastic.dims}D elastic field")
        if elastic is not None and not np.any(elastic.offsets):
            elastic = None
        if sections is not None and (sections.shifts.shape[1] != dims or not 0 <= sections.axis < dims):
            raise GeometryError(f"SpatialTransform: section shifts {sections.shifts.shape} along axis {sections.axis} do not fit {dims}D")
        if sections is not None and not np.any(sections.shifts):
            sections = None
        self.elastic = elastic
        self.sections = sections

    @classmethod
    def identity(cls, dims: int) -> SpatialTransform:
        return cls(dims)

    @property
    def is_identity(self) -> bool:
        return (
            self.elastic is None
            and self.sections is None
            and not np.any(self.translation)
            and np.array_equal(self.matrix, np.eye(self.dims))
        )

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Source world points of output world ``points`` (``(m, dims)``), point by point."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        source = self.center + (points - self.center) @ self.matrix.T + self.translation
        if self.elastic is not None:
            source = source + self.elastic(points)
        if self.sections is not None:
            source = source + self.sections.at(points[:, self.sections.axis])
        return source

    def forward(self, points: np.ndarray, tolerance: float = 1e-6, max_iterations: int = 100) -> np.ndarray:
        """Where the source content at world ``points`` (``(m, dims)``) goes: the output points ``p``
        with ``self(p) == points``, the inverse of this map.

        This is how graph nodes move with the arrays: a node at the centre of a source voxel lands
        where the output voxel showing that source voxel is. The linear part is inverted exactly;
        elastic and section displacements (which depend on ``p``) by fixed-point iteration from the
        linear solution, until points move less than ``tolerance`` world units.
        """
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        inverse = np.linalg.inv(self.matrix)
        base = points - self.center - self.translation
        p = self.center + base @ inverse.T
        if self.elastic is None and self.sections is None:
            return p
        for _ in range(max_iterations):
            offset = np.zeros_like(points)
            if self.elastic is not None:
                offset += self.elastic(p)
            if self.sections is not None:
                offset += self.sections.at(p[:, self.sections.axis])
            new = self.center + (base - offset) @ inverse.T
            done = np.abs(new - p).max(initial=0) < tolerance
            p = new
            if done:
                break
        else:
            logger.debug("SpatialTransform.forward: no convergence after %d iterations", max_iterations)
        return p

    def source_bounds(self, roi: Roi, spacing: Sequence[float]) -> Roi:
        """A ROI (whole world units) containing the source point of every point of ``roi``: the map
        is evaluated at points at most ``spacing`` apart (at most 64 per axis) and the box grown by
        what the map can move in between. Used to request the graph nodes that may land in ``roi``."""
        axes = []
        step = []
        for b, e, sp in zip(roi.begin, roi.end, spacing):
            n = min(64, max(2, math.ceil((e - b) / sp) + 1))
            axes.append(np.linspace(b, e, n))
            step.append((e - b) / (n - 1))
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.dims)
        source = self(grid)
        # a point lies at most half a step from a sample; the linear part moves it at most |A| step / 2
        # from the sample's source, the elastic part (smooth) at most as much again
        margin = np.abs(self.matrix) @ np.asarray(step)
        lo = np.floor(source.min(axis=0) - margin).astype(int)
        hi = np.ceil(source.max(axis=0) + margin).astype(int)
        return Roi(tuple(lo), tuple(hi - lo))

    def grid(self, roi: Roi, voxel_size: Sequence[int]) -> GridMap:
        """Evaluate this map on the voxel grid of ``roi`` at ``voxel_size``."""
        return GridMap(self, roi, Coordinate(voxel_size))

    def __repr__(self) -> str:
        parts = [f"matrix={self.matrix.tolist()}", f"center={self.center.tolist()}"]
        if np.any(self.translation):
            parts.append(f"translation={self.translation.tolist()}")
        if self.elastic is not None:
            parts.append(f"elastic control points {self.elastic.offsets.shape[1:]}")
        if self.sections is not None:
            parts.append(f"{len(self.sections.shifts)} shifted sections along axis {self.sections.axis}")
        return f"SpatialTransform({', '.join(parts)})"


class GridMap:
    """A :class:`SpatialTransform` evaluated on the voxel grid of one target ROI.

    Source coordinates are kept in voxels of the array, relative to the target ROI's first voxel:
    ``u_d = F_d[i_0] + G_d[i_1] + H_d[i_2] + elastic_d[i_0, i_1, i_2]``. Only the elastic term
    (if any) is evaluated per voxel. 2D grids are handled as 3D grids with one section.
    """

    def __init__(self, transform: SpatialTransform, roi: Roi, voxel_size: Coordinate):
        if roi.dims != transform.dims or len(voxel_size) != transform.dims:
            raise GeometryError(
                f"a {transform.dims}D transform cannot be evaluated on ROI {roi} with voxel size {voxel_size}"
            )
        if transform.dims not in (2, 3):
            raise SpecError(f"spatial transforms support 2D and 3D arrays, not {transform.dims}D (ROI {roi})")
        if roi.unbounded or not roi.is_aligned(voxel_size):
            raise GeometryError(f"cannot evaluate a transform on ROI {roi}: not bounded or not on the voxel grid {voxel_size}")
        self.transform = transform
        self.roi = roi
        self.voxel_size = voxel_size
        self.lifted = transform.dims == 2
        lift = 1 if self.lifted else 0

        # everything below is 3D
        dims = transform.dims
        A = np.eye(3)
        A[lift:, lift:] = transform.matrix
        c = np.zeros(3)
        c[lift:] = transform.center
        t = np.zeros(3)
        t[lift:] = transform.translation
        b = np.zeros(3)
        b[lift:] = roi.begin
        v = np.ones(3)
        v[lift:] = voxel_size
        shape = (1,) * lift + tuple(roi.shape / voxel_size)
        self.shape = shape
        self.matrix3 = A
        self.v = v
        # world coordinates of voxel centres, per axis
        w = [b[e] + (np.arange(shape[e]) + 0.5) * v[e] for e in range(3)]

        # separable terms: terms[d][e] is the part of u_d that depends on axis e only
        terms = [[np.zeros(shape[e]) for e in range(3)] for _ in range(3)]
        for d in range(3):
            terms[d][0] += (c[d] + t[d] - b[d]) / v[d] - 0.5
            for e in range(3):
                if A[d, e] != 0:
                    terms[d][e] += A[d, e] * (w[e] - c[e]) / v[d]
        sections = transform.sections
        self.section_axis: int | None = None
        if sections is not None:
            a = sections.axis + lift
            self.section_axis = a
            shifts = sections.at(w[a])
            for d in range(3):
                terms[d][a] += shifts[:, d - lift] / v[d] if d >= lift else 0.0
        self.terms = terms

        # elastic term, per component (None where it vanishes)
        self._elastic_factors: list[tuple[list[np.ndarray], np.ndarray] | None] = [None, None, None]
        field = transform.elastic
        if field is not None:
            weights = [np.ones((shape[0], 1))] * lift + [field.weights(e, w[e + lift]) for e in range(dims)]
            for d in range(dims):
                offsets = field.offsets[d]
                if not np.any(offsets):
                    continue
                offsets = offsets.reshape((1,) * lift + offsets.shape) / v[d + lift]
                self._elastic_factors[d + lift] = (weights, offsets)
        self._dense: list[np.ndarray | None] = [None, None, None]
        self._planes: dict[int, np.ndarray] = {}
        self._bounds: list[tuple[float, float]] | None = None
        # components that are one number per section (no elastic term, no in-plane dependence)
        self._constant = [
            self._elastic_factors[d] is None and not self._varies(d, 1) and not self._varies(d, 2) for d in range(3)
        ]
        self.kind = self._classify()

    # --- classification ----------------------------------------------------------------------
    def _varies(self, d: int, e: int) -> bool:
        vec = self.terms[d][e]
        return vec.size > 1 and np.ptp(vec) != 0

    def _classify(self) -> str:
        """'permute' (signed permutation by whole voxels), 'sections' (whole-voxel section shifts)
        or 'interpolate' (anything else)."""
        if any(f is not None for f in self._elastic_factors):
            return "interpolate"
        A = self.matrix3
        abs_a = np.abs(A)
        if not (np.all(np.isin(A, (-1.0, 0.0, 1.0))) and np.all(abs_a.sum(0) == 1) and np.all(abs_a.sum(1) == 1)):
            return "interpolate"
        a = self.section_axis
        if a is not None and not np.array_equal(A, np.eye(3)):
            return "interpolate"
        for d in range(3):
            e = int(np.argmax(abs_a[d]))
            if self.v[d] != self.v[e]:
                return "interpolate"
            for e2 in range(3):
                vec = self.terms[d][e2]
                if e2 == e:
                    expected = A[d, e] * np.arange(vec.size)
                elif e2 == a:
                    continue  # section term, checked below
                else:
                    expected = np.zeros(vec.size)
                if np.abs(vec - vec[0] - expected).max(initial=0) > _INTEGRAL:
                    return "interpolate"
            if not _integral(self._start(d)):
                return "interpolate"
        return "permute" if a is None else "sections"

    def _start(self, d: int) -> np.ndarray:
        """u_d at the first voxel, or along the section axis (vector) for section shifts."""
        a = self.section_axis
        if a is None or a == d:
            return np.asarray(sum(vec[0] for vec in self.terms[d]))
        return sum(self.terms[d][e][0] for e in range(3) if e != a) + self.terms[d][a]

    def _is_constant(self, d: int) -> bool:
        return self._constant[d]

    # --- coordinates -------------------------------------------------------------------------
    def _dense_field(self, d: int) -> np.ndarray:
        """u_d for every voxel, ``(Nz, Ny, Nx)`` float32, for a component with an elastic term."""
        dense = self._dense[d]
        factors = self._elastic_factors[d]
        if dense is None and factors is not None:
            weights, offsets = factors
            Mz, My, Mx = weights
            nz, ny, nx = offsets.shape
            Nz, Ny, Nx = self.shape
            F, G, H = self.terms[d]
            q = np.tensordot(Mz, offsets, axes=(1, 0))  # (Nz, ny, nx)
            left = np.empty((Nz, Ny, nx + 2), dtype=np.float32)
            left[:, :, :nx] = np.einsum("yb,zbc->zyc", My, q)
            left[:, :, nx] = F[:, None] + G[None, :]
            left[:, :, nx + 1] = 1.0
            right = np.empty((nx + 2, Nx), dtype=np.float32)
            right[:nx] = Mx.T
            right[nx] = 1.0
            right[nx + 1] = H
            dense = self._dense[d] = (left.reshape(Nz * Ny, nx + 2) @ right).reshape(Nz, Ny, Nx)
        if dense is None:
            raise ValueError(f"component {d} of the transform has no elastic term")
        return dense

    def coordinates(self) -> np.ndarray:
        """Source coordinates of every voxel, ``(3 or 2, *shape)`` float64, in voxels relative to the
        target ROI's first voxel (mainly for inspection and tests; :meth:`apply` never builds it)."""
        out = np.empty((3,) + tuple(self.shape))
        for d in range(3):
            if self._elastic_factors[d] is not None:
                out[d] = self._dense_field(d)
            else:
                F, G, H = self.terms[d]
                out[d] = F[:, None, None] + G[None, :, None] + H[None, None, :]
        return out[1:, 0] if self.lifted else out

    def bounds(self) -> list[tuple[float, float]]:
        """Smallest and largest source coordinate along each axis (lifted to 3D)."""
        if self._bounds is None:
            bounds = []
            for d in range(3):
                if self._elastic_factors[d] is not None:
                    u = self._dense_field(d)
                    bounds.append((float(u.min()), float(u.max())))
                else:
                    bounds.append(
                        (sum(float(vec.min()) for vec in self.terms[d]), sum(float(vec.max()) for vec in self.terms[d]))
                    )
            self._bounds = bounds
        return self._bounds

    def _source_range(self, interpolate: bool) -> list[tuple[int, int]]:
        """First and last needed source voxel along each axis, relative to the target's first voxel."""
        out = []
        for lo, hi in self.bounds():
            if self.kind != "interpolate":
                out.append((round(lo), round(hi)))
            elif interpolate:
                first = math.floor(lo + TOLERANCE)
                out.append((first, max(first, math.ceil(hi - TOLERANCE))))
            else:
                out.append((math.floor(lo + 0.5), math.floor(hi + 0.5)))
        return out

    def source_roi(self, interpolate: bool = True) -> Roi:
        """The upstream ROI (on the array's voxel grid) that :meth:`apply` needs, no more."""
        lift = 1 if self.lifted else 0
        ranges = self._source_range(interpolate)[lift:]
        first = self.roi.begin / self.voxel_size
        begin = Coordinate(f + lo for f, (lo, _) in zip(first, ranges)) * self.voxel_size
        shape = Coordinate(hi - lo + 1 for lo, hi in ranges) * self.voxel_size
        return Roi(begin, shape)

    # --- resampling --------------------------------------------------------------------------
    def apply(self, data: np.ndarray, source_roi: Roi, interpolate: bool = True) -> np.ndarray:
        """Resample ``data`` (channels first, covering ``source_roi``) onto this grid.

        ``source_roi`` must contain :meth:`source_roi` (it usually is exactly that). Linear
        interpolation (``interpolate=True``) computes in float32 (float64 for float64 data) and rounds
        to the dtype of integer data; nearest neighbour copies values, so labels stay labels. Source
        coordinates are float32 (off by about 1e-5 voxels). A transform that only permutes and mirrors
        returns a view of ``data``; one that only shifts sections by whole voxels copies them; neither
        interpolates.
        """
        dims = self.transform.dims
        needed = self.source_roi(interpolate)
        if not source_roi.contains(needed):
            raise GeometryError(f"resampling onto {self.roi} needs source ROI {needed}, but the data covers {source_roi}")
        spatial = tuple(source_roi.shape / self.voxel_size)
        if data.ndim < dims or tuple(data.shape[-dims:]) != spatial:
            raise SpecError(f"data of shape {data.shape} does not cover source ROI {source_roi} at voxel size {self.voxel_size}")
        channel_shape = data.shape[:-dims]
        src = data.reshape((-1,) + (1,) * (3 - dims) + spatial)
        lift = 1 if self.lifted else 0
        offset = [0] * lift + list((source_roi.begin - self.roi.begin) / self.voxel_size)
        if self.kind == "permute":
            out = self._apply_permute(src, offset)
        elif self.kind == "sections":
            out = self._apply_sections(src, offset)
        else:
            out = self._apply_interpolate(src, offset, interpolate)
        return out.reshape(channel_shape + tuple(self.shape[lift:]))

    def _apply_permute(self, src: np.ndarray, offset: list[int]) -> np.ndarray:
        A = self.matrix3
        slices = [slice(None)] * 4
        axis_of = [0, 0, 0]
        for d in range(3):
            e = int(np.argmax(np.abs(A[d])))
            axis_of[e] = d
            start = int(np.round(self._start(d))) - offset[d]
            n = self.shape[e]
            if A[d, e] > 0:
                slices[1 + d] = slice(start, start + n)
            else:
                stop = start - n
                slices[1 + d] = slice(start, stop if stop >= 0 else None, -1)
        view = src[tuple(slices)]
        return view.transpose((0,) + tuple(1 + axis_of[e] for e in range(3)))

    def _apply_sections(self, src: np.ndarray, offset: list[int]) -> np.ndarray:
        a = self.section_axis
        if a is None:
            raise ValueError("the transform has no section shifts")
        others = [d for d in range(3) if d != a]
        out = np.empty((src.shape[0],) + tuple(self.shape), dtype=src.dtype)
        out_m = np.moveaxis(out, 1 + a, 1)
        src_m = np.moveaxis(src, 1 + a, 1)
        k = [np.round(self._start(d)).astype(int) for d in range(3)]
        for i in range(self.shape[a]):
            sel: list[slice | np.ndarray] = [slice(None), k[a] + i - offset[a]]
            for d in others:
                start = k[d][i] - offset[d]
                sel.append(slice(start, start + self.shape[d]))
            out_m[:, i] = src_m[tuple(sel)]
        return out

    def _plane(self, d: int, z: int) -> tuple[np.ndarray | float, float]:
        """Section ``z`` of u_d as ``(array or scalar, offset)``: u = array + offset."""
        if self._elastic_factors[d] is not None:
            return self._dense_field(d)[z].reshape(-1), 0.0
        F, G, H = self.terms[d]
        if self._is_constant(d):
            return 0.0, float(F[z] + G[0] + H[0])
        if d not in self._planes:
            self._planes[d] = (G[:, None] + H[None, :]).astype(np.float32).reshape(-1)
        return self._planes[d], float(F[z])

    def _apply_interpolate(self, src: np.ndarray, offset: list[int], interpolate: bool) -> np.ndarray:
        channels = src.shape[0]
        out_dtype = src.dtype
        work: npt.DTypeLike
        if interpolate and src.dtype != np.float64:
            work = np.float32
        elif interpolate:
            work = np.float64
        else:
            work = src.dtype
        if interpolate and src.dtype != work:
            src = src.astype(work)
        src = np.ascontiguousarray(src)
        out = np.empty((channels,) + tuple(self.shape), dtype=out_dtype)
        out_sections = out.reshape(channels, self.shape[0], -1)
        D, H, W = src.shape[1:]
        Nz, Ny, Nx = self.shape
        n = Ny * Nx
        kernel = _Kernel(n, work if interpolate else np.float32)
        two_d = self._is_constant(0)
        # clip coordinates only along axes where they may leave the data (by float error)
        clip = [
            lo - off < TOLERANCE or hi - off > size - 1 - TOLERANCE
            for (lo, hi), off, size in zip(self.bounds(), offset, (D, H, W))
        ]
        for z in range(Nz):
            if two_d:
                arr0, off0 = self._plane(0, z)
                u0 = float(arr0 + off0 - offset[0])  # a number: the component is constant per section
                if interpolate:
                    if abs(u0 - round(u0)) > _INTEGRAL and D > 1:
                        two_d_here = False
                    else:
                        two_d_here = True
                        iz = min(max(round(u0), 0), D - 1)
                else:
                    two_d_here = True
                    iz = min(max(math.floor(u0 + 0.5), 0), D - 1)
            else:
                two_d_here = False
            if two_d_here:
                flat = src[:, iz].reshape(channels, -1)
                axes = [(1, H), (2, W)]
            else:
                flat = src.reshape(channels, -1)
                axes = [(0, D), (1, H), (2, W)]
            strides = []
            stride = 1
            for _, size in reversed(axes):
                strides.append(stride)
                stride *= size
            strides.reverse()
            planes = [self._plane(d, z) for d, _ in axes]
            if interpolate:
                kernel.linear(
                    flat, planes, [offset[d] for d, _ in axes], [s for _, s in axes], strides,
                    [clip[d] for d, _ in axes], out_sections[:, z],
                )
            else:
                kernel.nearest(flat, planes, [offset[d] for d, _ in axes], [s for _, s in axes], strides, out_sections[:, z])
        return out

    def __repr__(self) -> str:
        return f"GridMap({self.kind}, ROI {self.roi}, voxel size {self.voxel_size})"


def _integral(values: npt.ArrayLike) -> bool:
    values = np.asarray(values, dtype=np.float64)
    return bool(np.abs(values - np.round(values)).max(initial=0) <= _INTEGRAL)


class _Kernel:
    """Buffers and loops of section-wise interpolation (one section of ``n`` voxels at a time)."""

    def __init__(self, n: int, work: npt.DTypeLike):
        self.n = n
        self.work = np.dtype(work)
        self.frac = [np.empty(n, np.float32) for _ in range(3)]
        self.floors = [np.empty(n, np.float32) for _ in range(3)]
        self.index = np.empty(n, np.intp)
        self.tmp_index = np.empty(n, np.intp)
        self._free = [np.empty(n, self.work) for _ in range(4)]

    @staticmethod
    def _coordinate(plane, shift: float, out: np.ndarray) -> None:
        """``out = u + shift`` for a plane ``(array or scalar, offset)`` of u."""
        arr, off = plane
        if np.isscalar(arr):
            out.fill(arr + off + shift)
        else:
            np.add(arr, off + shift, out=out)

    def _flat_index(self, floors, strides, total: int) -> np.ndarray:
        """``sum(floors[k] * strides[k])`` as an index array (floors are whole numbers)."""
        if total < 2**24:  # exact in float32
            acc = floors[0]
            if strides[0] != 1:
                np.multiply(acc, strides[0], out=acc)
            for fl, stride in zip(floors[1:], strides[1:]):
                if stride != 1:
                    np.multiply(fl, stride, out=fl)
                np.add(acc, fl, out=acc)
            np.copyto(self.index, acc, casting="unsafe")
        else:
            np.copyto(self.index, floors[0], casting="unsafe")
            np.multiply(self.index, strides[0], out=self.index)
            for fl, stride in zip(floors[1:], strides[1:]):
                np.copyto(self.tmp_index, fl, casting="unsafe")
                if stride != 1:
                    np.multiply(self.tmp_index, stride, out=self.tmp_index)
                np.add(self.index, self.tmp_index, out=self.index)
        return self.index

    def nearest(self, flat, planes, offsets, sizes, strides, out) -> None:
        floors = self.floors[: len(planes)]
        for plane, lo, size, fl in zip(planes, offsets, sizes, floors):
            self._coordinate(plane, 0.5 - lo, fl)
            np.floor(fl, out=fl)
            np.clip(fl, 0, size - 1, out=fl)
        index = self._flat_index(floors, strides, flat.shape[1])
        for c in range(flat.shape[0]):
            np.take(flat[c], index, out=out[c], mode="clip")

    def linear(self, flat, planes, offsets, sizes, strides, clip, out) -> None:
        dims = len(planes)
        floors = self.floors[:dims]
        for k, (plane, lo, size) in enumerate(zip(planes, offsets, sizes)):
            f, fl = self.frac[k], floors[k]
            self._coordinate(plane, -lo, f)
            if clip[k]:
                np.clip(f, 0, size - 1, out=f)
            np.floor(f, out=fl)
            np.minimum(fl, max(size - 2, 0), out=fl)
            np.subtract(f, fl, out=f)  # the weight of the upper neighbour
        steps = [stride if size > 1 else 0 for stride, size in zip(strides, sizes)]
        index = self._flat_index(floors, strides, flat.shape[1])
        for c in range(flat.shape[0]):
            result = self._lerp(flat[c], index, steps, dims, 0, 0)
            if out.dtype.kind in "iub":
                np.rint(result, out=result)
                if out.dtype.kind != "b":
                    info = np.iinfo(out.dtype)
                    np.clip(result, info.min, info.max, out=result)
            out[c] = result
            self._free.append(result)

    def _lerp(self, values, index, steps, dims, axis, base):
        """Interpolate along axes ``axis..dims-1`` at corner offset ``base``; returns a buffer."""
        if axis == dims:
            buf = self._free.pop() if self._free else np.empty(self.n, self.work)
            np.take(values[base:] if base else values, index, out=buf, mode="clip")
            return buf
        low = self._lerp(values, index, steps, dims, axis + 1, base)
        if steps[axis] == 0:
            return low
        high = self._lerp(values, index, steps, dims, axis + 1, base + steps[axis])
        np.subtract(high, low, out=high)
        np.multiply(high, self.frac[axis], out=high)
        np.add(low, high, out=low)
        self._free.append(high)
        return low
