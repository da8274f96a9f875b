"""Local shape descriptors (Sheridan et al. 2022), computed per object on its bounding box.

For every voxel ``p`` of an object ``L``, the statistics of the object's voxels ``q`` weighted by
a kernel ``w(q - p)`` (a Gaussian of standard deviation ``sigma``, or a sphere of radius
``sigma``; world units):

- mean offset ``E[q - p]`` (one channel per axis),
- variances ``Var[q_i]`` (one per axis),
- Pearson coefficients ``Cov[q_i, q_j] / sqrt(Var[q_i] Var[q_j])`` (``i < j``: zy, zx, yx),
- size ``sum_q w(q - p)`` (the kernel's weight on the object; normalised Gaussian, voxel count
  for the sphere),

normalised to [0, 1] as the ``lsds`` package does (offsets ``/ sigma * 0.5 + 0.5``, half sigma
for the sphere; variances ``/ sigma**2``; Pearson ``* 0.5 + 0.5``; clipped to [0, 1]; background
0). 3D gives 10 channels, 2D gives 6.

The ``lsds`` package convolves the whole volume ten times per label. Here the moments
``sum_q w(q - p) m(q) (q - p)^a`` (``|a| <= 2``) are computed directly in coordinates relative to
``p`` (exact in float64, no large absolute coordinates), on each object's bounding box grown by
the kernel's reach only, and for the Gaussian as three separable passes of small matrix products
that also crop to the bounding box after each pass. The results equal the package's (to its own
float32 rounding), including its treatment of downsampling.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage, signal
from threadpoolctl import threadpool_limits

from .errors import ArgumentError

logger = logging.getLogger(__name__)

MODES = ("gaussian", "sphere")

#: The Gaussian kernel is truncated at this many standard deviations (as ``lsds``/scipy do).
TRUNCATE = 3.0

#: Variances below this (world units squared) are raised to it before normalising Pearson
#: coefficients, as in ``lsds``.
MIN_VARIANCE = 1e-3


def num_channels(dims: int) -> int:
    """Number of descriptor channels for ``dims`` spatial dimensions (10 in 3D, 6 in 2D)."""
    return 2 * dims + dims * (dims - 1) // 2 + 1


def parse_components(components: str | Sequence[int] | None, dims: int) -> list[int]:
    """The channel indices selected by ``components`` (a string such as ``"0129"``), all if ``None``."""
    n = num_channels(dims)
    if components is None:
        return list(range(n))
    try:
        selected = [int(c) for c in components]
    except (TypeError, ValueError):
        raise ArgumentError(
            f"components must be a string of channel digits such as '0129', got {components!r}"
        ) from None
    bad = [c for c in selected if not 0 <= c < n]
    if bad or not selected:
        raise ArgumentError(f"{dims}D local shape descriptors have components 0..{n - 1}, got {components!r}")
    return selected


def normalize_sigma(sigma: float | Sequence[float], dims: int) -> tuple[float, ...]:
    """``sigma`` as one positive float per axis (a scalar is repeated; a 3-tuple is cut to 2D as ``lsds`` does)."""
    if np.isscalar(sigma):
        values = (float(sigma),) * dims
    else:
        values = tuple(float(s) for s in sigma)
        if len(values) > dims:
            values = values[:dims]
    if len(values) != dims or any(not s > 0 for s in values):
        raise ArgumentError(f"sigma must be a positive number or {dims} positive numbers, got {sigma!r}")
    return values


def kernel_reach(sigma: Sequence[float], voxel_size: Sequence[int], mode: str, downsample: int = 1) -> tuple[int, ...]:
    """How many (full-resolution) voxels the kernel reaches on each side, per axis."""
    sub_sigma = [s / (v * downsample) for s, v in zip(sigma, voxel_size)]
    if mode == "gaussian":
        return tuple(int(TRUNCATE * s + 0.5) * downsample for s in sub_sigma)
    n = len(np.arange(-sub_sigma[0], sub_sigma[0]))
    return tuple(n // 2 * downsample for _ in sub_sigma)


def get_local_shape_descriptors(
    segmentation: np.ndarray,
    sigma: float | Sequence[float],
    components: str | Sequence[int] | None = None,
    voxel_size: Sequence[int] | None = None,
    region: tuple[slice, ...] | None = None,
    mode: str = "gaussian",
    downsample: int = 1,
) -> np.ndarray:
    """Local shape descriptors of ``segmentation`` inside ``region``.

    Args:

        segmentation (``ndarray`` of ``int``):

            A 2D or 3D label array; 0 is background. Voxels outside the array count as background.

        sigma (``float`` or ``tuple`` of ``float``):

            Standard deviation of the Gaussian (radius of the sphere), in world units.

        components (``str``, optional):

            The channels to return, e.g. ``"0129"`` (3D: mean offset 0-2, variances 3-5,
            Pearson 6-8, size 9; 2D: 0-1, 2-3, 4, 5). Default: all.

        voxel_size (``tuple`` of ``int``, optional):

            Voxel size of ``segmentation``; default 1.

        region (``tuple`` of ``slice``, optional):

            Voxel slices of ``segmentation`` to compute descriptors for; default all of it.

        mode (``str``):

            ``"gaussian"`` or ``"sphere"`` (the sphere needs the same sigma in voxels on every axis).

        downsample (``int``):

            Compute the statistics on every ``downsample``-th voxel (counted from the region's
            first voxel) and repeat them, as ``lsds`` does; faster, coarser.

    Returns:

        ``float32`` array ``(len(components),) + region shape``.
    """
    segmentation = np.asarray(segmentation)
    dims = segmentation.ndim
    if dims not in (2, 3):
        raise ArgumentError(f"local shape descriptors need a 2D or 3D segmentation, got shape {segmentation.shape}")
    if mode not in MODES:
        raise ArgumentError(f"mode must be one of {MODES}, got {mode!r}")
    df = int(downsample)
    if df < 1 or df != downsample:
        raise ArgumentError(f"downsample must be a positive integer, got {downsample!r}")
    sigma_t = normalize_sigma(sigma, dims)
    selected = parse_components(components, dims)
    vs = tuple(int(v) for v in voxel_size) if voxel_size is not None else (1,) * dims
    if len(vs) != dims:
        raise ArgumentError(f"voxel_size {voxel_size} does not fit a {dims}D segmentation")
    if region is None:
        region = tuple(slice(0, s) for s in segmentation.shape)
    begin = np.array([r.start for r in region])
    end = np.array([r.stop for r in region])
    out_shape = tuple(int(e - b) for b, e in zip(begin, end))

    sub_vs = np.array(vs, dtype=np.float64) * df
    sub_sigma = np.array(sigma_t) / sub_vs
    if mode == "sphere" and len(set(sub_sigma.tolist())) != 1:
        raise ArgumentError(f"mode 'sphere' needs the same sigma in voxels on every axis, got {tuple(sub_sigma)}")

    # the sub-sampled grid: voxels begin + k * df (k may be negative, for the context)
    first = begin % df
    sub_seg = segmentation[tuple(slice(int(f), None, df) for f in first)]
    sub_begin = (begin - first) // df  # index of the region's first voxel in sub_seg

    descriptors = np.zeros((len(selected),) + out_shape, dtype=np.float32)
    seg_region = segmentation[region]
    ids, inverse = np.unique(seg_region, return_inverse=True)
    inverse = inverse.reshape(out_shape)
    index = inverse + 1
    if ids.size and ids[0] == 0:
        index = inverse  # background gets index 0, which find_objects skips
        ids = ids[1:]
    boxes = ndimage.find_objects(index)

    moments = _GaussianMoments(sub_sigma, sub_vs) if mode == "gaussian" else _SphereMoments(sub_sigma[0], sub_vs)
    max_distance = np.array(sigma_t) * (1.0 if mode == "gaussian" else 0.5)
    pairs = list(itertools.combinations(range(dims), 2))
    # many small matrix products: BLAS threads only spin (5-10x slower on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        for position, (label, box) in enumerate(zip(ids, boxes)):
            if box is None:
                continue
            lo = np.array([s.start for s in box])
            hi = np.array([s.stop for s in box])
            # sub-sampled voxels of the bounding box, indices into sub_seg
            s_lo = sub_begin + lo // df
            s_hi = sub_begin + (hi - 1) // df + 1
            m = moments(sub_seg, label, s_lo, s_hi)
            count = m[(0,) * dims]
            empty = count == 0
            count = np.where(empty, 1.0, count)
            unit = [tuple(int(i == d) for i in range(dims)) for d in range(dims)]
            offset = [m[u] / count for u in unit]
            var = []
            for d in range(dims):
                two = tuple(2 * int(i == d) for i in range(dims))
                var.append(np.maximum(m[two] / count - offset[d] ** 2, MIN_VARIANCE))
            pearson = []
            for i, j in pairs:
                ij = tuple(int(k in (i, j)) for k in range(dims))
                cov = m[ij] / count - offset[i] * offset[j]
                pearson.append(cov / np.sqrt(var[i] * var[j]))
            if empty.any():
                # lsds: no object voxel in reach gives mean 0, i.e. an offset of minus the absolute
                # coordinate of the (sub-sampled) voxel, counted from the sub-sampled grid's origin
                for d in range(dims):
                    shape = [1] * dims
                    shape[d] = -1
                    coord = (first[d] + df * np.arange(s_lo[d], s_hi[d])).reshape(shape) * vs[d]
                    offset[d] = np.where(empty, -coord.astype(np.float64), offset[d])
            channels = []
            for c in selected:
                if c < dims:
                    channels.append(offset[c] / max_distance[c] * 0.5 + 0.5)
                elif c < 2 * dims:
                    d = c - dims
                    channels.append(var[d] / sigma_t[d] ** 2)
                elif c < 2 * dims + len(pairs):
                    channels.append(pearson[c - 2 * dims] * 0.5 + 0.5)
                else:
                    channels.append(count)
            values = np.stack(channels)
            if df > 1:
                for d in range(dims):
                    values = np.repeat(values, df, axis=d + 1)
                start = lo - (lo // df) * df
                values = values[
                    (slice(None),) + tuple(slice(int(s), int(s + h - low)) for s, low, h in zip(start, lo, hi))
                ]
            inside = index[box] == position + 1
            target = descriptors[(slice(None),) + box]
            target[:, inside] = values[:, inside]
    np.clip(descriptors, 0.0, 1.0, out=descriptors)
    return descriptors


class _GaussianMoments:
    """Moments ``sum_q g(q - p) m(q) (q - p)^a`` for ``|a| <= 2`` by separable matrix products."""

    def __init__(self, sub_sigma: np.ndarray, sub_vs: np.ndarray):
        self.sigma = sub_sigma
        self.vs = sub_vs
        self.radius = [int(TRUNCATE * s + 0.5) for s in sub_sigma]
        self.dims = len(sub_sigma)
        self.dtype = np.float64

    def _matrices(self, axis: int, out_lo: int, out_hi: int, in_lo: int, in_hi: int) -> list[np.ndarray]:
        """``K^k[o, i] = g(i - o) * ((i - o) * voxel)^k``, k = 0, 1, 2."""
        r = self.radius[axis]
        x = np.arange(-r, r + 1, dtype=np.float64)
        phi = np.exp(-0.5 / self.sigma[axis] ** 2 * x**2)
        phi /= phi.sum()
        diff = np.arange(in_lo, in_hi)[None, :] - np.arange(out_lo, out_hi)[:, None]
        weights = np.where(np.abs(diff) <= r, phi[np.clip(diff + r, 0, 2 * r)], 0.0)
        world = diff * self.vs[axis]
        return [weights, weights * world, weights * world**2]

    def __call__(self, sub_seg: np.ndarray, label, s_lo: np.ndarray, s_hi: np.ndarray) -> dict:
        dims = self.dims
        in_lo = np.maximum(s_lo - self.radius, 0)
        in_hi = np.minimum(s_hi + self.radius, sub_seg.shape)
        crop = tuple(slice(int(a), int(b)) for a, b in zip(in_lo, in_hi))
        inside = sub_seg[crop] == label
        # trim the crop to where the object is: a thin process needs no context beside it
        trim = []
        for axis in range(dims):
            hits = np.flatnonzero(np.any(inside, axis=tuple(a for a in range(dims) if a != axis)))
            first, last = (int(hits[0]), int(hits[-1]) + 1) if hits.size else (0, 1)
            trim.append(slice(first, last))
            in_hi[axis] = in_lo[axis] + last
            in_lo[axis] += first
        mask = inside[tuple(trim)].astype(self.dtype)
        results: dict[tuple[int, ...], np.ndarray] = {(0,) * dims: mask}
        # the axis that shrinks the data most goes first: later passes see less of it
        ratios = [(in_hi[a] - in_lo[a]) / (s_hi[a] - s_lo[a]) for a in range(dims)]
        for axis in sorted(range(dims), key=lambda a: -ratios[a]):
            mats = self._matrices(axis, int(s_lo[axis]), int(s_hi[axis]), int(in_lo[axis]), int(in_hi[axis]))
            out_len = mats[0].shape[0]
            nxt = {}
            for orders, array in results.items():
                ks = range(3 - sum(orders))
                stacked = np.concatenate([mats[k] for k in ks]).astype(self.dtype)
                # one matrix product for all orders, a single BLAS call (np.matmul on stacks of
                # matrices is many times slower here)
                if axis == dims - 1 and array.flags.c_contiguous:
                    out = array.reshape(-1, array.shape[-1]) @ stacked.T  # (other axes, k * out)
                    out = out.reshape(array.shape[:-1] + (len(ks), out_len))
                    parts = [out[..., i, :] for i in range(len(ks))]
                else:
                    out = np.tensordot(stacked, array, axes=([1], [axis]))  # (k * out, *other axes)
                    parts = [np.moveaxis(out[i * out_len : (i + 1) * out_len], 0, axis) for i in range(len(ks))]
                for k, part in zip(ks, parts):
                    key = tuple(k if a == axis else o for a, o in enumerate(orders))
                    nxt[key] = part
            results = nxt
        return results


class _SphereMoments:
    """Moments over ``lsds``' sphere (``scipy.ndimage.convolve`` with its even-sized kernel) by FFT."""

    def __init__(self, sub_radius: float, sub_vs: np.ndarray):
        self.vs = sub_vs
        dims = len(sub_vs)
        r2 = np.arange(-sub_radius, sub_radius) ** 2
        n = len(r2)
        if dims == 3:
            dist2 = r2[:, None, None] + r2[None, :, None] + r2[None, None, :]
        else:
            dist2 = r2[:, None] + r2[None, :]
        sphere = (dist2 <= sub_radius**2).astype(np.float64)
        # convolve: out[p] = sum_i sphere[i] in[p + n//2 - i], i.e. displacement d = n//2 - i
        self.dmin = n // 2 - n + 1
        self.dmax = n // 2
        self.reach = max(-self.dmin, self.dmax)
        disp = np.arange(n // 2, n // 2 - n, -1, dtype=np.float64)  # displacement of kernel index i
        grids = np.meshgrid(*([disp] * dims), indexing="ij")
        self.orders = [a for a in itertools.product(range(3), repeat=dims) if sum(a) <= 2]
        kernels = []
        for a in self.orders:
            k = sphere.copy()
            for d in range(dims):
                k = k * (grids[d] * sub_vs[d]) ** a[d]
            kernels.append(k)
        # correlation with displacement d == convolution with the kernel flipped in d; a kernel
        # indexed by i = n//2 - d is already flipped in d
        self.kernels = np.stack(kernels)
        self.dims = dims

    def __call__(self, sub_seg: np.ndarray, label, s_lo: np.ndarray, s_hi: np.ndarray) -> dict:
        dims = self.dims
        lo = s_lo + self.dmin
        hi = s_hi + self.dmax
        in_lo = np.maximum(lo, 0)
        in_hi = np.minimum(hi, sub_seg.shape)
        crop = tuple(slice(int(a), int(b)) for a, b in zip(in_lo, in_hi))
        padded = np.zeros(tuple(int(h - low) for low, h in zip(lo, hi)), dtype=np.float64)
        padded[tuple(slice(int(a - low), int(b - low)) for a, b, low in zip(in_lo, in_hi, lo))] = sub_seg[crop] == label
        out = signal.fftconvolve(padded[None], self.kernels, mode="valid", axes=tuple(range(1, dims + 1)))
        return {a: out[i] for i, a in enumerate(self.orders)}
