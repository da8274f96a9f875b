"""Local shape descriptors: hand-checked cube, a brute-force evaluation of the formula, components,
downsampling, and the ``lsds`` package side by side."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from daskseg.errors import ArgumentError
from daskseg.local_shape_descriptor import get_local_shape_descriptors, kernel_reach, num_channels


def _brute_force(seg, sigma, voxel_size, mode="gaussian"):
    """The paper's statistics, voxel by voxel, over every voxel pair (tiny volumes only)."""
    dims = seg.ndim
    sigma = np.array(sigma, dtype=float)
    vs = np.array(voxel_size, dtype=float)
    out = np.zeros((num_channels(dims),) + seg.shape)
    coords = np.stack(np.meshgrid(*[np.arange(s) for s in seg.shape], indexing="ij"), -1).reshape(-1, dims)
    flat = seg.reshape(-1)
    if mode == "gaussian":
        radius = np.array([int(3.0 * s / v + 0.5) for s, v in zip(sigma, vs)])
        norm = [np.exp(-0.5 * (np.arange(-r, r + 1) * v / s) ** 2).sum() for r, v, s in zip(radius, vs, sigma)]
        max_distance = sigma
    else:
        r = sigma[0] / vs[0]
        n = len(np.arange(-r, r))
        max_distance = 0.5 * sigma
    pairs = list(itertools.combinations(range(dims), 2))
    for index, p in enumerate(coords):
        label = flat[index]
        if label == 0:
            continue
        q = coords[flat == label]
        d = q - p  # voxels
        if mode == "gaussian":
            inside = np.all(np.abs(d) <= radius, axis=1)
            w = np.prod(np.exp(-0.5 * (d * vs / sigma) ** 2) / norm, axis=1) * inside
        else:
            # lsds' kernel: arange(-r, r) ** 2 summed <= r ** 2 at index i, displacement n // 2 - i
            i = n // 2 - d
            valid = np.all((i >= 0) & (i < n), axis=1)
            grid = np.arange(-r, r)
            w = np.zeros(len(d))
            w[valid] = (np.sum(grid[i[valid]] ** 2, axis=1) <= r**2).astype(float)
        world = d * vs
        count = w.sum()
        mean = (w[:, None] * world).sum(0) / count
        centred = world - mean
        cov = np.einsum("n,ni,nj->ij", w, centred, centred) / count
        var = np.maximum(np.diag(cov), 1e-3)
        values = list(mean / max_distance * 0.5 + 0.5) + list(var / sigma**2)
        values += [cov[i, j] / np.sqrt(var[i] * var[j]) * 0.5 + 0.5 for i, j in pairs] + [count]
        out[(slice(None),) + tuple(p)] = values
    return np.clip(out, 0, 1)


