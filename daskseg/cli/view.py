"""``daskseg view PATH [PATH...]``: what a job wrote, aligned in world units, in neuroglancer or napari."""

from __future__ import annotations

import threading

import click


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--napari", "use_napari", is_flag=True, help="Open napari (when installed) instead of neuroglancer.")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address neuroglancer's server listens on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of neuroglancer's server (0: any free port).",
)
def view(paths: tuple[str, ...], use_napari: bool, bind: str, port: int) -> None:
    """Show datasets (raw, affinities, segmentations, ground truth) aligned in world units.

    PATHS are datasets (OUT.zarr/volumes/pred_affs) or containers (all their datasets). Labels open
    as segmentation layers, affinities as images with channels (RGB), raw as a grey image; every
    layer is placed by its voxel size and offset. By default a neuroglancer viewer is served on
    127.0.0.1 and its URL printed; it runs until Ctrl-C.

    Example: daskseg view data/sample_C.zarr/volumes/raw pred.zarr/volumes/pred_affs
    seg.zarr/volumes/segmentation
    """
    from ..view import layer_specs

    specs = layer_specs(list(paths))
    for spec in specs:
        click.echo(
            f"{spec.name}: {spec.kind}, voxel size {tuple(spec.voxel_size)}, offset {tuple(spec.offset)}", err=True
        )
    if use_napari:
        from ..view.napari_viewer import open_napari

        open_napari(specs)
        return
    from ..view.ng import open_viewer

    try:
        viewer = open_viewer(specs, bind_address=bind, port=port)
        click.echo("serving until Ctrl-C", err=True)
        click.echo(str(viewer))
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
