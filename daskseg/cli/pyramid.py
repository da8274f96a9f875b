"""``daskseg pyramid PATH``: the coarser resolution levels of an OME-Zarr image, blockwise on Dask."""

from __future__ import annotations

import click

from .common import cluster_client, runner_options, scheduler_option, shape_option_value, workers_option


def parse_factors(ctx, param, values: tuple[str, ...]) -> list[tuple[int, ...]]:
    """Click callback: each ``--factors`` value as a tuple of ints (``1,2,2``)."""
    return [shape_option_value(v, "--factors") or () for v in values]


def pyramid_options(function):
    """``--factors``, ``--levels`` and ``--method``: how the levels are made (``pyramid``, ``--pyramid``)."""
    for option in reversed(
        [
            click.option(
                "--factors",
                multiple=True,
                callback=parse_factors,
                metavar="F,F,F",
                help="Downsampling factor per axis from one level to the next, e.g. 1,2,2; once: every "
                "level, repeated: one per level. Default: 2 in-plane until about isotropic, then 2 in all "
                "axes (40x4x4 -> 40x8x8 -> ... -> 40x32x32 -> 80x64x64).",
            ),
            click.option(
                "--levels",
                "max_levels",
                type=click.IntRange(min=1),
                default=None,
                help="At most this many levels below level 0 (default: until a level fits into one chunk).",
            ),
            click.option(
                "--method",
                type=click.Choice(["auto", "mean", "mode"]),
                default="auto",
                show_default=True,
                help="mean (intensities, affinities) or mode (the most frequent non-zero label); auto: mode "
                "for labels.",
            ),
        ]
    ):
        function = option(function)
    return function


def run_pyramids(images: list[str], runner) -> None:
    """The default pyramid of each image (``--pyramid`` of ``predict`` and ``segment``) on ``runner``,
    one line printed per image."""
    from ..blockwise import BlocksFailedError
    from ..blockwise.pyramid import plan_pyramid, run_pyramid

    planned = [plan_pyramid(image) for image in images]
    for tasks, result in planned:
        try:
            run_pyramid(tasks, result, runner)
        except BlocksFailedError as e:
            raise click.ClickException(str(e)) from e
        levels = ", ".join(
            f"{lv['name'].rpartition('/')[2]} {tuple(lv['voxel_size'])}" for lv in result.levels
            if lv["image"] == result.image
        )
        click.echo(f"pyramid of {result.image} ({result.method}): {levels or 'no levels needed (one chunk)'}")


pyramid_flag = click.option(
    "--pyramid",
    "with_pyramid",
    is_flag=True,
    help="Also write the output's coarser resolution levels (as `daskseg pyramid` with its defaults).",
)


@click.command()
@click.argument("path")
@pyramid_options
@click.option("--block-shape", default=None, help="Voxels of a level per block (multiple of its chunks).")
@scheduler_option
@workers_option
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Keep the blocks an earlier run of the same levels finished.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing levels (e.g. made with other factors).")
@runner_options
def pyramid(
    path,
    factors,
    max_levels,
    method,
    block_shape,
    scheduler,
    workers,
    resume,
    overwrite,
    max_in_flight,
    retries,
    block_timeout,
    progress,
) -> None:
    """Write the coarser resolution levels s1, s2, ... of the OME-Zarr image PATH.

    Each level is made from the one before, blockwise on the cluster (pyramid-s<k>-block-… tasks),
    resumably, and listed in the image's multiscales metadata, so neuroglancer and napari load the
    level that fits the zoom. Intensities and affinities are averaged, labels take the most frequent
    non-zero label.

    Example: daskseg pyramid pred.zarr/volumes/pred_affs
    """
    import os

    from ..blockwise import BlocksFailedError, Runner
    from ..blockwise.pyramid import plan_pyramid, run_pyramid

    tasks, result = plan_pyramid(
        os.path.abspath(path),
        factors=factors or None,
        max_levels=max_levels,
        method=method,
        block_shape=shape_option_value(block_shape, "--block-shape"),
        resume=resume,
        overwrite=overwrite,
    )
    with (
        cluster_client(scheduler, workers) as client,
        Runner(
            client, max_in_flight=max_in_flight, retries=retries, block_timeout=block_timeout, progress=progress
        ) as runner,
    ):
        try:
            run_pyramid(tasks, result, runner)
        except BlocksFailedError as e:
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            click.echo("interrupted: finished blocks are recorded; run the same command again to continue", err=True)
            raise SystemExit(130) from None
    for level, stage in zip(result.levels, result.stages):
        click.echo(
            f"{level['name']}: voxel size {tuple(level['voxel_size'])}, offset {tuple(level['offset'])}, shape "
            f"{tuple(level['shape'])} ({stage.processed} blocks"
            + (f", {stage.skipped} done before)" if stage.skipped else ")")
        )
    if not result.levels:
        click.echo(f"{result.image} fits into one chunk: no levels needed (give --factors and --levels to force some)")