def _blobs(shape, n, seed, sampling=None, holes=0.05):
    """``n`` random Voronoi cells, some voxels set to background."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, dtype=np.uint64)
    for i, point in enumerate(rng.integers(0, shape, size=(n, len(shape)))):
        seeds[tuple(point)] = i + 1
    _, nearest = ndimage.distance_transform_edt(seeds == 0, return_indices=True, sampling=sampling)
    seg = seeds[tuple(nearest)]
    seg[rng.random(shape) < holes] = 0
    return seg


def test_cube_centre_symmetry_and_size():
    seg = np.zeros((11, 11, 11), dtype=np.uint32)
    seg[3:8, 3:8, 3:8] = 7
    lsd = get_local_shape_descriptors(seg, 2.0)
    assert lsd.shape == (10, 11, 11, 11) and lsd.dtype == np.float32
    # the centre's mean offset is zero (0.5 once normalised), and so are its Pearson coefficients
    np.testing.assert_allclose(lsd[[0, 1, 2, 6, 7, 8], 5, 5, 5], 0.5, atol=1e-6)
    # mean offsets point into the cube and are antisymmetric about its centre
    z_offset = lsd[0, 3:8, 5, 5] - 0.5
    assert z_offset[0] > 0 > z_offset[-1]
    np.testing.assert_allclose(z_offset, -z_offset[::-1], atol=1e-6)
    # a cube is a product set: coordinates are uncorrelated everywhere inside
    np.testing.assert_allclose(lsd[6:9][:, seg != 0], 0.5, atol=1e-6)
    # size: the Gaussian's weight on the cube, largest at its centre; background is 0 everywhere
    g = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    g /= g.sum()
    np.testing.assert_allclose(lsd[9, 5, 5, 5], g[4:9].sum() ** 3, rtol=1e-6)
    np.testing.assert_allclose(lsd[9, 3, 3, 3], g[6:11].sum() ** 3, rtol=1e-6)
    assert np.all(lsd[:, seg == 0] == 0)


def test_brute_force_gaussian_3d_anisotropic():
    seg = _blobs((6, 9, 10), 5, seed=1)
    expected = _brute_force(seg, (6.0, 3.0, 3.0), (3, 1, 1))
    np.testing.assert_allclose(
        get_local_shape_descriptors(seg, (6.0, 3.0, 3.0), voxel_size=(3, 1, 1)), expected, atol=1e-6
    )


def test_brute_force_2d_and_sphere():
    seg2 = _blobs((12, 13), 4, seed=2)
    np.testing.assert_allclose(
        get_local_shape_descriptors(seg2, 2.0), _brute_force(seg2, (2.0, 2.0), (1, 1)), atol=1e-6
    )
    seg3 = _blobs((7, 8, 9), 4, seed=3)
    got = get_local_shape_descriptors(seg3, 4.0, voxel_size=(2, 2, 2), mode="sphere")
    np.testing.assert_allclose(got, _brute_force(seg3, (4.0,) * 3, (2, 2, 2), mode="sphere"), atol=1e-6)


def test_region_and_components_select():
    seg = _blobs((10, 12, 12), 6, seed=4)
    full = get_local_shape_descriptors(seg, 2.0)
    region = (slice(2, 8), slice(3, 12), slice(0, 5))
    np.testing.assert_array_equal(get_local_shape_descriptors(seg, 2.0, region=region), full[(slice(None),) + region])
    np.testing.assert_array_equal(get_local_shape_descriptors(seg, 2.0, components="0129"), full[[0, 1, 2, 9]])
    np.testing.assert_array_equal(get_local_shape_descriptors(seg, 2.0, components="36"), full[[3, 6]])
    with pytest.raises(ArgumentError, match="components 0..5"):
        get_local_shape_descriptors(seg[0], 2.0, components="016")


def test_downsample_close_to_full_resolution():
    seg = _blobs((16, 32, 32), 6, seed=5, holes=0.0)
    full = get_local_shape_descriptors(seg, 4.0)
    coarse = get_local_shape_descriptors(seg, 4.0, downsample=2)
    assert coarse.shape == full.shape
    assert np.all(coarse[:, seg == 0] == 0)
    # statistics of every other voxel, repeated: each channel within a few percent on average
    assert np.abs(coarse - full).reshape(10, -1).mean(axis=1).max() < 0.05
    assert not np.array_equal(coarse, full)
    # a region whose start and size are not multiples of the factor
    region = (slice(3, 14), slice(5, 30), slice(1, 32))
    np.testing.assert_array_equal(
        get_local_shape_descriptors(seg, 4.0, region=region, downsample=2).shape, (10, 11, 25, 31)
    )


def test_kernel_reach_and_bad_arguments():
    assert kernel_reach((80.0, 80.0, 80.0), (40, 4, 4), "gaussian") == (6, 60, 60)
    assert kernel_reach((80.0, 80.0, 80.0), (40, 4, 4), "gaussian", downsample=2) == (6, 60, 60)
    assert kernel_reach((10.0, 10.0, 10.0), (2, 2, 2), "sphere") == (5, 5, 5)
    seg = np.ones((4, 4, 4), dtype=np.uint8)
    with pytest.raises(ArgumentError, match="mode"):
        get_local_shape_descriptors(seg, 2.0, mode="box")
    with pytest.raises(ArgumentError, match="same sigma in voxels"):
        get_local_shape_descriptors(seg, 2.0, voxel_size=(2, 1, 1), mode="sphere")
    with pytest.raises(ArgumentError, match="sigma"):
        get_local_shape_descriptors(seg, (1.0, 2.0), voxel_size=(1, 1, 1))


class _Float64Numpy:
    """numpy, but ``float32`` is ``float64``: runs ``lsds`` without its float32 rounding."""

    float32 = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


LSDS_CASES = [
    # shape, voxel size, sigma, mode, downsample, components
    ((12, 20, 22), (1, 1, 1), 3.0, "gaussian", 1, None),
    ((10, 24, 24), (10, 2, 2), (20.0, 6.0, 6.0), "gaussian", 1, None),
    ((12, 20, 24), (1, 1, 1), 3.0, "gaussian", 2, None),
    ((12, 20, 22), (1, 1, 1), 2.0, "sphere", 1, None),
    ((12, 20, 22), (1, 1, 1), 3.0, "gaussian", 1, "3456"),
    ((32, 32), (1, 1), 3.0, "gaussian", 4, None),
]


@pytest.mark.parametrize("shape,voxel_size,sigma,mode,downsample,components", LSDS_CASES)
def test_equals_lsds_package(monkeypatch, shape, voxel_size, sigma, mode, downsample, components):
    lsd_module = pytest.importorskip("lsd.train.local_shape_descriptor")
    gunpowder = pytest.importorskip("gunpowder")
    seg = _blobs(shape, 12, seed=6)
    dims = len(shape)
    roi = gunpowder.Roi((4,) * dims, tuple(s - 8 for s in shape))
    sigmas = (sigma,) * 3 if np.isscalar(sigma) else sigma
    args = dict(components=components, voxel_size=voxel_size, mode=mode, downsample=downsample)
    ours = get_local_shape_descriptors(seg, sigma, region=roi.to_slices(), **args)
    theirs = lsd_module.get_local_shape_descriptors(seg, sigmas, roi=roi, **args)
    assert ours.shape == theirs.shape
    # lsds accumulates absolute coordinates in float32: its variances round at about 1e-5, and
    # the Pearson coefficients of thin objects (variance raised to 1e-3) amplify that up to 1e-2
    selected = [int(c) for c in components] if components else list(range(num_channels(dims)))
    pearson = [i for i, c in enumerate(selected) if 2 * dims <= c < num_channels(dims) - 1]
    others = [i for i in range(len(selected)) if i not in pearson]
    np.testing.assert_allclose(ours[others], theirs[others], atol=1e-4)
    assert np.mean(np.abs(ours - theirs)) < 2e-5
    monkeypatch.setattr(lsd_module, "np", _Float64Numpy())
    exact = lsd_module.get_local_shape_descriptors(seg, sigmas, roi=roi, **args)
    np.testing.assert_allclose(ours, exact, atol=1e-6)


def test_object_missed_by_downsampling_as_lsds(monkeypatch):
    """An object no sub-sampled voxel reaches gets lsds' values: mean 0, i.e. minus the absolute
    coordinate as offset (clipped), variance at its floor, Pearson 0, size 1."""
    lsd_module = pytest.importorskip("lsd.train.local_shape_descriptor")
    gunpowder = pytest.importorskip("gunpowder")
    seg = np.zeros((24, 24), dtype=np.uint32)
    seg[:, :] = 1
    seg[9, 3:20] = 2  # a line on an odd row: every other row is sampled, never this one
    ours = get_local_shape_descriptors(seg, 1.0, downsample=2)
    line = ours[:, 9, 3:20]
    np.testing.assert_allclose(line[1], 0.0)  # x offset -x / sigma * 0.5 + 0.5, clipped (x >= 2 here)
    np.testing.assert_allclose(line[[2, 3]], 1e-3)  # variances at their floor, / sigma ** 2 = 1
    np.testing.assert_allclose(line[4], 0.5)
    np.testing.assert_allclose(line[5], 1.0)
    monkeypatch.setattr(lsd_module, "np", _Float64Numpy())
    exact = lsd_module.get_local_shape_descriptors(
        seg, (1.0, 1.0, 1.0), roi=gunpowder.Roi((0, 0), (24, 24)), downsample=2
    )
    np.testing.assert_allclose(ours, exact, atol=1e-6)
