"""The spatial transform module: coordinate maps against point-wise evaluation, resampling against
scipy.ndimage, exact upstream regions, and the copy-only paths (permutations, section shifts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from daskseg.errors import GeometryError
from daskseg.geometry import Coordinate, Roi
from daskseg.transform import ElasticField, SectionShifts, SpatialTransform, spline_weights

VS = Coordinate(40, 4, 4)


def _voxel_centres(roi: Roi, vs) -> np.ndarray:
    shape = roi.shape / vs
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, len(shape))
    return np.asarray(roi.begin) + (idx + 0.5) * np.asarray(vs)


def _reference_coordinates(transform, roi, vs) -> np.ndarray:
    """Source coordinates in voxels relative to the ROI's first voxel, point by point."""
    src = transform(_voxel_centres(roi, vs))
    return ((src - np.asarray(roi.begin)) / np.asarray(vs) - 0.5).T.reshape((len(vs),) + tuple(roi.shape / vs))


def _rotation(angle: float, dims: int = 3) -> np.ndarray:
    m = np.eye(dims)
    m[-2:, -2:] = [[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]
    return m


def _composite(roi: Roi, rng) -> SpatialTransform:
    """Rotation + scaling + elastic (all 3 components) + section shifts + translation."""
    offsets = rng.normal(size=(3, 3, 4, 4)) * np.array([20.0, 6.0, 6.0])[:, None, None, None]
    elastic = ElasticField(origin=(roi.begin[0] + 20.0, roi.begin[1] + 2.0, roi.begin[2] + 2.0), spacing=(150.0, 30.0, 35.0), offsets=offsets)
    n = roi.shape[0] // VS[0]
    shifts = np.zeros((n, 3))
    shifts[:, 1:] = rng.integers(-3, 4, size=(n, 2)) * 4
    sections = SectionShifts(0, float(roi.begin[0]), 40.0, shifts)
    return SpatialTransform(3, _rotation(0.4) / 1.1, roi.center, translation=(10.0, 3.0, -5.0), elastic=elastic, sections=sections)


def test_spline_weights_reproduce_scipy_zoom():
    # gunpowder's elastic field is scipy.ndimage.zoom(order=3) of the control point offsets,
    # corner-aligned: output voxel j sits at control coordinate j * (n - 1) / (N - 1)
    rng = np.random.default_rng(0)
    for n, big in [(7, 268), (21, 84), (2, 50), (3, 10), (1, 30)]:
        values = rng.normal(size=n)
        expected = ndimage.zoom(values, big / n, order=3)
        positions = np.arange(big) * ((n - 1) / (big - 1) if n > 1 else 0.0)
        assert np.allclose(spline_weights(positions, n) @ values, expected, atol=1e-7)


def test_elastic_field_is_separable_like_zoom():
    rng = np.random.default_rng(1)
    offsets = rng.normal(size=(4, 5, 6))
    shape = (20, 30, 40)
    expected = ndimage.zoom(offsets, [s / n for s, n in zip(shape, offsets.shape)], order=3)
    # unit voxels: voxel centres at i + 0.5, so control point 0 sits at 0.5
    spacing = tuple((s - 1) / (n - 1) for s, n in zip(shape, offsets.shape))
    field = ElasticField(origin=(0.5, 0.5, 0.5), spacing=spacing, offsets=np.stack([offsets] * 3))
    coords = SpatialTransform(3, elastic=field).grid(Roi((0, 0, 0), shape), (1, 1, 1)).coordinates()
    identity = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    assert np.allclose(coords - identity, expected[None], atol=1e-4)


@pytest.mark.parametrize("roi", [Roi((400, 40, 80), (400, 80, 96)), Roi((-4000, 1000000, 80), (200, 64, 48))])
def test_grid_coordinates_match_pointwise_evaluation(roi):
    t = _composite(roi, np.random.default_rng(2))
    grid = t.grid(roi, VS)
    assert grid.kind == "interpolate"
    assert np.allclose(grid.coordinates(), _reference_coordinates(t, roi, VS), atol=2e-3)


def test_2d_grid_coordinates_match_pointwise_evaluation():
    rng = np.random.default_rng(3)
    roi = Roi((8, 12), (160, 120))
    elastic = ElasticField((10.0, 14.0), (40.0, 50.0), rng.normal(size=(2, 4, 3)) * 8)
    t = SpatialTransform(2, _rotation(1.1, 2), roi.center, elastic=elastic)
    grid = t.grid(roi, (4, 4))
    assert np.allclose(grid.coordinates(), _reference_coordinates(t, roi, (4, 4)), atol=2e-3)


def _needed_range(coords: np.ndarray, interpolate: bool) -> tuple[np.ndarray, np.ndarray]:
    axes = tuple(range(1, coords.ndim))
    if interpolate:
        return np.floor(coords.min(axis=axes) + 1e-3).astype(int), np.ceil(coords.max(axis=axes) - 1e-3).astype(int)
    return np.floor(coords.min(axis=axes) + 0.5).astype(int), np.floor(coords.max(axis=axes) + 0.5).astype(int)


@pytest.mark.parametrize("interpolate", [True, False])
def test_source_roi_is_the_bounding_box_of_what_is_read(interpolate):
    roi = Roi((400, 40, 80), (400, 80, 96))
    t = _composite(roi, np.random.default_rng(4))
    reference = _reference_coordinates(t, roi, VS)
    lo, hi = _needed_range(reference, interpolate)
    first = np.asarray(roi.begin) // np.asarray(VS)
    expected = Roi((first + lo) * np.asarray(VS), (hi - lo + 1) * np.asarray(VS))
    assert t.grid(roi, VS).source_roi(interpolate) == expected


def test_identity_needs_the_requested_roi_and_returns_the_data_unchanged():
    roi = Roi((400, 40, 80), (200, 48, 52))
    data = np.random.default_rng(5).random((2,) + tuple(roi.shape / VS)).astype(np.float32)
    grid = SpatialTransform.identity(3).grid(roi, VS)
    assert grid.source_roi(True) == roi and grid.source_roi(False) == roi
    assert np.array_equal(grid.apply(data, roi), data)


def test_linear_resampling_matches_scipy_map_coordinates():
    rng = np.random.default_rng(6)
    roi = Roi((400, 40, 80), (400, 80, 96))
    t = _composite(roi, rng)
    grid = t.grid(roi, VS)
    source = grid.source_roi(True)
    data = rng.random((2,) + tuple(source.shape / VS)).astype(np.float32)
    out = grid.apply(data, source, interpolate=True)
    coords = _reference_coordinates(t, roi, VS) - ((np.asarray(source.begin) - np.asarray(roi.begin)) / np.asarray(VS))[:, None, None, None]
    for c in range(2):
        expected = ndimage.map_coordinates(data[c].astype(np.float64), coords, order=1, mode="nearest")
        assert np.allclose(out[c], expected, atol=1e-3)


def test_in_plane_resampling_matches_scipy_map_coordinates():
    # rotation in x-y and misaligned sections: source z is a whole section, resampled per section
    rng = np.random.default_rng(7)
    roi = Roi((0, 0, 0), (320, 64, 64))
    shifts = np.zeros((8, 3))
    shifts[3:, 2] = 12.0
    t = SpatialTransform(3, _rotation(0.3), roi.center, sections=SectionShifts(0, 0.0, 40.0, shifts))
    grid = t.grid(roi, VS)
    source = grid.source_roi(True)
    data = rng.random(tuple(source.shape / VS)) * 100
    out = grid.apply(data.astype(np.float64), source)
    coords = _reference_coordinates(t, roi, VS) - ((np.asarray(source.begin) - np.asarray(roi.begin)) / np.asarray(VS))[:, None, None, None]
    # coordinates are float32: about 1e-5 voxels off, times intensity gradients of up to 100 a voxel
    assert np.allclose(out, ndimage.map_coordinates(data, coords, order=1, mode="nearest"), atol=5e-3)


def test_nearest_neighbour_copies_values_exactly():
    rng = np.random.default_rng(8)
    roi = Roi((400, 40, 80), (400, 80, 96))
    t = _composite(roi, rng)
    grid = t.grid(roi, VS)
    source = grid.source_roi(False)
    labels = rng.integers(2**60, 2**60 + 50, size=tuple(source.shape / VS), dtype=np.uint64)
    out = grid.apply(labels, source, interpolate=False)
    assert out.dtype == np.uint64
    index = np.floor(_reference_coordinates(t, roi, VS) + 0.5).astype(int) - ((np.asarray(source.begin) - np.asarray(roi.begin)) // np.asarray(VS))[:, None, None, None]
    expected = labels[tuple(index)]
    # voxels whose source point lies within float error of a voxel boundary may round either way
    assert np.mean(out == expected) > 0.999
    assert set(np.unique(out)) <= set(np.unique(labels))


def test_linear_interpolation_of_integers_rounds_into_range():
    roi = Roi((0, 0), (8, 8))
    t = SpatialTransform(2, translation=(0.5, 0.5))  # halfway between voxels
    grid = t.grid(roi, (1, 1))
    source = grid.source_roi(True)
    data = np.zeros(tuple(source.shape), dtype=np.uint8)
    data[::2] = 255
    out = grid.apply(data, source)
    assert out.dtype == np.uint8
    assert np.all(out == 128)  # (0 + 255 + 0 + 255) / 4 = 127.5, rounded to even


def test_rotation_by_90_degrees_is_an_exact_permutation():
    roi = Roi((0, 40, 40), (200, 64, 64))
    t = SpatialTransform(3, _rotation(math.pi / 2), roi.center)
    grid = t.grid(roi, VS)
    assert grid.kind == "permute" and grid.source_roi() == roi
    data = np.random.default_rng(9).random(tuple(roi.shape / VS))
    assert np.array_equal(grid.apply(data, roi), np.rot90(data, k=1, axes=(1, 2)))


def test_mirror_and_transpose_match_numpy_and_are_views():
    roi = Roi((0, 0, 0), (40, 40, 40))
    m = np.zeros((3, 3))
    m[2, 0] = m[0, 2] = 1  # exchange axes 0 and 2 ...
    m[1, 1] = -1  # ... and mirror axis 1
    t = SpatialTransform(3, m, roi.center)
    grid = t.grid(roi, (4, 4, 4))
    assert grid.kind == "permute"
    data = np.arange(2 * 1000).reshape(2, 10, 10, 10)
    out = grid.apply(data, roi)
    assert np.array_equal(out, np.flip(data, axis=2).transpose(0, 3, 2, 1))
    assert np.shares_memory(out, data)


def test_whole_voxel_section_shifts_copy_sections():
    roi = Roi((0, 0, 0), (160, 40, 40))
    shifts = np.array([[0, 0, 0], [0, 8, -4], [0, 8, -4], [0, -12, 20]], dtype=float)
    t = SpatialTransform(3, sections=SectionShifts(0, 0.0, 40.0, shifts))
    grid = t.grid(roi, VS)
    assert grid.kind == "sections"
    source = grid.source_roi(False)
    assert source == Roi((0, -12, -4), (160, 40 + 20, 40 + 24))
    data = np.random.default_rng(10).random(tuple(source.shape / VS))
    out = grid.apply(data, source)
    for z, (_, dy, dx) in enumerate(shifts):
        y0, x0 = (int(dy) + 12) // 4, (int(dx) + 4) // 4
        assert np.array_equal(out[z], data[z, y0 : y0 + 10, x0 : x0 + 10])


def test_apply_refuses_data_that_does_not_cover_the_needed_region():
    roi = Roi((0, 0, 0), (200, 64, 64))
    grid = SpatialTransform(3, _rotation(0.5), roi.center).grid(roi, VS)
    with pytest.raises(GeometryError, match="needs source ROI"):
        grid.apply(np.zeros(tuple(roi.shape / VS)), roi)


def test_unsupported_dimensions_and_misaligned_rois_are_rejected():
    with pytest.raises(GeometryError):
        SpatialTransform(3).grid(Roi((0, 0, 0), (10, 10, 10)), VS)
    with pytest.raises(Exception, match="2D and 3D"):
        SpatialTransform(1).grid(Roi((0,), (10,)), (1,))


def test_forward_inverts_the_map_with_elastic_and_section_terms():
    rng = np.random.default_rng(0)
    offsets = rng.normal(scale=1.5, size=(3, 3, 4, 4))
    offsets[0] = 0  # no displacement across sections: the section of every point is then well defined
    elastic = ElasticField((0.5, 0.5, 0.5), (5.0, 10.0, 10.0), offsets)
    sections = SectionShifts(0, 0.0, 1.0, np.array([[0, s, -s] for s in range(10)], dtype=float))
    angle = 0.3
    matrix = np.eye(3)
    matrix[1:, 1:] = [[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]
    transform = SpatialTransform(3, matrix / 1.1, center=(5, 15, 15), translation=(0, 1, -2), elastic=elastic, sections=sections)
    points = rng.uniform((0.2, 0, 0), (9.8, 30, 30), size=(50, 3))
    assert np.allclose(transform(transform.forward(points)), points, atol=1e-5)
    # purely linear maps are inverted exactly; a mirror about 10 sends 3 to 17
    mirror = SpatialTransform(2, np.diag([-1.0, 1.0]), center=(10, 0))
    assert np.array_equal(mirror.forward(np.array([[3.0, 4.0]])), [[17.0, 4.0]])


def test_source_bounds_contain_every_source_point():
    offsets = np.random.default_rng(1).normal(scale=2.0, size=(2, 3, 3))
    transform = SpatialTransform(2, np.array([[0.0, 1.0], [-1.0, 0.0]]), center=(10, 10), elastic=ElasticField((0, 0), (10, 10), offsets))
    roi = Roi((0, 0), (20, 20))
    bounds = transform.source_bounds(roi, (1, 1))
    points = np.random.default_rng(2).uniform(0, 20, size=(2000, 2))
    assert all(bounds.contains(p) for p in transform(points))
