"""Neuron-like label volumes: random branching skeletons, thickened and filled nearest-core.

Objects are grown from skeletons (persistent random walks running mostly along z, some
obliquely), thickened by a per-skeleton radius and then filled nearest-core so that neighbouring
processes touch and fill the volume, as neurites do in neuropil. ``skeletons`` draws the ``easy``
preset's processes (one radius distribution); ``process_skeletons`` draws the EM-like presets'
(many thin axons with varicosities, a few thick dendrites with spines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

Polylines = list[tuple[int, np.ndarray, np.ndarray]]
"""Skeletons: ``(object index, points (m, 3) in nm, radii (m,) in nm)``; an object's first is its trunk."""


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def random_directions(rng: np.random.Generator, n: int, oblique_fraction: float) -> np.ndarray:
    """Unit vectors (z, y, x): mostly within ~15° of the z axis, ``oblique_fraction`` at any angle."""
    oblique = rng.random(n) < oblique_fraction
    cos_theta = np.where(oblique, rng.uniform(0.0, 0.8, n), np.cos(np.abs(rng.normal(0.0, 0.25, n))))
    phi = rng.uniform(0, 2 * np.pi, n)
    sin_theta = np.sqrt(1 - cos_theta**2)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return np.stack([sign * cos_theta, sin_theta * np.sin(phi), sin_theta * np.cos(phi)], axis=-1)


def walk(
    rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, steps: int, step_nm: float, wiggle: float
) -> np.ndarray:
    """Persistent random walks (n, steps + 1, 3) in nm: each step turns a little, pulled back to its course."""
    n = len(start)
    points = np.empty((n, steps + 1, 3))
    points[:, 0] = start
    d = direction.copy()
    for k in range(steps):
        d = unit(d + 0.15 * (direction - d) + wiggle * rng.normal(size=(n, 3)))
        points[:, k + 1] = points[:, k] + step_nm * d
    return points


def smooth_profile(rng: np.random.Generator, n: int, length: int, scale: float) -> np.ndarray:
    """Smoothly varying positive factors (n, length) around 1, e.g. a radius along a skeleton."""
    noise = ndi.gaussian_filter1d(rng.normal(size=(n, length)), sigma=4.0, axis=1, mode="wrap")
    noise /= noise.std() + 1e-12
    return np.exp(scale * noise)


WIGGLE = 0.08
"""How much a skeleton's walk turns at each step (see :func:`walk`)."""


