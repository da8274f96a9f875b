"""Synthetic CREMI-like samples: neuron-like labels and EM-like raw, deterministic from a seed.

The default data of daskseg's tutorial and tests. Objects are grown from random branching
skeletons (persistent random walks running mostly along z, some obliquely), thickened by a
per-skeleton radius and then filled nearest-core so that neighbouring processes touch and fill the
volume, as neurites do in neuropil. Raw is dark exactly where labels change (membranes), textured
inside objects (dark "mitochondria", smooth noise), blurred more in xy than in z, and noisy.

    raw, labels = make_sample("small", seed=1)
    write_sample("sample_A.hdf", seed=0)          # volumes/raw, volumes/labels/neuron_ids
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .errors import SampleExistsError, SynthError
from .io import write_array

logger = logging.getLogger(__name__)

VOXEL_SIZE = (40, 4, 4)
"""CREMI's voxel size in nm (z, y, x)."""

PRESETS: dict[str, tuple[int, int, int]] = {
    # holds the tutorial's training request (84x268x268, ~84x380x380 after a rotating ElasticAugment)
    "default": (100, 400, 400),
    # a few hundred thousand voxels: generated in well under a second, for tests
    "small": (24, 128, 128),
}

RAW_DATASET = "volumes/raw"
LABELS_DATASET = "volumes/labels/neuron_ids"


def resolve_shape(shape: Sequence[int] | str) -> tuple[int, int, int]:
    """A 3D shape in voxels, from a sequence or the name of a preset (``'default'``, ``'small'``)."""
    if isinstance(shape, str):
        if shape not in PRESETS:
            raise SynthError(f"unknown sample preset {shape!r}; presets are {sorted(PRESETS)}")
        return PRESETS[shape]
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 2:
        raise SynthError(f"sample shape must be 3 sizes >= 2 (z, y, x) in voxels, got {shape}")
    return shape  # type: ignore[return-value]


# --- skeletons ----------------------------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _random_directions(rng: np.random.Generator, n: int, oblique_fraction: float) -> np.ndarray:
    """Unit vectors (z, y, x): mostly within ~15° of the z axis, ``oblique_fraction`` at any angle."""
    oblique = rng.random(n) < oblique_fraction
    cos_theta = np.where(oblique, rng.uniform(0.0, 0.8, n), np.cos(np.abs(rng.normal(0.0, 0.25, n))))
    phi = rng.uniform(0, 2 * np.pi, n)
    sin_theta = np.sqrt(1 - cos_theta**2)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return np.stack([sign * cos_theta, sin_theta * np.sin(phi), sin_theta * np.cos(phi)], axis=-1)


def _walk(
    rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, steps: int, step_nm: float, wiggle: float
) -> np.ndarray:
    """Persistent random walks (n, steps + 1, 3) in nm: each step turns a little, pulled back to its course."""
    n = len(start)
    points = np.empty((n, steps + 1, 3))
    points[:, 0] = start
    d = direction.copy()
    for k in range(steps):
        d = _unit(d + 0.15 * (direction - d) + wiggle * rng.normal(size=(n, 3)))
        points[:, k + 1] = points[:, k] + step_nm * d
    return points


def _smooth_profile(rng: np.random.Generator, n: int, length: int, scale: float) -> np.ndarray:
    """Smoothly varying positive factors (n, length) around 1, e.g. a radius along a skeleton."""
    noise = ndi.gaussian_filter1d(rng.normal(size=(n, length)), sigma=4.0, axis=1, mode="wrap")
    noise /= noise.std() + 1e-12
    return np.exp(scale * noise)


