"""``daskseg evaluate``: VOI and adapted Rand of a segmentation against ground truth, blockwise on Dask."""

from __future__ import annotations

import json

import click

from .common import cluster_client, runner_options, scheduler_option, shape_option_value, workers_option


@click.command()
@click.option("--seg", required=True, help="Segmentation, e.g. SEG.zarr/volumes/segmentation (or .hdf).")
@click.option("--gt", required=True, help="Ground truth, e.g. sample_A.zarr/volumes/labels/neuron_ids; 0 is background.")
@click.option("--mask", default=None, help="Evaluate only where this dataset is nonzero.")
@click.option("--block-shape", default=None,
              help="Voxels per block, e.g. 64,256,256 (default about 2M voxels, whole chunks of --seg).")
@scheduler_option
@workers_option
@click.option("--work-dir", default=None, type=click.Path(file_okay=False),
              help="Where the per-block tables go, reachable by every worker (default: a hidden directory next "
              "to the --seg container, removed when the scores are in).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Reuse the tables of an interrupted run of the same evaluation.")
@click.option("--keep-tables", is_flag=True, help="Keep the work directory (tables and done record).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (scores, ROI, blocks) instead of text.")
@runner_options
def evaluate(
    seg, gt, mask, block_shape, scheduler, workers, work_dir, resume, keep_tables, as_json, max_in_flight, retries,
    block_timeout, progress,
) -> None:
    """VOI split/merge and adapted Rand (CREMI's definitions) of SEG against GT, block by block.

    Each block's contingency table is counted on the cluster and the tables are summed there, so a
    volume of any size is scored exactly as if it were in memory. Ground-truth background (0) is
    ignored; segment 0 counts as unsegmented, as in CREMI. Both volumes must share a voxel size;
    their ROIs' intersection (and the mask's) is evaluated.

    Example: daskseg evaluate --seg seg.zarr/volumes/segmentation --gt sample_A.zarr/volumes/labels/neuron_ids
    """
    import os

    from ..blockwise import BlocksFailedError, Runner, plan_evaluate, run_evaluate

    # every input is opened and checked here, before a cluster starts; paths become absolute
    block = shape_option_value(block_shape, "--block-shape")
    task = plan_evaluate(seg, gt, mask, block, work_dir=work_dir, resume=resume)
    with cluster_client(scheduler, workers) as client, Runner(
        client, max_in_flight=max_in_flight, retries=retries, block_timeout=block_timeout, progress=progress
    ) as runner:
        try:
            result = run_evaluate(task, runner, keep_tables=keep_tables)
        except BlocksFailedError as e:
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            click.echo("interrupted: counted blocks are recorded; run the same command again to continue", err=True)
            raise SystemExit(130) from None
    seg_ds, gt_ds, mask_ds = task.args[:3]
    if as_json:
        inputs = {"seg": f"{seg_ds.container}/{seg_ds.name}", "gt": f"{gt_ds.container}/{gt_ds.name}",
                  "mask": None if mask_ds is None else f"{mask_ds.container}/{mask_ds.name}"}
        click.echo(json.dumps({**result.as_dict(), **inputs}))
        return
    click.echo(f"VOI split     {result.voi_split:.6f}")
    click.echo(f"VOI merge     {result.voi_merge:.6f}")
    click.echo(f"VOI total     {result.voi:.6f}")
    click.echo(f"adapted Rand  {result.adapted_rand:.6f}")
    click.echo(
        f"over ROI {result.roi} ({result.voxels:,} voxels{' in the mask' if mask_ds is not None else ''}): "
        f"{result.num_blocks} blocks of {tuple(result.block_shape)} voxels"
        + (f" ({result.skipped} counted before)" if result.skipped else "")
        + f", {result.pairs:,} (segment, object) pairs, {result.seconds:.1f} s"
        + (f"; tables kept in {os.path.dirname(task.args[3])}" if keep_tables else ""),
        err=True,
    )
