"""``predict``: run a network (or any block processor) over a large volume on a Dask cluster.

The output ROI is cut into blocks aligned with the output array's chunks (or shards).
``plan_predict`` describes the job as a ``BlockwiseTask`` (pure: no Dask) and the ``Runner`` runs
it: each block (``predict_block``) reads its ROI grown by the network's context from the input,
runs the network (loaded and compiled once per worker process) and writes only its valid output.
Tasks (one block each, or several when blocks are cheap) are submitted lazily, a bounded number at
a time; each finished block is recorded durably after its data was written, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..cluster import ClientLike
from ..errors import BlockCancelledError, BlockwiseError, GeometryError
from ..geometry import Coordinate, Roi
from ..io import Dataset
from .done import lock_existing_record
from .grid import Block, BlockGrid, check_alignment
from .outputs import (
    aligned,
    check_output_apart,
    dataset_location,
    describe,
    open_input,
    open_or_create_output,
    parse_roi,
    write_unit,
)
from .processor import BlockProcessor
from .runner import BlockwiseTask, Runner, block_task

logger = logging.getLogger(__name__)

#: Default number of output voxels per block when no block shape is given.
DEFAULT_BLOCK_VOXELS = 2**21
OUTPUT_DTYPES = ("float32", "uint8")


@dataclass
class PredictResult:
    """What ``predict`` did.

    Attributes:
        output: the output dataset (``CONTAINER/NAME``).
        roi: the output ROI written, in world units.
        block_shape: the block shape in voxels.
        grid_shape: blocks per dimension.
        num_blocks: blocks of the grid.
        skipped: blocks found done by an earlier run (and not redone).
        processed: blocks done by this run.
        seconds: wall-clock time of the block loop.
        voxels_per_second: output voxels written per second by this run.
        dashboard_link: the Dask dashboard of the cluster used (None without one).
        task_seconds: seconds the workers spent reading, processing and writing, summed over blocks.
        tasks: Dask tasks that ran the processed blocks (fewer when cheap blocks were grouped).
    """

    output: str
    roi: Roi
    block_shape: Coordinate
    grid_shape: tuple[int, ...]
    num_blocks: int
    skipped: int
    processed: int
    seconds: float
    voxels_per_second: float
    dashboard_link: str | None
    task_seconds: dict[str, float] = field(default_factory=dict)
    tasks: int = 0


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------
def to_output_dtype(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert processor output to the output dtype; ``uint8`` scales [0, 1] to 0..255 (rounded)."""
    if dtype == np.uint8 and data.dtype != np.uint8:
        scaled = np.nan_to_num(data.astype(np.float32, copy=False), nan=0.0) * np.float32(255)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return data.astype(dtype, copy=False)


def predict_block(block: Block, processor: BlockProcessor, raw: Dataset, out: Dataset, *, cancel=None) -> dict:
    """Read, process and write one block (the per-block function of ``predict``, on a worker).

    Returns seconds spent reading, processing and writing. Raises ``BlockCancelledError`` without
    writing if ``cancel`` was set (its time limit passed) before the write.
    """
    t0 = time.perf_counter()
    data = raw.read(block.read_roi)
    t1 = time.perf_counter()
    result = processor(data)
    expected = tuple(out.channel_shape) + tuple(block.write_roi.shape / out.voxel_size)
    if tuple(result.shape) != expected:
        raise BlockwiseError(
            f"{processor!r} returned shape {tuple(result.shape)} for block {block.index} (input {block.read_roi}, "
            f"shape {data.shape}); the output {out} expects {expected} for ROI {block.write_roi}"
        )
    result = to_output_dtype(result, out.dtype)
    t2 = time.perf_counter()
    if cancel is not None and cancel.is_set():
        raise BlockCancelledError(f"block {block.index} was stopped (time limit) before writing")
    out.write(block.write_roi, result)
    return {"read": t1 - t0, "process": t2 - t1, "write": time.perf_counter() - t2}


