"""``daskseg predict``: blockwise prediction of a large volume on a Dask cluster, resumable."""

from __future__ import annotations

import importlib
import os

import click

from .common import cluster_client, parse_block_timeout, parse_max_in_flight, shape_option_value
from .pyramid import pyramid_flag, run_pyramids


def _blocks_per_task(ctx, param, value: str) -> int | str:
    """'auto', or a whole number of at least 1."""
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise click.BadParameter(f"'auto' or a whole number of at least 1, got {value!r}")
    return number


def _factor(ctx, param, value: str | None) -> float | None:
    """A positive number, or a fraction such as 1/255."""
    if value is None:
        return None
    try:
        number, _, denominator = value.partition("/")
        factor = float(number) / (float(denominator) if denominator else 1.0)
    except (ValueError, ZeroDivisionError):
        factor = float("nan")
    if not factor > 0 or factor == float("inf"):
        raise click.BadParameter(f"a positive number or a fraction such as 1/255, got {value!r}")
    return factor


def _load_processor(spec: str):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"--processor must be MODULE:NAME, got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise click.BadParameter(f"cannot load processor {spec!r}: {e}") from e
    return obj() if isinstance(obj, type) else obj


@click.command()
@click.option("--network", type=click.Path(exists=True, dir_okay=False),
              help="Network config JSON (daskseg net create).")
@click.option("--checkpoint", help="Trained weights: a checkpoint file, or a basename (its newest checkpoint).")
@click.option("--raw", required=True, help="Input dataset, e.g. IN.zarr/volumes/raw or IN.hdf/volumes/raw.")
@click.option("--out", required=True, help="Output dataset (Zarr), e.g. OUT.zarr/volumes/pred_affs.")
@click.option("--roi", default=None,
              help="Output ROI in world units, begin:end per axis, e.g. 400:4400,40:1240,40:1240. "
              "Default: the largest the network can fill (the raw ROI shrunk by half the network "
              "context, input - output, on each side).")
