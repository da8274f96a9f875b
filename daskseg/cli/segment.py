"""``daskseg segment``: affinities to a segmentation of any size, blockwise on a Dask cluster."""

from __future__ import annotations

import json
import os

import click

from .common import cluster_client, runner_options, scheduler_option, shape_option_value, workers_option
from .pyramid import pyramid_flag, run_pyramids


def _thresholds(ctx, param, value: str) -> tuple[float, ...]:
    try:
        thresholds = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        thresholds = ()
    if not thresholds or any(not 0.0 <= t <= 1.0 for t in thresholds):
        raise click.BadParameter(f"numbers in [0, 1] separated by commas, e.g. 0.3,0.5,0.7; got {value!r}")
    return thresholds


def _neighborhood(ctx, param, value: str | None) -> list[list[int]] | None:
    if value is None:
        return None
    try:
        offsets = json.loads(value)
        ok = isinstance(offsets, list) and offsets and all(
            isinstance(o, list) and o and all(isinstance(v, int) for v in o) for o in offsets)
    except json.JSONDecodeError:
        ok = False
    if not ok:
        raise click.BadParameter(f"a JSON list of offsets, e.g. [[-1,0,0],[0,-1,0],[0,0,-1],[0,-9,0]]; got {value!r}")
    return offsets


def _absolute(path: str | None) -> str | None:
    """A dataset path resolved on the client (workers may run in another directory)."""
    return None if path is None else os.path.abspath(path)


@click.command()
@click.option("--affs", required=True, help="Affinities, e.g. PRED.zarr/volumes/pred_affs (float in [0, 1] or "
              "uint8 from `daskseg predict --dtype uint8`).")
@click.option("--out", required=True, help="Segmentation (Zarr, uint64), e.g. SEG.zarr/volumes/segmentation; "
              "with several thresholds, OUT_<threshold> each.")
@click.option("--thresholds", default="0.5", show_default=True, callback=_thresholds,
              help="Merge thresholds on the mean affinity of a contact (cc: on the affinity), comma-separated; "
              "all in one pass.")
@click.option("--method", type=click.Choice(["watershed", "mws", "cc"]), default="watershed", show_default=True,
              help="watershed: seeded watershed fragments merged by mean affinity; mws: mutex watershed on every "
              "channel (long-range too) per block with context, pieces cut by block faces merged by mean affinity; "
              "cc: connected components of the edges above each threshold (exact).")
@click.option("--neighborhood", default=None, callback=_neighborhood,
              help="Affinity offsets as JSON, one per channel (default: the affinities' attribute "
              "daskseg.affinity_neighborhood, written by `daskseg predict`, else nearest neighbours).")
@click.option("--mws-bias", type=click.FloatRange(0, 1), default=None,
              help="mws: nearest-neighbour affinities above this attract, below repel (default 0.5).")
@click.option("--mws-long-range-bias", type=click.FloatRange(0, 1), default=None,
              help="mws: the same for the long-range affinities (default 0.5; higher splits more).")
@click.option("--mws-face-edges", type=click.Choice(["all", "nearest"]), default=None,
              help="mws: the affinity channels whose mean re-joins pieces cut apart by block faces: all (default: "
              "long-range edges keep objects apart across faces too) or the nearest-neighbour ones.")
@click.option("--agglomeration", type=click.Choice(["hierarchical", "static"]), default="hierarchical",
              show_default=True,
              help="watershed: merge the best pair first and re-average contacts (as waterz), or every pair whose "
              "own mean contact is above the threshold.")
@click.option("--mask", default=None, help="Mask dataset: voxels where it is 0 get label 0.")
@click.option("--roi", default=None, help="ROI to segment in world units, begin:end per axis (default: all).")
@click.option("--block-shape", default=None, help="Voxels per block, e.g. 32,256,256 (default: about 2M voxels).")
@click.option("--context", default=None,
              help="World units each watershed block reads around itself, per axis (default: 8 voxels in-plane).")
@click.option("--fragment-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Affinity above which an edge links a voxel into its fragment (watershed).")
@click.option("--fragments", default=None, help="Fragments dataset (default: 'fragments' beside --out).")
@click.option("--graph", "graph_dir", default=None,
              help="Directory of the region graph tables (default: OUT container with .graph instead of .zarr).")
@scheduler_option
@workers_option
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Keep the blocks of each stage an earlier run of the same layout finished.")
@click.option("--overwrite", is_flag=True, help="Replace existing fragments, graph and segmentations.")
@click.option("--consecutive", is_flag=True,
              help="Segment ids 1..n (ordered by each segment's smallest fragment id) instead of that fragment id.")
@pyramid_flag
@runner_options
def segment(
    affs, out, thresholds, method, neighborhood, mws_bias, mws_long_range_bias, mws_face_edges, agglomeration, mask, roi,
    block_shape, context, fragment_threshold, fragments, graph_dir, scheduler, workers, resume, overwrite, consecutive,
    with_pyramid, max_in_flight, retries, block_timeout, progress,
) -> None:
    """Segment AFFS into OUT: fragments, region graph, agglomeration and relabelling, block by block.

    Each stage is a resumable blockwise job (dashboard tasks fragments-block-…, edges-block-…,
    agglomerate-L<level>-block-…, relabel-block-…): run the same command again after an
    interruption. The agglomeration combines blocks up a reduction tree, so no task holds the whole
    graph, and gives exactly the partition one process with the whole graph would (for the same
    fragments: daskseg.segment.agglomerate, or connected_components for --method cc).

    Example: daskseg segment --affs pred.zarr/volumes/pred_affs --out seg.zarr/volumes/segmentation
    --thresholds 0.3,0.5,0.7
    """
    from ..blockwise import BlocksFailedError, Runner
    from ..blockwise.segmentation import plan_segment, run_segment

    watershed = {"threshold": fragment_threshold} if method == "watershed" else None
    mws = {k: v for k, v in (("bias", mws_bias), ("long_range_bias", mws_long_range_bias),
                             ("face_edges", mws_face_edges)) if v is not None}
    if mws and method != "mws":
        raise click.BadParameter("apply only to --method mws", param_hint="--mws-*")
    # bad input fails here, before a cluster starts
    tasks, result = plan_segment(
        os.path.abspath(affs), os.path.abspath(out), thresholds, method=method, agglomeration=agglomeration, mask=_absolute(mask), roi=roi,
        block_shape=shape_option_value(block_shape, "--block-shape"), context=shape_option_value(context, "--context"),
        fragments=_absolute(fragments), graph_dir=_absolute(graph_dir), watershed=watershed, resume=resume,
        neighborhood=neighborhood, mws=mws or None,
        overwrite=overwrite, consecutive=consecutive,
    )
    with cluster_client(scheduler, workers) as client, Runner(
        client, max_in_flight=max_in_flight, retries=retries, block_timeout=block_timeout, progress=progress
    ) as runner:
        try:
            run_segment(tasks, result, runner)
            if with_pyramid:
                run_pyramids(list(result.outputs.values()), runner)
        except BlocksFailedError as e:
            raise click.ClickException(str(e)) from e
        except KeyboardInterrupt:
            click.echo("interrupted: finished blocks are recorded; run the same command again to continue", err=True)
            raise SystemExit(130) from None
    done = sum(s.processed for s in result.stages)
    skipped = sum(s.skipped for s in result.stages)
    click.echo(
        f"wrote {', '.join(result.outputs.values())} ({len(tasks)} stages over {result.grid_shape} blocks, "
        f"{done} block tasks in {result.seconds:.1f} s" + (f", {skipped} done before" if skipped else "") + ")"
    )
