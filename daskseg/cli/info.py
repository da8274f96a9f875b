"""``daskseg info PATH``: what a Zarr/HDF5 dataset holds, in world units."""

from __future__ import annotations

import click

from ..io import list_datasets, open_dataset, split_dataset_path


@click.command()
@click.argument("path")
def info(path: str) -> None:
    """Show shape, voxel size, offset, ROI, chunks and dtype of a dataset.

    PATH is CONTAINER/DATASET, e.g. `daskseg info sample_A.zarr/volumes/raw`; a bare container lists
    its datasets.
    """
    if path.rstrip("/").lower().endswith((".zarr", ".n5", ".hdf", ".h5", ".hdf5")):
        for name in list_datasets(path):
            click.echo(name)
        return
    container, name = split_dataset_path(path)
    ds = open_dataset(container, name)
    click.echo(f"dataset:     {container}/{name}")
    click.echo(f"shape:       {ds.shape}")
    click.echo(f"dtype:       {ds.dtype}")
    click.echo(f"voxel size:  {tuple(ds.voxel_size)}")
    click.echo(f"offset:      {tuple(ds.roi.offset)}")
    click.echo(f"roi:         {ds.roi}")
    click.echo(f"chunks:      {ds.chunk_shape}")
    if ds.num_channel_dims:
        click.echo(f"channels:    {ds.channel_shape}")