def _skeletons(
    rng: np.random.Generator,
    world_shape: np.ndarray,
    density: float,
    mean_length: float,
    radius: float,
    oblique_fraction: float,
    branch_rate: float,
    step_nm: float = 40.0,
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Random branching skeletons as polylines: ``(object index, points (m, 3) nm, radii (m,))``.

    Starts are uniform in the volume padded by half a length, so the number of objects grows with
    the volume and coverage is the same near the borders as in the middle.
    """
    pad = mean_length / 2
    padded = world_shape + 2 * pad
    n = max(1, int(rng.poisson(density * np.prod(padded) / 1e9)))
    half_steps = max(1, int(round(mean_length / step_nm / 2)))
    starts = rng.uniform(-pad, world_shape + pad, size=(n, 3))
    dirs = _random_directions(rng, n, oblique_fraction)
    wiggle = 0.08
    fwd = _walk(rng, starts, dirs, half_steps, step_nm, wiggle)
    bwd = _walk(rng, starts, -dirs, half_steps, step_nm, wiggle)
    trunks = np.concatenate([bwd[:, :0:-1], fwd], axis=1)  # (n, 2 * half_steps + 1, 3)
    # lengths vary: keep a random contiguous part of each trunk
    length = trunks.shape[1]
    keep = rng.uniform(0.4, 1.0, n)
    first = (rng.random(n) * (1 - keep) * length).astype(int)
    last = np.minimum(length, first + np.maximum(2, (keep * length).astype(int)))
    base_r = radius * np.exp(rng.normal(0.0, 0.35, n))
    trunk_r = base_r[:, None] * _smooth_profile(rng, n, length, 0.25)

    polylines: list[tuple[int, np.ndarray, np.ndarray]] = []
    for i in range(n):
        polylines.append((i, trunks[i, first[i] : last[i]], trunk_r[i, first[i] : last[i]]))

    # branches: leave a trunk point at 25-70 degrees, thinner, shorter
    n_branches = rng.poisson(branch_rate * (last - first) * step_nm / 1000.0)
    parent = np.repeat(np.arange(n), n_branches)
    if len(parent):
        at = first[parent] + (rng.random(len(parent)) * (last[parent] - first[parent] - 1)).astype(int)
        along = _unit(trunks[parent, np.minimum(at + 1, length - 1)] - trunks[parent, at] + 1e-9)
        side = _unit(np.cross(along, rng.normal(size=(len(parent), 3))))
        angle = rng.uniform(np.radians(25), np.radians(70), len(parent))
        bdir = _unit(np.cos(angle)[:, None] * along + np.sin(angle)[:, None] * side)
        bsteps = max(1, half_steps // 2)
        branches = _walk(rng, trunks[parent, at], bdir, bsteps, step_nm, wiggle)
        blen = np.maximum(2, (rng.uniform(0.3, 1.0, len(parent)) * (bsteps + 1)).astype(int))
        branch_r = (0.7 * trunk_r[parent, at])[:, None] * _smooth_profile(rng, len(parent), bsteps + 1, 0.2)
        for j, p in enumerate(parent):
            polylines.append((int(p), branches[j, : blen[j]], branch_r[j, : blen[j]]))
    return polylines


def _rasterise(
    polylines: list[tuple[int, np.ndarray, np.ndarray]], shape: tuple[int, int, int], voxel_size: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Skeleton voxels labelled by object (0 elsewhere) and the skeleton's radius there (nm).

    Every in-volume run of a skeleton gets its own id, so an object that leaves the volume and comes
    back is two objects, as it would be in a cropped EM volume. Branches inherit the id of the run
    they leave from, when they leave from inside the volume.
    """
    step = float(voxel_size.min())
    skel = np.zeros(shape, np.int32)
    radius = np.zeros(shape, np.float32)
    upper = np.asarray(shape) * voxel_size
    # object -> its trunk's dense points and run id per point (None: the trunk misses the volume);
    # each object's first polyline is its trunk
    run_at: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
    next_id = 1
    for obj, pts, rad in polylines:
        trunk = obj not in run_at
        if np.any(pts.max(axis=0) < 0) or np.any(pts.min(axis=0) >= upper):
            if trunk:
                run_at[obj] = None
            continue
        seg = np.diff(pts, axis=0)
        sub = max(1, int(np.ceil(np.linalg.norm(seg, axis=1).max() / step)))
        t = np.arange(sub) / sub
        dense = (pts[:-1, None] + t[None, :, None] * seg[:, None]).reshape(-1, 3)
        dense = np.concatenate([dense, pts[-1:]])
        drad = np.concatenate([(rad[:-1, None] + t[None] * np.diff(rad)[:, None]).ravel(), rad[-1:]])
        inside = np.all((dense >= 0) & (dense < upper), axis=1)
        starts = inside & ~np.concatenate([[False], inside[:-1]])
        run = np.cumsum(starts)
        ids = np.zeros(len(dense), np.int64)
        inherited = None
        if not trunk and run_at[obj] is not None and inside[0]:
            # a branch: continue the id of the trunk run at the branch point, if it has one
            tpts, tids = run_at[obj]
            nearest = int(np.argmin(np.linalg.norm(tpts - dense[0], axis=1)))
            inherited = int(tids[nearest]) or None
        n_runs = int(run[-1]) if len(run) else 0
        new_ids = np.arange(next_id, next_id + n_runs)
        if inherited is not None and n_runs:
            new_ids = np.concatenate([[inherited], np.arange(next_id, next_id + n_runs - 1)])
        next_id += n_runs - (inherited is not None and n_runs > 0)
        ids[inside] = new_ids[run[inside] - 1]
        if trunk:
            run_at[obj] = (dense, ids)
        vox = (dense[inside] // voxel_size).astype(np.intp)
        skel[vox[:, 0], vox[:, 1], vox[:, 2]] = ids[inside]
        radius[vox[:, 0], vox[:, 1], vox[:, 2]] = drad[inside]
    return skel, radius


def _nearest(mask_free: np.ndarray, voxel_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat index of the nearest marked voxel (where ``mask_free`` is False) and the squared distance (nm²)."""
    idx = ndi.distance_transform_edt(mask_free, sampling=voxel_size, return_distances=False, return_indices=True)
    shape = mask_free.shape
    d2 = np.zeros(shape, np.float32)
    flat = np.zeros(shape, np.int64)
    for axis in range(3):
        grid = np.arange(shape[axis], dtype=np.int32).reshape([-1 if a == axis else 1 for a in range(3)])
        delta = (idx[axis] - grid).astype(np.float32)
        d2 += (delta * np.float32(voxel_size[axis])) ** 2
        flat *= shape[axis]
        flat += idx[axis]
    return flat, d2


def _labels(
    skel: np.ndarray, radius: np.ndarray, voxel_size: np.ndarray, core_fraction: float
) -> np.ndarray:
    """Fill the volume: cores (within ``core_fraction`` × radius of a skeleton) grow to the nearest core."""
    if not skel.any():
        return np.ones(skel.shape, np.int32)
    flat, d2 = _nearest(skel == 0, voxel_size)
    r = radius.ravel()[flat] * np.float32(core_fraction)
    core = np.where(d2 <= r * r, skel.ravel()[flat], 0).astype(np.int32)
    del flat, d2, r
    flat, _ = _nearest(core == 0, voxel_size)
    return core.ravel()[flat]


def _split_disconnected(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Make every id one face-connected object, in place.

    Where skeletons come within a section of each other one process can cut another in two; the
    larger parts become objects of their own, parts under ``min_size`` voxels join the neighbour
    they touch most. Face connectivity, because affinities link face neighbours only.
    """
    next_id = int(labels.max()) + 1
    for i, box in enumerate(ndi.find_objects(labels)):
        if box is None:
            continue
        box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)
        parts, n = ndi.label(labels[box] == i + 1)
        if n < 2:
            continue
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        keep = int(np.argmax(sizes))
        for part in range(1, n + 1):
            if part == keep:
                continue
            mask = parts == part
            if sizes[part] >= min_size:
                labels[box][mask] = next_id
                next_id += 1
            else:
                rim = ndi.binary_dilation(mask) & ~mask
                neighbours = labels[box][rim]
                neighbours = neighbours[neighbours != i + 1]
                if len(neighbours):
                    labels[box][mask] = np.bincount(neighbours).argmax()
    return labels


def _consecutive(labels: np.ndarray) -> np.ndarray:
    """Ids 1..n (uint64) for the objects present, in order of their old ids."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(len(present), np.uint64)
    lut[present] = np.arange(1, present.sum() + 1, dtype=np.uint64)
    return lut[labels]


def _upsample(a: np.ndarray, factor: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Repeat each voxel ``factor`` times per axis and crop to ``shape``."""
    for axis, f in enumerate(factor):
        if f > 1:
            a = np.repeat(a, f, axis=axis)
    return a[tuple(slice(0, s) for s in shape)]


# --- raw ----------------------------------------------------------------------------------------


def boundary_mask(labels: np.ndarray, axes: Sequence[int] = (1, 2)) -> np.ndarray:
    """Voxels whose label differs from a direct neighbour along ``axes`` (both sides of each change)."""
    mask = np.zeros(labels.shape, bool)
    for axis in axes:
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        change = labels[tuple(lo)] != labels[tuple(hi)]
        mask[tuple(lo)] |= change
        mask[tuple(hi)] |= change
    return mask


def _mitochondria(
    rng: np.random.Generator,
    labels: np.ndarray,
    polylines: list[tuple[int, np.ndarray, np.ndarray]],
    voxel_size: np.ndarray,
    density: float,
) -> np.ndarray:
    """Small dark ellipsoids on thick processes, elongated along them, never crossing a boundary."""
    mito = np.zeros(labels.shape, bool)
    upper = np.asarray(labels.shape) * voxel_size
    points = np.concatenate([pts[:-1] for _, pts, _ in polylines])
    axes = np.concatenate([np.diff(pts, axis=0) for _, pts, _ in polylines])
    radii = np.concatenate([rad[:-1] for _, _, rad in polylines])
    ok = np.all((points >= 0) & (points < upper), axis=1) & (radii > 60.0)
    points, axes, radii = points[ok], _unit(axes[ok]), radii[ok]
    n = min(len(points), int(rng.poisson(density * np.prod(upper) / 1e9)))
    for j in rng.choice(len(points), n, replace=False):
        c = (points[j] // voxel_size).astype(int)
        semi_long, semi_short = radii[j] * rng.uniform(1.0, 2.5), radii[j] * rng.uniform(0.25, 0.45)
        half = np.ceil(semi_long / voxel_size).astype(int)
        box = tuple(slice(max(x - h, 0), min(x + h + 1, s)) for x, h, s in zip(c, half, labels.shape))
        grids = np.ogrid[box]
        offset = [(g - x) * v for g, x, v in zip(grids, points[j] / voxel_size - 0.5, voxel_size)]
        along = sum(o * u for o, u in zip(offset, axes[j]))
        dist2 = sum(o * o for o in offset)
        inside = (along / semi_long) ** 2 + (dist2 - along**2) / semi_short**2 <= 1.0
        mito[box] |= inside & (labels[box] == labels[tuple(c)])
    return mito


def _raw(
    rng: np.random.Generator,
    labels: np.ndarray,
    mito: np.ndarray,
    noise: float,
    blur: Sequence[float],
) -> np.ndarray:
    """EM-like uint8 raw: bright textured cytoplasm, dark membranes on label changes, blur and noise."""
    n_objects = int(labels.max())
    brightness = rng.uniform(0.62, 0.82, n_objects + 1).astype(np.float32)
    raw = brightness[labels]
    texture = rng.standard_normal(labels.shape, dtype=np.float32)
    ndi.gaussian_filter(texture, sigma=(0.7, 2.5, 2.5), output=texture)
    texture *= np.float32(0.06 / (texture.std() + 1e-6))
    raw += texture
    raw[mito] *= np.float32(0.55)
    # membranes: dark where labels change within a section; a membrane parallel to the section
    # (a label change between sections) shows as a fainter smear, as in anisotropic EM
    raw[boundary_mask(labels, axes=(0,))] *= np.float32(0.7)
    raw[boundary_mask(labels, axes=(1, 2))] = np.float32(0.18)
    ndi.gaussian_filter(raw, sigma=tuple(blur), output=raw)
    # section-to-section brightness jitter and shot noise
    raw += rng.normal(0.0, 0.02, labels.shape[0]).astype(np.float32)[:, None, None]
    raw += rng.standard_normal(labels.shape, dtype=np.float32) * np.float32(noise)
    np.clip(raw, 0.0, 1.0, out=raw)
    raw *= np.float32(255.0)
    return np.rint(raw, out=raw).astype(np.uint8)


# --- public API ---------------------------------------------------------------------------------


def make_sample(
    shape: Sequence[int] | str = "default",
    seed: int = 0,
    *,
    voxel_size: Sequence[int] = VOXEL_SIZE,
    density: float = 9.0,
    mean_length: float = 4000.0,
    radius: float = 90.0,
    oblique_fraction: float = 0.25,
    branch_rate: float = 0.4,
    core_fraction: float = 0.6,
    mitochondria: float = 10.0,
    noise: float = 0.05,
    blur: Sequence[float] = (0.4, 1.2, 1.2),
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic CREMI-like sample: ``(raw uint8 (z, y, x), labels uint64 (z, y, x))``.

    Args:
        shape: size in voxels (z, y, x), or a preset name: ``'default'`` (100, 400, 400), ``'small'``.
        seed: the same seed (and arguments) gives the same arrays.
        voxel_size: nm per voxel (z, y, x); the objects are sized in nm, so this only sets the sampling.
        density: skeleton trunks started per µm³ (branches come on top); sets how many objects fill it.
        mean_length: longest trunk length in nm (trunks keep 40-100% of it).
        radius: median process radius in nm; each process varies around its own radius.
        oblique_fraction: fraction of processes running at any angle rather than along z.
        branch_rate: expected branches per µm of trunk.
        core_fraction: how much of its radius a process claims before neighbours fill in nearest-first.
        mitochondria: dark intracellular ellipsoids per µm³.
        noise: standard deviation of the additive noise, in units of the full intensity range.
        blur: Gaussian sigma in voxels (z, y, x); stronger in xy since z sections are 40 nm apart.

    Every voxel is labelled (no background); ids are 1..n, one per object, each object a connected
    process (branches included) within the volume.
    """
    shape = resolve_shape(shape)
    vs = np.asarray(voxel_size, dtype=float)
    if vs.shape != (3,) or np.any(vs <= 0):
        raise SynthError(f"voxel_size must be 3 positive sizes in nm (z, y, x), got {tuple(voxel_size)}")
    if density <= 0 or mean_length <= 0 or radius <= 0 or not 0 < core_fraction <= 1:
        raise SynthError(
            f"density ({density}), mean_length ({mean_length}) and radius ({radius}) must be positive "
            f"and core_fraction ({core_fraction}) in (0, 1]"
        )
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    polylines = _skeletons(
        rng, np.asarray(shape) * vs, density, mean_length, radius, oblique_fraction, branch_rate
    )
    # objects are computed at half resolution along axes much finer than the coarsest (xy in
    # CREMI) and repeated up: 4x faster, and the 8 nm steps in the boundaries vanish in the blur
    factor = [2 if 2 * v <= vs.max() else 1 for v in vs]
    coarse_shape = tuple(-(-s // f) for s, f in zip(shape, factor))
    skel, skel_radius = _rasterise(polylines, coarse_shape, vs * factor)
    labels = _labels(skel, skel_radius, vs * factor, core_fraction)
    del skel, skel_radius
    labels = _split_disconnected(labels, min_size=max(8, labels.size // 20000))
    labels = _upsample(_consecutive(labels), factor, shape)
    mito = _mitochondria(rng, labels, polylines, vs, mitochondria)
    raw = _raw(rng, labels, mito, noise, blur)
    logger.debug(
        "synthetic sample %s seed %d: %d objects in %.2fs", shape, seed, int(labels.max()), time.perf_counter() - t0
    )
    return raw, labels


def write_sample(
    path: str | os.PathLike,
    shape: Sequence[int] | str = "default",
    seed: int = 0,
    *,
    voxel_size: Sequence[int] = VOXEL_SIZE,
    offset: Sequence[int] | None = None,
    chunk_shape: Sequence[int] | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Write a :func:`make_sample` sample as CREMI does: ``volumes/raw`` and ``volumes/labels/neuron_ids``.

    The format follows the extension (``.hdf``/``.h5``/``.hdf5`` → HDF5, ``.zarr`` → Zarr);
    ``offset`` is in nm (zero by default). Extra keyword arguments go to :func:`make_sample`.
    Returns the written ``(raw, labels)``.

    Args:
        overwrite (bool): replace the sample's datasets when ``path`` exists; without it an
            existing ``path`` raises :class:`SampleExistsError` before anything is written.
    """
    if not overwrite:
        refuse_existing([path])
    raw, labels = make_sample(shape, seed, voxel_size=voxel_size, **kwargs)
    for name, data in ((RAW_DATASET, raw), (LABELS_DATASET, labels)):
        write_array(path, name, data, voxel_size, offset=offset, chunk_shape=chunk_shape)
    logger.info("wrote synthetic sample %s (shape %s, seed %d)", path, raw.shape, seed)
    return raw, labels


def write_cremi_samples(
    directory: str | os.PathLike,
    shape: Sequence[int] | str = "default",
    names: Sequence[str] = ("A", "B", "C"),
    seed: int = 0,
    extension: str = ".hdf",
    overwrite: bool = False,
    **kwargs: Any,
) -> list[str]:
    """Write one sample per name as ``sample_<name>.hdf`` (seeds ``seed``, ``seed + 1``, ...), the
    tutorial's three training samples; ``extension='.zarr'`` for Zarr. Returns the paths.

    Args:
        overwrite (bool): replace existing samples; without it, if any of the paths exists,
            :class:`SampleExistsError` names them all and nothing is written.
    """
    if extension not in (".hdf", ".h5", ".hdf5", ".zarr"):
        raise SynthError(f"extension must be .hdf, .h5, .hdf5 or .zarr, got {extension!r}")
    paths = [os.path.join(str(directory), f"sample_{name}{extension}") for name in names]
    if not overwrite:
        refuse_existing(paths)
    os.makedirs(directory, exist_ok=True)
    for i, path in enumerate(paths):
        write_sample(path, shape, seed + i, overwrite=True, **kwargs)
    return paths


def refuse_existing(paths: Sequence[str | os.PathLike]) -> None:
    """Raise :class:`SampleExistsError` naming every path of ``paths`` that exists (file or directory)."""
    existing = [os.fspath(p) for p in paths if os.path.lexists(p)]
    if existing:
        raise SampleExistsError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: nothing was written; "
            "pass --overwrite (overwrite=True) to replace the samples, or write to another directory"
        )
