"""``daskseg synth``: write synthetic CREMI-like samples (the embedded default data)."""

from __future__ import annotations

import click

from ..synth import DATA_PRESETS, DEFAULT_PRESET, PRESETS, write_cremi_samples


def _shape(value: str):
    if value in PRESETS:
        return value
    try:
        shape = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"use a preset ({', '.join(PRESETS)}) or z,y,x voxels, not {value!r}") from None
    if len(shape) != 3:
        raise click.BadParameter(f"a shape has three values z,y,x, got {value!r}")
    return shape


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--shape", default="default", show_default=True,
              help=f"Voxels z,y,x or a named shape ({', '.join(f'{k}={v}' for k, v in PRESETS.items())}).")
@click.option("--preset", type=click.Choice(list(DATA_PRESETS)), default=DEFAULT_PRESET, show_default=True,
              help="How the data looks: easy (broad processes, even membranes), cremi-like (thin axons, a few "
                   "dendrites, uneven membranes, organelles, section defects) or hard (more of all that).")
@click.option("--names", default="A,B,C", show_default=True, help="Sample names; one file each.")
@click.option("--seed", default=0, show_default=True, help="Seed of the first sample (the next get seed+1, ...).")
@click.option("--format", "fmt", type=click.Choice(["hdf", "zarr"]), default="zarr", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace samples that exist already (default: refuse, write nothing).")
def synth(directory: str, shape: str, preset: str, names: str, seed: int, fmt: str, overwrite: bool) -> None:
    """Write synthetic CREMI-like samples: volumes/raw (uint8) and volumes/labels/neuron_ids (uint64)
    at voxel size (40, 4, 4) nm, neuron-like processes with dark membranes.

    Example: `daskseg synth data/ --shape small --format hdf` writes data/sample_A.hdf, ... C.hdf;
    `--preset easy` the first, easier generator's data.
    Existing samples are left alone (the command fails, naming them) unless --overwrite is given.
    """
    paths = write_cremi_samples(
        directory, _shape(shape), names=tuple(n for n in names.split(",") if n), seed=seed, extension=f".{fmt}",
        overwrite=overwrite, preset=preset,
    )
    for path in paths:
        click.echo(path)
