"""Synthetic CREMI-like samples: neuron-like labels and EM-like raw, deterministic from a seed.

The default data of daskseg's tutorial, demo and tests, in three data presets
(:mod:`.presets`): ``easy`` (the first generator, unchanged: the library default, so existing
callers get the same arrays), ``cremi-like`` (``daskseg synth``'s and the demo's default: mostly thin
axons, a few dendrites, uneven membranes, organelles with their own membranes, section defects)
and ``hard``. The package's modules, one job each:

- :mod:`.shapes`: labels from random branching skeletons, filled nearest-core;
- :mod:`.easy`: the ``easy`` preset's raw;
- :mod:`.membranes`, :mod:`.organelles`, :mod:`.imaging`, composed by :mod:`.em`: the EM-like raw;
- :mod:`.presets`: the presets' parameters.

    raw, labels = make_sample("small", seed=1)                       # easy
    raw, labels = make_sample("default", seed=1, preset="cremi-like")
    write_sample("sample_A.hdf", seed=0)          # volumes/raw, volumes/labels/neuron_ids
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SampleExistsError, SynthError
from ..io import add_redirect, container_format, write_array
from . import easy
from .em import em_raw
from .membranes import boundary_mask
from .presets import DATA_PRESETS, SynthParams, preset_params
from .shapes import (
    Polylines,
    consecutive,
    fill_labels,
    process_skeletons,
    rasterise,
    skeletons,
    split_disconnected,
    upsample,
)

__all__ = [
    "DATA_PRESETS",
    "DEFAULT_PRESET",
    "LABELS_DATASET",
    "OME_LABELS_DATASET",
    "PRESETS",
    "RAW_DATASET",
    "VOXEL_SIZE",
    "SynthParams",
    "boundary_mask",
    "make_sample",
    "refuse_existing",
    "resolve_shape",
    "write_cremi_samples",
    "write_sample",
]

logger = logging.getLogger(__name__)

VOXEL_SIZE = (40, 4, 4)
"""CREMI's voxel size in nm (z, y, x)."""

PRESETS: dict[str, tuple[int, int, int]] = {
    # CREMI's 125 sections hold the prediction network's input (120x322x322); 600x600 holds the
    # training request (84x268x268) rotated by the tutorial's ElasticAugment (up to ~380x380) plus
    # its jitter and its section misalignment, which accumulates (2000 draws: at most 546)
    "default": (125, 600, 600),
    # a few hundred thousand voxels: generated in well under a second, for tests
    "small": (24, 128, 128),
}
"""Named sample shapes (voxels z, y, x); the data presets (how the sample looks) are :data:`DATA_PRESETS`."""

DEFAULT_PRESET = "cremi-like"
"""The data preset of ``daskseg synth`` and ``daskseg demo`` (the library's default stays ``easy``)."""

RAW_DATASET = "volumes/raw"
LABELS_DATASET = "volumes/labels/neuron_ids"
OME_LABELS_DATASET = "volumes/raw/labels/neuron_ids"
"""Where a Zarr sample keeps its ground truth: an OME-Zarr label of the raw image; ``LABELS_DATASET``
redirects there, so the CREMI path keeps working."""


def resolve_shape(shape: Sequence[int] | str) -> tuple[int, int, int]:
    """A 3D shape in voxels, from a sequence or the name of a preset (``'default'``, ``'small'``)."""
    if isinstance(shape, str):
        if shape not in PRESETS:
            raise SynthError(f"unknown sample preset {shape!r}; presets are {sorted(PRESETS)}")
        return PRESETS[shape]
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 2:
        raise SynthError(f"sample shape must be 3 sizes >= 2 (z, y, x) in voxels, got {shape}")
    return shape


def _polylines(rng: np.random.Generator, world: np.ndarray, p: SynthParams) -> Polylines:
    """The preset's skeletons: one population (easy), or axons then dendrites (EM-like)."""
    if p.style == "easy":
        return skeletons(rng, world, p.density, p.mean_length, p.radius, p.oblique_fraction, p.branch_rate)
    axons = process_skeletons(
        rng, world, p.density, p.mean_length, p.radius, p.radius_spread, p.varicosity, p.oblique_fraction,
        p.branch_rate, branch_radius=(0.5, 0.9), branch_angle=(25.0, 70.0), pad_xy=0.2 * p.mean_length,
    )
    first = 1 + max((obj for obj, _, _ in axons), default=-1)
    dendrites = process_skeletons(
        rng, world, p.dendrite_density, p.mean_length, p.dendrite_radius, 0.25, 0.15, 0.1, p.spine_rate,
        branch_radius=(0.12, 0.3), branch_angle=(60.0, 90.0), pad_xy=p.dendrite_radius, first_object=first,
    )
    return axons + dendrites


