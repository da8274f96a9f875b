"""Inputs and outputs of blockwise jobs: opening inputs, creating or reopening outputs safely.

Every blockwise job (``predict``, the stages of ``segment``) writes Zarr outputs through
``open_or_create_output``, which refuses what would lose data: an output that is, contains or lies
inside an input (``check_output_apart``), an unwritable location, an existing output of another
shape unless asked to overwrite.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import AlignmentError, BlockwiseError, DatasetError, GeometryError, OutputOverlapsInputError
from ..geometry import Coordinate, Roi
from ..io import Dataset, create_dataset, open_dataset, split_dataset_path
from ..io.dataset import container_format
from .grid import BlockGrid, check_alignment


def parse_roi(roi: Roi | str | Sequence | None, dims: int) -> Roi | None:
    """A ``Roi`` from a ``Roi``, an ``(offset, shape)`` pair, or a ``'b:e,b:e,b:e'`` string (world units)."""
    if roi is None or isinstance(roi, Roi):
        return roi
    if isinstance(roi, str):
        parts = [p.strip() for p in roi.strip().strip("[]").split(",") if p.strip()]
        try:
            bounds = [tuple(int(v) for v in p.split(":")) for p in parts]
        except ValueError:
            bounds = []
        if len(bounds) != dims or any(len(b) != 2 or b[1] < b[0] for b in bounds):
            raise GeometryError(
                f"cannot read ROI {roi!r}: give begin:end per dimension in world units, e.g. "
                f"'{','.join(['0:400'] * dims)}' ({dims} dimensions)"
            )
        return Roi([b for b, _ in bounds], [e - b for b, e in bounds])
    offset, shape = list(roi)
    return Roi(offset, shape)


def open_input(raw: str | Dataset | tuple[str, str], voxel_size: Sequence[int] | None = None) -> Dataset:
    """The input dataset from ``'IN.zarr/volumes/raw'``, ``(container, name)`` or a ``Dataset``."""
    if isinstance(raw, Dataset):
        return raw
    container, name = split_dataset_path(raw) if isinstance(raw, (str, os.PathLike)) else raw
    return open_dataset(container, name, mode="r", voxel_size=voxel_size)


def write_unit(out: Dataset) -> Coordinate:
    """The spatial shape (voxels) of the output's shards, or chunks when unsharded."""
    unit = out.shard_shape or tuple(out.chunk_shape)
    channels = out.num_channel_dims
    if tuple(unit[:channels]) != tuple(out.channel_shape):
        raise BlockwiseError(
            f"{out} is chunked {tuple(unit)} over its channel dimensions {out.channel_shape}; blockwise writes "
            f"need every chunk to hold all channels"
        )
    return Coordinate(unit[channels:])


def open_or_create_output(
    out: str | tuple[str, str],
    roi: Roi,
    voxel_size: Coordinate,
    channels: tuple[int, ...],
    dtype: np.dtype,
    chunk_shape: Sequence[int] | None,
    compression: str | None,
    overwrite: bool,
    job: str = "prediction",
    label: bool = False,
) -> tuple[Dataset, bool]:
    """The output dataset of a blockwise ``job``: reopened if it exists and fits, else created (an
    OME-Zarr image group; ``label`` makes it an ``image-label``).

    Returns ``(dataset, created)``. Refuses an HDF5 container (parallel writers cannot share one),
    an unwritable location, and an existing output that does not fit unless ``overwrite``.
    """
    container, name = split_dataset_path(out) if isinstance(out, (str, os.PathLike)) else out
    container = str(container)
    if container_format(container) != "zarr":
        raise DatasetError(
            f"blockwise {job} writes Zarr (.zarr) outputs, not {container!r}: parallel writers cannot share an "
            f"HDF5 file. Write to a .zarr container (HDF5 input is fine), or use the in-process Hdf5Write pipeline."
        )
    array_dir = os.path.join(container, name.strip("/"))
    exists = os.path.exists(os.path.join(array_dir, "zarr.json")) or os.path.exists(os.path.join(array_dir, ".zarray"))
    probe = array_dir if exists else nearest_existing(array_dir)
    if not os.path.isdir(probe):
        raise DatasetError(
            f"cannot write the output {container}/{name}: {probe!r} is a file, not a directory; choose an "
            f"output path whose parent directories exist or can be created"
        )
    if not os.access(probe, os.W_OK):
        raise DatasetError(
            f"cannot write the output {container}/{name}: {probe!r} is not writable (read-only file system or "
            f"missing permission); choose an output path you can write to"
        )
    if exists and not overwrite:
        ds = open_dataset(container, name, mode="r+")
        problems = []
        if ds.voxel_size != voxel_size:
            problems.append(f"voxel size {tuple(ds.voxel_size)} (need {tuple(voxel_size)})")
        if tuple(ds.channel_shape) != channels:
            problems.append(f"channels {ds.channel_shape} (need {channels})")
        if ds.dtype != dtype:
            problems.append(f"dtype {ds.dtype} (need {dtype})")
        if not ds.roi.contains(roi):
            problems.append(f"ROI {ds.roi} (need one containing {roi})")
        if problems:
            raise DatasetError(
                f"the output {container}/{name} exists but does not fit this {job}: " + ", ".join(problems)
                + ". Remove it, choose another output, or pass overwrite=True (--overwrite) to replace it."
            )
        return ds, False
    ds = create_dataset(
        container,
        name,
        roi,
        voxel_size,
        dtype,
        channel_shape=channels,
        chunk_shape=chunk_shape,
        compression=compression,
        overwrite=True,
        label=label,
    )
    return ds, True


def dataset_location(path: str | Dataset | tuple[str, str]) -> str:
    """The absolute, resolved path of a dataset: its container's real path joined with its name."""
    if isinstance(path, Dataset):
        container, name = path.container, path.name
    elif isinstance(path, (str, os.PathLike)):
        container, name = split_dataset_path(str(path))
    else:
        container, name = path
    parts = [p for p in str(name).split("/") if p]
    return os.path.join(os.path.realpath(str(container)), *parts)


def check_output_apart(out: str | tuple[str, str], inputs: dict[str, Any]) -> None:
    """Refuse an output that is, contains, or lies inside one of ``inputs`` (name -> dataset path).

    Raises:
        OutputOverlapsInputError: naming the output and the input it overlaps.
    """
    out_loc = dataset_location(out)
    for what, path in inputs.items():
        in_loc = dataset_location(path)
        if os.path.commonpath([out_loc, in_loc]) in (out_loc, in_loc):
            relation = "is" if out_loc == in_loc else ("contains" if len(out_loc) < len(in_loc) else "lies inside")
            raise OutputOverlapsInputError(
                f"the output {out_loc} {relation} the input {what} {in_loc}: writing it (or --overwrite) would "
                f"destroy the input. Choose an output outside the input."
            )


def nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def describe(ds: Dataset) -> dict:
    """What a layout records of a dataset: dtype, shape and ROI."""
    return {"dtype": str(ds.dtype), "shape": list(ds.shape), "roi": [list(ds.roi.offset), list(ds.roi.shape)]}


def aligned(grid: BlockGrid, roi: Roi, write_unit: Coordinate) -> bool:
    """Whether every block of ``grid`` covers whole write units of a dataset over ``roi``."""
    try:
        check_alignment(grid, roi, write_unit)
    except AlignmentError:
        return False
    return True