@click.option("--block-shape", default=None,
              help="Output voxels per block, e.g. 92,220,220 (a multiple of the network output and of the "
              "output chunks). Default: about 2M voxels.")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler (tcp://host:8786).")
@click.option("--workers", "n_workers", type=click.IntRange(min=1), default=None,
              help="Workers of a new LocalCluster when no scheduler is given (default: 1 for a network, whose "
              "forward uses all cores; one per core for a --processor).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Skip blocks a previous run of the same layout finished; --no-resume recomputes every block.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output that does not fit this prediction.")
@click.option("--dtype", type=click.Choice(["float32", "uint8"]), default="float32", show_default=True,
              help="Output dtype; uint8 stores round(255 * value).")
@click.option("--voxel-size", default=None, help="Voxel size of an input without metadata, e.g. 40,4,4.")
@click.option("--normalize-factor", default=None, callback=_factor,
              help="Multiply raw intensities by this to map them to [0, 1], e.g. 1/127 for int8 "
              "(default as gp.Normalize: uint8 / 255, uint16 / 65535, floats as they are).")
@click.option("--max-in-flight", default=None, callback=parse_max_in_flight,
              help="Blocks on the cluster at once: a number, or Nx worker threads (default 2x).")
@click.option("--retries", type=click.IntRange(min=0), default=None, help="Extra tries of a failed block (default 2).")
@click.option("--block-timeout", default="config", callback=parse_block_timeout,
              help="Time limit of one try of a block, e.g. '30 minutes' (0: none; default 30 minutes).")
@click.option("--blocks-per-task", default="auto", show_default=True, callback=_blocks_per_task,
              help="Blocks per Dask task: a number, or 'auto' (cheap blocks packed into ~0.5 s tasks).")
@click.option("--processor", "processor_spec", default=None,
              help="MODULE:NAME of a BlockProcessor to run instead of a network.")
@click.option("--trust-pickle", is_flag=True,
              help="Accept a pickled checkpoint (gunpowder's JAX format). Pickles can run code: trusted files only.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@pyramid_flag
def predict(
    network, checkpoint, raw, out, roi, block_shape, scheduler, n_workers, resume, overwrite, dtype, voxel_size,
    normalize_factor, max_in_flight, retries, block_timeout, blocks_per_task, processor_spec, trust_pickle,
    progress, with_pyramid,
) -> None:
    """Predict OUT from RAW block by block on a Dask cluster.

    Blocks are aligned with the output's chunks; each reads its input grown by the network context
    and writes only its valid output. Finished blocks are recorded, so a run that was interrupted
    (or had failed blocks) continues where it stopped when started again.

    Example: daskseg predict --network nets/test_net_config.json --checkpoint train_net_checkpoint_10000
    --raw sample_A.zarr/volumes/raw --out pred.zarr/volumes/pred_affs

    On a cluster: start `dask scheduler` and GPU workers with `dask worker ADDRESS --nthreads 1
    --resources GPU=1`, then pass --scheduler ADDRESS; prediction tasks then ask for a GPU each.
    """
    from ..blockwise import BlocksFailedError, Runner
    from ..blockwise import predict as predict_blockwise
    from ..blockwise.outputs import open_input
    from ..errors import MissingVoxelSizeError

    processor = _load_processor(processor_spec) if processor_spec else None
    if processor is None and (network is None or checkpoint is None):
        raise click.UsageError("give --network and --checkpoint (or --processor)")
    timeout = block_timeout
    # wrong inputs, configs or checkpoints fail here, before a cluster starts
    if processor is None:
        from ..blockwise.network import NetworkProcessor

        processor = NetworkProcessor(network, checkpoint, normalize_factor=normalize_factor, allow_pickle=trust_pickle)
    elif normalize_factor is not None:
        raise click.UsageError("--normalize-factor applies to --network only; a --processor normalises itself")
    try:
        raw_ds = open_input(raw, shape_option_value(voxel_size, "--voxel-size"))
    except MissingVoxelSizeError:
        raise click.UsageError(
            f"{raw} has no voxel size: neither 'resolution'/'voxel_size' attributes nor OME-Zarr metadata were found; "
            f"give it with --voxel-size, e.g. --voxel-size 40,4,4"
        ) from None
    processor.check_input(raw_ds)
    if n_workers is None and processor.multithreaded:
        n_workers = 1  # a network's forward pass uses every core of its worker
    with cluster_client(scheduler, n_workers) as client:
        try:
            result = predict_blockwise(
                raw=raw,
                out=out,
                roi="largest" if roi is None else roi,
                block_shape=shape_option_value(block_shape, "--block-shape"),
                processor=processor,
                client=client,
                resume=resume,
                overwrite=overwrite,
                dtype=dtype,
                raw_voxel_size=shape_option_value(voxel_size, "--voxel-size"),
                max_in_flight=max_in_flight,
                retries=retries,
                block_timeout=timeout,
                blocks_per_task=blocks_per_task,
                progress=progress,
            )
            report(result)
            if with_pyramid:
                with Runner(client, max_in_flight=max_in_flight, retries=retries, block_timeout=timeout,
                            progress=progress) as runner:
                    run_pyramids([os.path.abspath(out)], runner)
        except BlocksFailedError as e:
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            click.echo("interrupted: finished blocks are recorded; run the same command again to continue", err=True)
            raise SystemExit(130) from None


def report(result) -> None:
    """One line on what ``predict`` did."""
    click.echo(
        f"wrote {result.output} over {result.roi}: {result.processed} blocks of {tuple(result.block_shape)} voxels "
        f"({result.tasks} tasks) in {result.seconds:.1f} s ({result.voxels_per_second:,.0f} voxels/s)"
        + (f", {result.skipped} done before" if result.skipped else "")
    )
