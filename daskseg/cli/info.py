"""``daskseg info PATH``: what a Zarr/HDF5 dataset holds, in world units (``--stats``: its statistics)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import numpy as np

from ..geometry import Coordinate, Roi
from ..io import Dataset, container_format, list_datasets, open_dataset, split_dataset_path
from ..io.ome import read_image, redirect_target


def _sections(ds: Dataset) -> Iterator[np.ndarray]:
    """The sections of a 3-D dataset, read a chunk's depth at a time."""
    vs = ds.voxel_size
    depth = max(1, int(ds.chunk_shape[0]))
    for z in range(0, ds.shape[0], depth):
        n = min(depth, ds.shape[0] - z)
        begin = ds.roi.begin + Coordinate((z * vs[0],) + (0,) * (len(vs) - 1))
        yield from ds.read(Roi(begin, Coordinate((n * vs[0],) + tuple(ds.roi.shape[1:]))))


def _echo_stats(ds: Dataset) -> None:
    from ..segment.stats import format_statistics, intensity_statistics, label_statistics

    if ds.num_channel_dims or len(ds.shape) != 3:
        click.echo(f"statistics:  none for {len(ds.shape)}-D data with {ds.num_channel_dims} channel axes")
        return
    if np.issubdtype(ds.dtype, np.integer) and ds.dtype != np.uint8:
        stats = label_statistics(_sections(ds), tuple(ds.voxel_size))
    else:
        stats = intensity_statistics(_sections(ds))
    click.echo(format_statistics(stats))


@click.command()
@click.argument("path")
@click.option("--stats", is_flag=True,
              help="Also compute statistics: for labels the calibre (per-object, per-section equivalent "
                   "diameter percentiles in nm), the boundary fraction and the fraction of voxels in "
                   "processes thinner than 200 nm; for raw (uint8, float) brightness and contrast per section.")
def info(path: str, stats: bool) -> None:
    """Show shape, voxel size, offset, ROI, chunks and dtype of a dataset.

    PATH is CONTAINER/DATASET, e.g. `daskseg info sample_A.zarr/volumes/raw`; a bare container lists
    its datasets (a redirect as `NAME -> TARGET`; with --stats, each one's statistics). Integer
    datasets other than uint8 count as labels (0 is background), the rest as raw. For an OME-Zarr
    image the numbers are its level 0's, followed by its resolution levels and labels.
    """
    if path.rstrip("/").lower().endswith((".zarr", ".n5", ".hdf", ".h5", ".hdf5")):
        zarr = container_format(path) == "zarr"
        for name in list_datasets(path, redirects=zarr):
            target = redirect_target(path, name) if zarr else None
            click.echo(f"{name} -> {target}" if target else name)
            if stats and not target:
                _echo_stats(open_dataset(path, name))
        return
    container, name = split_dataset_path(path)
    ds = open_dataset(container, name)
    click.echo(f"dataset:     {container}/{name}")
    if ds.array_name != ds.name:
        click.echo(f"array:       {container}/{ds.array_name}")
    click.echo(f"shape:       {ds.shape}")
    click.echo(f"dtype:       {ds.dtype}")
    click.echo(f"voxel size:  {tuple(ds.voxel_size)}")
    click.echo(f"offset:      {tuple(ds.roi.offset)}")
    click.echo(f"roi:         {ds.roi}")
    click.echo(f"chunks:      {ds.chunk_shape}")
    if ds.num_channel_dims:
        click.echo(f"channels:    {ds.channel_shape}")
    image = read_image(container, ds.array_name.rpartition("/")[0]) if container_format(container) == "zarr" else None
    if image is not None:
        kind = "image-label" if image.is_label else "image"
        click.echo(f"OME-Zarr:    {kind} {image.name} ({len(image.levels)} level(s))")
        for level in image.levels:
            click.echo(f"  {level.path}: voxel size {tuple(level.voxel_size)}, offset {tuple(level.offset)}")
        for label in image.labels:
            click.echo(f"  label:     {image.name}/labels/{label}")
    if stats:
        _echo_stats(ds)