def run_task(item, grid, processor, raw, out, run, time_limit):
    """``predict``'s blocks ``item`` as one Dask task would run them, under ``time_limit`` s per block."""
    return block_task(item, grid, predict_block, (processor, raw, out), run, time_limit)


# --------------------------------------------------------------------------------------------
# set-up helpers
# --------------------------------------------------------------------------------------------
def default_output_roi(raw_roi: Roi, context_neg: Coordinate, context_pos: Coordinate) -> Roi:
    """The tutorial's ``raw_roi.grow(-context, -context)`` with ``context = input - output`` (world units)."""
    context = context_neg + context_pos
    if any(s - 2 * c <= 0 for s, c in zip(raw_roi.shape, context)):
        raise GeometryError(
            f"the raw data {raw_roi} is too small for the default output ROI (the raw ROI shrunk by the network "
            f"context {tuple(context)} on each side, as in the tutorial); give an output ROI inside "
            f"{raw_roi.grow(-context_neg, -context_pos)}"
        )
    return raw_roi.grow(-context, -context)


def default_block_shape(
    unit: Sequence[int], output_shape: Sequence[int], voxel_size: Sequence[int], target: int = DEFAULT_BLOCK_VOXELS
) -> Coordinate:
    """A block shape of multiples of ``unit`` (voxels), about ``target`` voxels, roughly cubic in world units."""
    unit = Coordinate(unit)
    cap = Coordinate(-(-o // u) * u for o, u in zip(output_shape, unit))
    block = list(unit)
    while math.prod(block) < target:
        growable = [d for d in range(len(block)) if block[d] < cap[d]]
        if not growable:
            break
        d = min(growable, key=lambda i: block[i] * voxel_size[i])
        block[d] += unit[d]
    return Coordinate(block)


def _input_read_advice(raw: Dataset, grid: BlockGrid) -> None:
    """Warn when blocks decode much more input than they read (input chunks misaligned with blocks)."""
    if raw.format != "zarr" or len(grid) == 0:
        return
    chunks = Coordinate(raw.chunk_shape[raw.num_channel_dims :])
    block = grid.block(len(grid) // 2)
    read = block.read_roi
    begin = (read.begin - raw.roi.begin) / raw.voxel_size
    end = (read.end - raw.roi.begin) / raw.voxel_size
    touched = math.prod(-(-e // c) - b // c for b, e, c in zip(begin, end, chunks))
    decoded = touched * math.prod(chunks)
    needed = math.prod(end - begin)
    if decoded > 2 * needed:
        logger.warning(
            "each block reads %s voxels of input but decodes %d input chunks of %s (%.1fx the voxels): store the "
            "input with chunks that divide the block's read shape, or use larger blocks",
            tuple(end - begin),
            touched,
            tuple(chunks),
            decoded / needed,
        )


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------
def predict(
    network_config: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    raw: str | Dataset | tuple[str, str] | None = None,
    out: str | tuple[str, str] | None = None,
    roi: Roi | str | Sequence | None = None,
    block_shape: Sequence[int] | None = None,
    *,
    processor: BlockProcessor | None = None,
    client: ClientLike = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    resume: bool = True,
    overwrite: bool = False,
    dtype: str = "float32",
    chunk_shape: Sequence[int] | None = None,
    compression: str | None = "default",
    raw_voxel_size: Sequence[int] | None = None,
    max_in_flight: int | str | None = None,
    retries: int | None = None,
    block_timeout: float | str | None = "config",
    blocks_per_task: int | str = "auto",
    max_failures: int | None = 100,
    progress: bool | None = None,
    on_block_done: Callable[[Block], None] | None = None,
) -> PredictResult:
    """Predict ``out`` from ``raw`` blockwise on a Dask cluster, resumably.

    Args:
        network_config (str | Path): the network's JSON config (``daskseg net create``); with
            ``checkpoint``, runs that U-Net. Not needed when ``processor`` is given.
        checkpoint (str | Path): the trained weights.
        raw (str | Dataset): the input, ``'IN.zarr/volumes/raw'`` or ``'IN.hdf/volumes/raw'`` (HDF5 is
            read directly), with voxel size and offset metadata (or ``raw_voxel_size``).
        out (str): the output dataset, ``'OUT.zarr/volumes/pred_affs'`` (Zarr). Created with the
            output ROI, voxel size, axis names and units (an OME-Zarr image, funlib attrs on its level);
            reused if it exists and fits.
        roi (Roi | str, optional): the output ROI in world units (``Roi``, ``(offset, shape)`` or
            ``'b:e,b:e,b:e'``), snapped outwards to the voxel grid. Default: the raw ROI shrunk by the
            network context on each side (the tutorial's ``raw_roi.grow(-context, -context)``). It
            must lie inside ``raw_roi.grow(-context_neg, -context_pos)``; ``'largest'`` asks for
            exactly that, the largest ROI the network can fill (``daskseg predict``'s default).
        block_shape (Sequence[int], optional): output voxels per block; a multiple of the output's
            chunk (or shard) shape and of the network's output shape. Default: about 2M voxels.
        processor (BlockProcessor, optional): run this instead of a network.
        client (distributed.Client | str, optional): the cluster to use (or a scheduler address);
            default: ``daskseg.cluster.get_client`` (current client, ``$DASK_SCHEDULER_ADDRESS``, or a
            new LocalCluster of ``n_workers`` processes).
        scheduler (str, optional): a scheduler address to connect to.
        n_workers (int, optional): workers of a new LocalCluster (default: one per core, or one for a
            network, whose forward pass uses all cores by itself).
        resume (bool): skip blocks an earlier run of the same layout finished. An existing record of
            another layout is then refused (``LayoutMismatchError``); with ``resume=False`` every block
            is recomputed.
        overwrite (bool): replace an existing output that does not fit.
        dtype (str): ``'float32'``, or ``'uint8'`` (values in [0, 1] scaled to 0..255).
        chunk_shape (Sequence[int], optional): chunk shape (voxels) of a new output; default the
            block shape.
        compression (str | None): compression of a new output (``'default'``, ``'gzip'``, ``None``).
        raw_voxel_size (Sequence[int], optional): voxel size of an input without metadata.
        max_in_flight (int | str, optional): tasks on the cluster at once (``'2x'``: twice the worker
            threads; default from ``daskseg.predict.max-in-flight``).
        retries (int, optional): extra tries per block (default ``daskseg.predict.retries``).
        block_timeout (float | str | None): time limit of one try of a block, seconds or ``'30
            minutes'``; default ``daskseg.predict.block-timeout``; None for no limit.
        blocks_per_task (int | str): blocks per Dask task; ``'auto'`` starts with one and packs cheap
            blocks into tasks of about half a second (``AdaptiveGroups``), so that the scheduler's
            few milliseconds per task stay a small share of the work.
        max_failures (int, optional): stop submitting after this many failed tasks.
        progress (bool, optional): show a progress bar (default: when stderr is a terminal).
        on_block_done (callable, optional): called with each ``Block`` after it was recorded done.

    Returns:
        PredictResult

    Raises:
        DatasetError: missing input, unwritable or unfitting output.
        GeometryError: an ROI outside the data, a network that does not fit the data.
        AlignmentError: blocks that would not cover whole output chunks (or shards).
        LayoutMismatchError: resuming an output started with another layout.
        BlocksFailedError: some blocks failed after all retries (naming them); the others were
            written and recorded, so running again retries only the failed ones.
    """
    callback = None if on_block_done is None else (lambda _task, block: on_block_done(block))
    with Runner(
        client, scheduler=scheduler, n_workers=n_workers, max_in_flight=max_in_flight, retries=retries,
        block_timeout=block_timeout, blocks_per_task=blocks_per_task, max_failures=max_failures,
        progress=progress, on_block_done=callback,
    ) as runner:
        task = plan_predict(
            network_config, checkpoint, raw, out, roi, block_shape, processor=processor, resume=resume,
            overwrite=overwrite, dtype=dtype, chunk_shape=chunk_shape, compression=compression,
            raw_voxel_size=raw_voxel_size,
        )
        run = runner.run(task)
    grid, out_ds = task.grid, task.args[2]
    return PredictResult(
        output=f"{out_ds.container}/{out_ds.name}",
        roi=grid.output_roi,
        block_shape=grid.block_shape,
        grid_shape=grid.shape,
        num_blocks=run.num_blocks,
        skipped=run.skipped,
        processed=run.processed,
        seconds=run.seconds,
        voxels_per_second=run.voxels_per_second,
        dashboard_link=run.dashboard_link,
        task_seconds={k: run.totals.get(k, 0.0) for k in ("read", "process", "write")},
        tasks=run.tasks,
    )


def plan_predict(
    network_config: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    raw: str | Dataset | tuple[str, str] | None = None,
    out: str | tuple[str, str] | None = None,
    roi: Roi | str | Sequence | None = None,
    block_shape: Sequence[int] | None = None,
    *,
    processor: BlockProcessor | None = None,
    resume: bool = True,
    overwrite: bool = False,
    dtype: str = "float32",
    chunk_shape: Sequence[int] | None = None,
    compression: str | None = "default",
    raw_voxel_size: Sequence[int] | None = None,
) -> BlockwiseTask:
    """The plan of ``predict`` (arguments as there): checks the geometry, opens the input, creates
    or reopens the output, and returns the ``BlockwiseTask`` (``args = (processor, raw, out)``).
    Touches no cluster."""
    if raw is None or out is None:
        raise TypeError("predict needs raw= (the input dataset) and out= (the output dataset)")
    if processor is None:
        if network_config is None or checkpoint is None:
            raise TypeError("predict needs network_config and checkpoint (or a processor)")
        from .network import NetworkProcessor

        processor = NetworkProcessor(network_config, checkpoint)
    if dtype not in OUTPUT_DTYPES:
        raise ValueError(f"dtype must be one of {OUTPUT_DTYPES}, not {dtype!r}")
    out_dtype = np.dtype(dtype)
    check_output_apart(out, {"raw": raw})
    raw_ds = open_input(raw, raw_voxel_size)
    vs = raw_ds.voxel_size
    output_roi, min_block = _output_roi(processor, raw_ds, roi)
    processor.check_input(raw_ds)  # a deterministic misfit fails here, before the output exists
    block_shape_c = _block_shape(processor, block_shape, chunk_shape, output_roi, vs)
    with lock_existing_record(dataset_location(out)):  # no other run may be writing what we replace
        out_ds, created = open_or_create_output(
            out,
            output_roi,
            vs,
            tuple(processor.output_channels),
            out_dtype,
            chunk_shape if chunk_shape is not None else block_shape_c,
            compression,
            overwrite,
        )
    if created:
        _write_attrs(out_ds, processor, out_dtype)
    ctx_neg, ctx_pos = processor.context_neg * vs, processor.context_pos * vs
    grid = BlockGrid(output_roi, block_shape_c, vs, ctx_neg, ctx_pos, min_block_shape=min_block)
    unit = write_unit(out_ds)
    if block_shape is None and not created and not aligned(grid, out_ds.roi, unit):
        # an output made by someone else, with chunks the default blocks would split: fit them
        block_shape_c = _block_shape(processor, None, unit, output_roi, vs)
        grid = BlockGrid(output_roi, block_shape_c, vs, ctx_neg, ctx_pos, min_block_shape=min_block)
    check_alignment(grid, out_ds.roi, unit)
    _input_read_advice(raw_ds, grid)
    logger.info("%r; output %s", grid, out_ds)
    layout = {
        "grid": grid.layout(),
        "processor": processor.identity(),
        "output": describe(out_ds),
        "input": describe(raw_ds),
    }
    return BlockwiseTask(
        "predict",
        grid,
        predict_block,
        args=(processor, raw_ds, out_ds),
        record_dir=os.path.join(out_ds.container, out_ds.name),
        layout=layout,
        resume=resume and not created,
        settings="predict",
        wants_gpu=True,
        multithreaded=processor.multithreaded,
    )


def _output_roi(processor: BlockProcessor, raw_ds: Dataset, roi) -> tuple[Roi, Coordinate]:
    """The output ROI (given, or the default) checked against the data and the network; and the
    processor's smallest block."""
    vs = raw_ds.voxel_size
    if vs.dims != processor.dims:
        raise GeometryError(f"{raw_ds} has {vs.dims} spatial dimensions, {processor!r} works on {processor.dims}")
    ctx_neg = processor.context_neg * vs
    ctx_pos = processor.context_pos * vs
    min_block = processor.min_block_shape or Coordinate((1,) * vs.dims)
    needed = (processor.context_neg + processor.context_pos + min_block) * vs
    if any(n > s for n, s in zip(needed, raw_ds.roi.shape)):
        raise GeometryError(
            f"the network does not fit the data: it needs inputs of at least {tuple(needed / vs)} voxels "
            f"({tuple(needed)} world units), but {raw_ds} is {raw_ds.roi.shape / vs} voxels ({raw_ds.roi})"
        )
    valid = raw_ds.roi.grow(-ctx_neg, -ctx_pos)
    if isinstance(roi, str) and roi == "largest":
        output_roi = valid
    elif (parsed := parse_roi(roi, vs.dims)) is None:
        output_roi = default_output_roi(raw_ds.roi, ctx_neg, ctx_pos)
    else:
        output_roi = parsed.snap_to_grid(vs, mode="grow")
        if output_roi.empty or not valid.contains(output_roi):
            raise GeometryError(
                f"output ROI {output_roi} lies outside the data: with the network context -{tuple(ctx_neg)}/"
                f"+{tuple(ctx_pos)} (world units), {raw_ds} (ROI {raw_ds.roi}) can be predicted in {valid} at most"
            )
    if any(s < m for s, m in zip(output_roi.shape, min_block * vs)):
        raise GeometryError(
            f"the output ROI {output_roi} is smaller than one network output ({tuple(min_block)} voxels = "
            f"{tuple(min_block * vs)} world units)"
        )
    return output_roi, min_block


def _block_shape(processor, block_shape, chunk_shape, output_roi: Roi, vs: Coordinate) -> Coordinate:
    """The given block shape (checked), or a default one of about 2M voxels fitting ``chunk_shape``.

    The default is a pure function of the processor's block step, ``chunk_shape``, the output ROI and
    the voxel size, never of what is on disk: running the same command again gives the same blocks
    (and so resumes), even though a new output's chunks were clipped to its shape.
    """
    step = processor.block_step or Coordinate((1,) * vs.dims)
    if block_shape is not None:
        block_shape_c = Coordinate(block_shape)
        if block_shape_c.dims != vs.dims or any(b < 1 for b in block_shape_c):
            raise GeometryError(f"block shape {tuple(block_shape)} must be {vs.dims} positive numbers of voxels")
    else:
        unit_hint = Coordinate(chunk_shape) if chunk_shape is not None else Coordinate((1,) * vs.dims)
        unit = Coordinate(math.lcm(s, u) for s, u in zip(step, unit_hint))
        block_shape_c = default_block_shape(unit, output_roi.shape / vs, vs)
    if not block_shape_c.is_multiple_of(step):
        raise BlockwiseError(
            f"block shape {tuple(block_shape_c)} is not a multiple of the network's output shape {tuple(step)}: "
            f"tiles inside blocks would not fall where one scan over the volume puts them. Use e.g. "
            f"{tuple(Coordinate(-(-b // s) * s for b, s in zip(block_shape_c, step)))}"
        )
    return block_shape_c


def _write_attrs(out: Dataset, processor: BlockProcessor, dtype: np.dtype) -> None:
    """Record what produced the output (and how uint8 values scale) in its attributes."""
    attrs = {"daskseg": {"producer": processor.identity(), **processor.output_attributes()}}
    if dtype == np.uint8:
        attrs["daskseg"]["value_scale"] = 255
        attrs["daskseg"]["value_range"] = [0.0, 1.0]
    out.update_attrs(attrs)