def make_sample(
    shape: Sequence[int] | str = "default",
    seed: int = 0,
    *,
    preset: str | SynthParams = "easy",
    voxel_size: Sequence[int] = VOXEL_SIZE,
    density: float | None = None,
    mean_length: float | None = None,
    radius: float | None = None,
    oblique_fraction: float | None = None,
    branch_rate: float | None = None,
    core_fraction: float | None = None,
    mitochondria: float | None = None,
    noise: float | None = None,
    blur: Sequence[float] | None = None,
    **params: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic CREMI-like sample: ``(raw uint8 (z, y, x), labels uint64 (z, y, x))``.

    Args:
        shape: size in voxels (z, y, x), or a shape name: ``'default'`` (125, 600, 600), ``'small'``.
        seed: the same seed (and arguments) gives the same arrays.
        preset: how the sample looks: ``'easy'`` (default here; the first generator, unchanged),
            ``'cremi-like'`` or ``'hard'`` (see :mod:`daskseg.synth.presets`), or a :class:`SynthParams`.
            The arguments below override the preset's value when given.
        voxel_size: nm per voxel (z, y, x); the objects are sized in nm, so this only sets the sampling.
        density: skeleton trunks started per µm³ (branches come on top); sets how many objects fill it.
        mean_length: longest trunk length in nm (trunks keep 40-100% of it).
        radius: median process radius in nm (axons' in the EM-like presets); each process varies
            around its own radius.
        oblique_fraction: fraction of processes running at any angle rather than along z.
        branch_rate: expected branches per µm of trunk.
        core_fraction: how much of its radius a process claims before neighbours fill in nearest-first.
        mitochondria: mitochondria per µm³.
        noise: standard deviation of the additive noise, in units of the full intensity range.
        blur: Gaussian sigma in voxels (z, y, x); stronger in xy since z sections are 40 nm apart.
        params: any other field of :class:`SynthParams` (e.g. ``missing=0.0``, ``faint_fraction=0.2``).

    Every voxel is labelled (no background); ids are 1..n, one per object, each object a connected
    process (branches included) within the volume.
    """
    shape = resolve_shape(shape)
    vs = np.asarray(voxel_size, dtype=float)
    if vs.shape != (3,) or np.any(vs <= 0):
        raise SynthError(f"voxel_size must be 3 positive sizes in nm (z, y, x), got {tuple(voxel_size)}")
    p = preset_params(
        preset, density=density, mean_length=mean_length, radius=radius, oblique_fraction=oblique_fraction,
        branch_rate=branch_rate, core_fraction=core_fraction, mitochondria=mitochondria, noise=noise, blur=blur,
        **params,
    )
    if p.density <= 0 or p.mean_length <= 0 or p.radius <= 0 or not 0 < p.core_fraction <= 1:
        raise SynthError(
            f"density ({p.density}), mean_length ({p.mean_length}) and radius ({p.radius}) must be positive "
            f"and core_fraction ({p.core_fraction}) in (0, 1]"
        )
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    polylines = _polylines(rng, np.asarray(shape) * vs, p)
    # objects are computed at half resolution along axes much finer than the coarsest (xy in
    # CREMI) and repeated up: 4x faster, and the 8 nm steps in the boundaries vanish in the blur
    factor = [2 if 2 * v <= vs.max() else 1 for v in vs]
    coarse_shape = tuple(-(-s // f) for s, f in zip(shape, factor))
    skel, skel_radius = rasterise(polylines, coarse_shape, vs * factor)  # type: ignore[arg-type]
    labels = fill_labels(skel, skel_radius, vs * factor, p.core_fraction)
    del skel, skel_radius
    labels = split_disconnected(labels, min_size=max(8, labels.size // 20000))
    labels = upsample(consecutive(labels), factor, shape)
    if p.style == "easy":
        mito = easy.mitochondria(rng, labels, polylines, vs, p.mitochondria)
        raw = easy.raw(rng, labels, mito, p.noise, p.blur)
    else:
        raw, bad = em_raw(rng, labels, polylines, vs, p)
        logger.debug("bad sections: %s", bad)
    logger.debug(
        "synthetic %s sample %s seed %d: %d objects in %.2fs",
        p.style, shape, seed, int(labels.max()), time.perf_counter() - t0,
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

    The format follows the extension (``.hdf``/``.h5``/``.hdf5`` → HDF5, ``.zarr`` → Zarr). In Zarr
    the raw is an OME-Zarr image and the labels its ``image-label`` ``volumes/raw/labels/neuron_ids``,
    which ``volumes/labels/neuron_ids`` redirects to (daskseg opens either name); ``offset`` is in nm (zero by default). Extra keyword arguments go to :func:`make_sample`.
    Returns the written ``(raw, labels)``.

    Args:
        overwrite (bool): replace the sample's datasets when ``path`` exists; without it an
            existing ``path`` raises :class:`SampleExistsError` before anything is written.
    """
    if not overwrite:
        refuse_existing([path])
    raw, labels = make_sample(shape, seed, voxel_size=voxel_size, **kwargs)
    zarr = container_format(path) == "zarr"
    write_array(path, RAW_DATASET, raw, voxel_size, offset=offset, chunk_shape=chunk_shape)
    labels_name = OME_LABELS_DATASET if zarr else LABELS_DATASET
    write_array(path, labels_name, labels, voxel_size, offset=offset, chunk_shape=chunk_shape, label=True)
    if zarr:
        add_redirect(path, LABELS_DATASET, OME_LABELS_DATASET)
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
