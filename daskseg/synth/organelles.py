"""Organelles whose own membranes look like boundaries: mitochondria with cristae, vesicle clouds.

Both darken a float raw volume in place and never cross an object's boundary. Mitochondria are
ellipsoids along their process with a dark double membrane and dark cristae across their long
axis; vesicle clouds are clusters of ~40 nm rings (synaptic vesicles) in axonal varicosities.
"""

from __future__ import annotations

import numpy as np

from .shapes import Polylines, unit


def _skeleton_points(
    polylines: Polylines, world_shape: np.ndarray, min_radius: float, max_radius: float = np.inf
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skeleton points inside the volume on processes of radius in [min, max): points, unit axes, radii."""
    points = np.concatenate([pts[:-1] for _, pts, _ in polylines])
    axes = np.concatenate([np.diff(pts, axis=0) for _, pts, _ in polylines])
    radii = np.concatenate([rad[:-1] for _, _, rad in polylines])
    ok = np.all((points >= 0) & (points < world_shape), axis=1) & (radii >= min_radius) & (radii < max_radius)
    return points[ok], unit(axes[ok] + 1e-9), radii[ok]


def ellipsoid_along(
    point: np.ndarray, axis: np.ndarray, semi_long: float, voxel_size: np.ndarray, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray]:
    """The box around an ellipsoid centred at ``point`` (nm) with its long axis along the unit
    ``axis``: ``(box, along, dist2)``, per voxel of the box (broadcast) the distance along the axis
    and the squared distance from the centre, in nm. ``semi_long`` sets the box's half size.
    """
    c = (point // voxel_size).astype(int)
    half = np.ceil(semi_long / voxel_size).astype(int)
    box = tuple(slice(max(x - h, 0), min(x + h + 1, s)) for x, h, s in zip(c, half, shape))
    grids = np.ogrid[box]
    offset = [(g - x) * v for g, x, v in zip(grids, point / voxel_size - 0.5, voxel_size)]
    along = sum(o * u for o, u in zip(offset, axis))
    dist2 = sum(o * o for o in offset)
    return box, np.asarray(along), np.asarray(dist2)


def mitochondria(
    rng: np.random.Generator,
    raw: np.ndarray,
    labels: np.ndarray,
    polylines: Polylines,
    voxel_size: np.ndarray,
    density: float,
    min_radius: float = 35.0,
) -> np.ndarray:
    """Draw mitochondria into ``raw`` (in place); returns their mask.

    Args:
        rng: the sample's random generator.
        raw: float32 raw (z, y, x) to darken.
        labels: the label volume; a mitochondrion stays inside the object at its centre.
        polylines: the skeletons; mitochondria sit on them, elongated along them.
        voxel_size: nm per voxel (z, y, x).
        density: mitochondria per µm³.
        min_radius: only processes at least this thick (nm) hold one.
    """
    world = np.asarray(labels.shape) * voxel_size
    points, axes, radii = _skeleton_points(polylines, world, min_radius)
    mask = np.zeros(labels.shape, bool)
    n = min(len(points), int(rng.poisson(density * np.prod(world) / 1e9)))
    for j in rng.choice(len(points), n, replace=False):
        c = (points[j] // voxel_size).astype(int)
        semi_short = min(radii[j] * rng.uniform(0.45, 0.75), 160.0)
        semi_long = semi_short * rng.uniform(1.5, 4.0)
        period = rng.uniform(28.0, 45.0)  # nm between cristae
        box, along, dist2 = ellipsoid_along(points[j], axes[j], semi_long, voxel_size, labels.shape)
        q = (along / semi_long) ** 2 + (dist2 - along**2) / semi_short**2
        inside = (q <= 1.0) & (labels[box] == labels[tuple(c)])
        if not inside.any():
            continue
        rim = inside & (q > (1.0 - 12.0 / semi_short) ** 2)
        cristae = inside & ~rim & (np.cos(2 * np.pi * along / period) > 0.6)
        shade = np.where(rim, 0.38, np.where(cristae, 0.45, 0.72)).astype(np.float32)
        raw[box] = np.where(inside, raw[box] * shade, raw[box])
        mask[box] |= inside
    return mask


def _disc_offsets(radius_px: float) -> tuple[np.ndarray, np.ndarray]:
    """In-plane offsets (k, 2) of a ring of ``radius_px`` (about 2 px wide) and of its inside."""
    r = int(np.ceil(radius_px + 1.5))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    d = np.hypot(yy, xx)
    ring = np.abs(d - radius_px) <= 0.9
    inner = d < radius_px - 0.9
    return np.stack([yy[ring], xx[ring]], 1), np.stack([yy[inner], xx[inner]], 1)


def vesicle_clouds(
    rng: np.random.Generator,
    raw: np.ndarray,
    labels: np.ndarray,
    polylines: Polylines,
    voxel_size: np.ndarray,
    density: float,
    vesicle_radius: float = 20.0,
    packing: float = 0.25,
) -> np.ndarray:
    """Draw clouds of synaptic vesicles into ``raw`` (in place); returns the vesicle rings' mask.

    Args:
        rng: the sample's random generator.
        raw: float32 raw (z, y, x) to darken.
        labels: the label volume; vesicles stay inside the object of their cloud.
        polylines: the skeletons; clouds sit on thin-to-medium processes (axonal boutons).
        voxel_size: nm per voxel (z, y, x).
        density: clouds per µm³.
        vesicle_radius: vesicle radius in nm (drawn in the section holding its centre).
        packing: fraction of a cloud's volume taken by vesicles.
    """
    world = np.asarray(labels.shape) * voxel_size
    points, _, radii = _skeleton_points(polylines, world, 30.0, 150.0)
    rings = np.zeros(labels.shape, bool)
    n = min(len(points), int(rng.poisson(density * np.prod(world) / 1e9)))
    if n == 0:
        return rings
    ring_off, inner_off = _disc_offsets(vesicle_radius / float(voxel_size[1:].mean()))
    centres, owners = [], []
    for j in rng.choice(len(points), n, replace=False):
        cloud_r = radii[j] * rng.uniform(1.0, 1.6)
        count = max(3, int(packing * (cloud_r / vesicle_radius) ** 3))
        direction = unit(rng.normal(size=(count, 3)))
        dist = cloud_r * rng.random(count) ** (1 / 3)
        pts = points[j] + direction * dist[:, None]
        centres.append(np.floor(pts / voxel_size).astype(np.intp))
        owners.append(np.full(count, labels[tuple((points[j] // voxel_size).astype(int))]))
    c = np.concatenate(centres)
    owner = np.concatenate(owners)
    inside = np.all((c >= 0) & (c < labels.shape), axis=1)
    c, owner = c[inside], owner[inside]
    for offsets, factor in ((inner_off, 1.06), (ring_off, 0.5)):
        z = np.repeat(c[:, 0], len(offsets))
        y = (c[:, 1, None] + offsets[None, :, 0]).ravel()
        x = (c[:, 2, None] + offsets[None, :, 1]).ravel()
        own = np.repeat(owner, len(offsets))
        ok = (y >= 0) & (y < labels.shape[1]) & (x >= 0) & (x < labels.shape[2])
        z, y, x, own = z[ok], y[ok], x[ok], own[ok]
        ok = labels[z, y, x] == own
        z, y, x = z[ok], y[ok], x[ok]
        if factor < 1:
            rings[z, y, x] = True
            raw[z, y, x] = raw[z, y, x] * np.float32(factor)
        else:
            raw[z, y, x] = np.minimum(raw[z, y, x] * np.float32(factor), 1.0)
    return rings