def _trunks(
    rng: np.random.Generator,
    starts: np.ndarray,
    dirs: np.ndarray,
    half_steps: int,
    step_nm: float,
    min_keep: float,
    radius: float,
    radius_spread: float,
    profile_scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trunks walked both ways from ``starts`` along ``dirs``: ``(points (n, m, 3), radii (n, m),
    first, last)``; each keeps the part ``first:last`` (a random contiguous part, at least
    ``min_keep`` of it), its radius log-normal around ``radius`` (sd ``radius_spread``) and varying
    along it by ``profile_scale``."""
    n = len(starts)
    fwd = walk(rng, starts, dirs, half_steps, step_nm, WIGGLE)
    bwd = walk(rng, starts, -dirs, half_steps, step_nm, WIGGLE)
    trunks = np.concatenate([bwd[:, :0:-1], fwd], axis=1)  # (n, 2 * half_steps + 1, 3)
    # lengths vary: keep a random contiguous part of each trunk
    length = trunks.shape[1]
    keep = rng.uniform(min_keep, 1.0, n)
    first = (rng.random(n) * (1 - keep) * length).astype(int)
    last = np.minimum(length, first + np.maximum(2, (keep * length).astype(int)))
    base_r = radius * np.exp(rng.normal(0.0, radius_spread, n))
    trunk_r = base_r[:, None] * smooth_profile(rng, n, length, profile_scale)
    return trunks, trunk_r, first, last


def _branches(
    rng: np.random.Generator,
    trunks: np.ndarray,
    trunk_r: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    half_steps: int,
    step_nm: float,
    branch_rate: float,
    angle: Callable[[int], np.ndarray],
    radius_factor: Callable[[int], np.ndarray | float],
) -> Polylines:
    """Branches off the kept parts of ``trunks`` (``branch_rate`` per µm), about half as long:
    ``(trunk index, points, radii)`` each. ``angle(k)`` draws k angles (radians) to their trunk,
    ``radius_factor(k)`` their radii as a fraction of the trunk's where they leave it."""
    length = trunks.shape[1]
    n_branches = rng.poisson(branch_rate * (last - first) * step_nm / 1000.0)
    parent = np.repeat(np.arange(len(trunks)), n_branches)
    if not len(parent):
        return []
    at = first[parent] + (rng.random(len(parent)) * (last[parent] - first[parent] - 1)).astype(int)
    along = unit(trunks[parent, np.minimum(at + 1, length - 1)] - trunks[parent, at] + 1e-9)
    side = unit(np.cross(along, rng.normal(size=(len(parent), 3))))
    theta = angle(len(parent))
    bdir = unit(np.cos(theta)[:, None] * along + np.sin(theta)[:, None] * side)
    bsteps = max(1, half_steps // 2)
    branches = walk(rng, trunks[parent, at], bdir, bsteps, step_nm, WIGGLE)
    blen = np.maximum(2, (rng.uniform(0.3, 1.0, len(parent)) * (bsteps + 1)).astype(int))
    factor = radius_factor(len(parent))
    branch_r = (factor * trunk_r[parent, at])[:, None] * smooth_profile(rng, len(parent), bsteps + 1, 0.2)
    return [(int(p), branches[j, : blen[j]], branch_r[j, : blen[j]]) for j, p in enumerate(parent)]


def skeletons(
    rng: np.random.Generator,
    world_shape: np.ndarray,
    density: float,
    mean_length: float,
    radius: float,
    oblique_fraction: float,
    branch_rate: float,
    step_nm: float = 40.0,
) -> Polylines:
    """Random branching skeletons as polylines: ``(object index, points (m, 3) nm, radii (m,))``.

    Starts are uniform in the volume padded by half a length, so the number of objects grows with
    the volume and coverage is the same near the borders as in the middle.
    """
    pad = mean_length / 2
    padded = world_shape + 2 * pad
    n = max(1, int(rng.poisson(density * np.prod(padded) / 1e9)))
    half_steps = max(1, int(round(mean_length / step_nm / 2)))
    starts = rng.uniform(-pad, world_shape + pad, size=(n, 3))
    dirs = random_directions(rng, n, oblique_fraction)
    trunks, trunk_r, first, last = _trunks(rng, starts, dirs, half_steps, step_nm, 0.4, radius, 0.35, 0.25)
    polylines: Polylines = [(i, trunks[i, first[i] : last[i]], trunk_r[i, first[i] : last[i]]) for i in range(n)]
    # branches: leave a trunk point at 25-70 degrees, thinner, shorter
    polylines += _branches(
        rng,
        trunks,
        trunk_r,
        first,
        last,
        half_steps,
        step_nm,
        branch_rate,
        angle=lambda k: rng.uniform(np.radians(25), np.radians(70), k),
        radius_factor=lambda k: 0.7,
    )
    return polylines


def rasterise(
    polylines: Polylines, shape: tuple[int, int, int], voxel_size: np.ndarray
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
        trunk_run = run_at.get(obj)
        if not trunk and trunk_run is not None and inside[0]:
            # a branch: continue the id of the trunk run at the branch point, if it has one
            tpts, tids = trunk_run
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


def nearest(mask_free: np.ndarray, voxel_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def fill_labels(skel: np.ndarray, radius: np.ndarray, voxel_size: np.ndarray, core_fraction: float) -> np.ndarray:
    """Fill the volume: cores (within ``core_fraction`` × radius of a skeleton) grow to the nearest core."""
    if not skel.any():
        return np.ones(skel.shape, np.int32)
    flat, d2 = nearest(skel == 0, voxel_size)
    r = radius.ravel()[flat] * np.float32(core_fraction)
    core = np.where(d2 <= r * r, skel.ravel()[flat], 0).astype(np.int32)
    del flat, d2, r
    flat, _ = nearest(core == 0, voxel_size)
    return core.ravel()[flat]


def split_disconnected(labels: np.ndarray, min_size: int) -> np.ndarray:
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


def consecutive(labels: np.ndarray) -> np.ndarray:
    """Ids 1..n (uint64) for the objects present, in order of their old ids."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(len(present), np.uint64)
    lut[present] = np.arange(1, present.sum() + 1, dtype=np.uint64)
    return lut[labels]


def upsample(a: np.ndarray, factor: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Repeat each voxel ``factor`` times per axis and crop to ``shape``."""
    for axis, f in enumerate(factor):
        if f > 1:
            a = np.repeat(a, f, axis=axis)
    return a[tuple(slice(0, s) for s in shape)]


def process_skeletons(
    rng: np.random.Generator,
    world_shape: np.ndarray,
    density: float,
    mean_length: float,
    radius: float,
    radius_spread: float,
    profile_scale: float,
    oblique_fraction: float,
    branch_rate: float,
    branch_radius: tuple[float, float],
    branch_angle: tuple[float, float],
    pad_xy: float,
    first_object: int = 0,
    step_nm: float = 40.0,
) -> Polylines:
    """One class of processes (axons, dendrites) as branching skeletons, for the EM-like presets.

    Like :func:`skeletons`, but starts are padded by half a length in z and only ``pad_xy`` nm in
    y and x (the processes run mostly along z, so most of them cross the volume), radii spread
    log-normally by ``radius_spread`` and vary along a process by ``profile_scale`` (varicosities),
    and branches take ``branch_radius`` (a range of factors) of their trunk's radius and leave it
    at ``branch_angle`` (a range, degrees). Object indices start at ``first_object``.
    """
    pad = np.array([mean_length / 2, pad_xy, pad_xy])
    n = int(rng.poisson(density * np.prod(world_shape + 2 * pad) / 1e9))
    if n == 0:
        return []
    half_steps = max(1, int(round(mean_length / step_nm / 2)))
    starts = rng.uniform(-pad, world_shape + pad, size=(n, 3))
    dirs = random_directions(rng, n, oblique_fraction)
    trunks, trunk_r, first, last = _trunks(
        rng, starts, dirs, half_steps, step_nm, 0.5, radius, radius_spread, profile_scale
    )
    polylines: Polylines = [
        (first_object + i, trunks[i, first[i] : last[i]], trunk_r[i, first[i] : last[i]]) for i in range(n)
    ]
    branches = _branches(
        rng,
        trunks,
        trunk_r,
        first,
        last,
        half_steps,
        step_nm,
        branch_rate,
        angle=lambda k: np.radians(rng.uniform(*branch_angle, k)),
        radius_factor=lambda k: rng.uniform(*branch_radius, k),
    )
    polylines += [(first_object + obj, points, radii) for obj, points, radii in branches]
    return polylines
