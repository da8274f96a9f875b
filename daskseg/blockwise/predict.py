"""``predict``: run a network (or any block processor) over a large volume on a Dask cluster.

The output ROI is cut into blocks aligned with the output array's chunks (or shards); one task per
block reads the block grown by the network's context from the input, runs the network (loaded and
compiled once per worker process) and writes only its valid output. Tasks (one block each, or several
when blocks are cheap) are submitted lazily, a bounded number at a time; each finished block is
recorded durably after its data was written, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DatasetError, GeometryError
from ..geometry import Coordinate, Roi
from ..io import Dataset, create_dataset, open_dataset, split_dataset_path
from ..io.dataset import container_format
from .done import DoneRecord
from .grid import Block, BlockGrid, BlockwiseError, check_alignment
from .grouping import AdaptiveGroups, fixed_groups, max_blocks_per_task
from .processor import BlockProcessor
from .submit import (
    BlockCancelledError,
    BlockFailure,
    BlocksFailedError,
    call_with_time_limit,
    gpu_resources,
    submit_bounded,
    worker_threads,
)

logger = logging.getLogger(__name__)

#: Default number of output voxels per block when no block shape is given.
DEFAULT_BLOCK_VOXELS = 2**21
OUTPUT_DTYPES = ("float32", "uint8")
KEY_PREFIX = "predict-block"


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


_DATASETS: dict[tuple, Dataset] = {}


def _local(ds: Dataset, run: str | None) -> Dataset:
    """This process's copy of ``ds`` for run ``run``, so later tasks of the run reuse its open handle.

    Handles are never kept across runs: a dataset recreated in between (other chunks or codecs)
    must be reopened.
    """
    if run is None:
        return ds
    key = (run, ds.container, ds.name, ds.mode)
    local = _DATASETS.get(key)
    if local is None:
        for old in [k for k in _DATASETS if k[0] != run]:
            _DATASETS.pop(old).close()
        local = _DATASETS[key] = ds
    return local


def process_blocks(
    item: Sequence[int],
    grid: BlockGrid,
    processor: BlockProcessor,
    raw: Dataset,
    out: Dataset,
    run: str | None = None,
    cancel=None,
) -> dict[str, float]:
    """Read, process and write the blocks with flat indices ``item`` (runs on a worker).

    ``run`` names the run, so that datasets stay open from block to block within it. Returns seconds
    spent reading, processing and writing. Raises ``BlockCancelledError`` without
    writing if ``cancel`` was set (its time limit passed) before the write.
    """
    times = {"read": 0.0, "process": 0.0, "write": 0.0, "blocks": 0}
    raw, out = _local(raw, run), _local(out, run)
    for flat in item:
        block = grid.block(int(flat))
        t0 = time.perf_counter()
        data = raw.read(block.read_roi)
        t1 = time.perf_counter()
        result = processor(data)
        expected = tuple(out.channel_shape) + tuple(block.write_roi.shape / grid.voxel_size)
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
        t3 = time.perf_counter()
        times["read"] += t1 - t0
        times["process"] += t2 - t1
        times["write"] += t3 - t2
        times["blocks"] += 1
    return times


def run_task(item, grid, processor, raw, out, run, time_limit):
    """The Dask task of ``predict``: ``process_blocks`` under a time limit of ``time_limit`` per block."""
    limit = None if time_limit is None else time_limit * len(item)
    return call_with_time_limit(process_blocks, limit, item, grid, processor, raw, out, run)


# --------------------------------------------------------------------------------------------
# set-up helpers
# --------------------------------------------------------------------------------------------
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
    offset, shape = roi
    return Roi(offset, shape)


def open_input(raw: str | Dataset | tuple[str, str], voxel_size: Sequence[int] | None = None) -> Dataset:
    """The input dataset from ``'IN.zarr/volumes/raw'``, ``(container, name)`` or a ``Dataset``."""
    if isinstance(raw, Dataset):
        return raw
    container, name = split_dataset_path(raw) if isinstance(raw, (str, os.PathLike)) else raw
    return open_dataset(container, name, mode="r", voxel_size=voxel_size)


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


def _write_unit(out: Dataset) -> Coordinate:
    """The spatial shape (voxels) of the output's shards, or chunks when unsharded."""
    array = out._array()
    shards = getattr(array, "shards", None)
    unit = tuple(shards) if shards is not None else tuple(out.chunk_shape)
    channels = out.num_channel_dims
    if tuple(unit[:channels]) != tuple(out.channel_shape):
        raise BlockwiseError(
            f"{out} is chunked {tuple(unit)} over its channel dimensions {out.channel_shape}; blockwise writes "
            f"need every chunk to hold all channels"
        )
    return Coordinate(unit[channels:])


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


def _open_or_create_output(
    out: str | tuple[str, str],
    roi: Roi,
    voxel_size: Coordinate,
    channels: tuple[int, ...],
    dtype: np.dtype,
    chunk_shape: Sequence[int] | None,
    compression: str | None,
    overwrite: bool,
) -> tuple[Dataset, bool]:
    container, name = split_dataset_path(out) if isinstance(out, (str, os.PathLike)) else out
    container = str(container)
    if container_format(container) != "zarr":
        raise DatasetError(
            f"blockwise prediction writes Zarr (.zarr) outputs, not {container!r}: parallel writers cannot share an "
            f"HDF5 file. Write to a .zarr container (HDF5 input is fine), or use the in-process Hdf5Write pipeline."
        )
    array_dir = os.path.join(container, name.strip("/"))
    exists = os.path.exists(os.path.join(array_dir, "zarr.json")) or os.path.exists(os.path.join(array_dir, ".zarray"))
    probe = array_dir if exists else _nearest_existing(array_dir)
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
                f"the output {container}/{name} exists but does not fit this prediction: " + ", ".join(problems)
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
    )
    return ds, True


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


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
    client=None,
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
            output ROI, voxel size, axis names and units (funlib attrs and OME-Zarr multiscales);
            reused if it exists and fits.
        roi (Roi | str, optional): the output ROI in world units (``Roi``, ``(offset, shape)`` or
            ``'b:e,b:e,b:e'``), snapped outwards to the voxel grid. Default: the raw ROI shrunk by the
            network context on each side (the tutorial's ``raw_roi.grow(-context, -context)``). It
            must lie inside ``raw_roi.grow(-context_neg, -context_pos)``.
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
    from .. import config as dsconfig
    from ..cluster import client_session, dashboard_link

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
    if blocks_per_task != "auto" and (not isinstance(blocks_per_task, int) or blocks_per_task < 1):
        raise ValueError(f"blocks_per_task must be 'auto' or a whole number of at least 1, got {blocks_per_task!r}")

    # --- geometry --------------------------------------------------------------------------
    raw_ds = open_input(raw, raw_voxel_size)
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
    output_roi = parse_roi(roi, vs.dims)
    if output_roi is None:
        output_roi = default_output_roi(raw_ds.roi, ctx_neg, ctx_pos)
    else:
        output_roi = output_roi.snap_to_grid(vs, mode="grow")
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

    # --- output ----------------------------------------------------------------------------
    step = processor.block_step or Coordinate((1,) * vs.dims)
    if block_shape is not None:
        block_shape_c = Coordinate(block_shape)
        if block_shape_c.dims != vs.dims or any(b < 1 for b in block_shape_c):
            raise GeometryError(f"block shape {tuple(block_shape)} must be {vs.dims} positive numbers of voxels")
    else:
        unit_hint = Coordinate(chunk_shape) if chunk_shape is not None else _existing_write_unit(out)
        unit = Coordinate(math.lcm(s, u) for s, u in zip(step, unit_hint or (1,) * vs.dims))
        block_shape_c = default_block_shape(unit, output_roi.shape / vs, vs)
    if not block_shape_c.is_multiple_of(step):
        raise BlockwiseError(
            f"block shape {tuple(block_shape_c)} is not a multiple of the network's output shape {tuple(step)}: "
            f"tiles inside blocks would not fall where one scan over the volume puts them. Use e.g. "
            f"{tuple(Coordinate(-(-b // s) * s for b, s in zip(block_shape_c, step)))}"
        )
    out_ds, created = _open_or_create_output(
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
    grid = BlockGrid(output_roi, block_shape_c, vs, ctx_neg, ctx_pos, min_block_shape=min_block)
    check_alignment(grid, out_ds.roi, _write_unit(out_ds))
    _input_read_advice(raw_ds, grid)
    logger.info("%r; output %s", grid, out_ds)

    layout = {
        "grid": grid.layout(),
        "processor": processor.identity(),
        "output": _describe(out_ds),
        "input": _describe(raw_ds),
    }
    record = DoneRecord(os.path.join(out_ds.container, out_ds.name), layout, len(grid), resume=resume and not created)

    # --- run -------------------------------------------------------------------------------
    sessions = contextlib.ExitStack()
    bar = None
    try:
        skipped = record.count_done()
        total = len(grid)
        if skipped:
            logger.info("resuming: %d of %d blocks are done already", skipped, total)
        if skipped == total:
            output = f"{out_ds.container}/{out_ds.name}"
            return PredictResult(output, output_roi, block_shape_c, grid.shape, total, skipped, 0, 0.0, 0.0, None)
        if n_workers is None and processor.multithreaded:
            n_workers = 1  # only used if a LocalCluster is started: one worker, its network using all cores
        dask_client = sessions.enter_context(
            client_session(client, scheduler_address=scheduler, n_workers=n_workers)
        )
        link = dashboard_link(dask_client)
        if link:
            logger.info("Dask dashboard: %s", link)
        resources = gpu_resources(dask_client)
        if max_in_flight is None:
            max_in_flight = dsconfig.get("predict.max-in-flight", "2x")
        if retries is None:
            retries = int(dsconfig.get("predict.retries", 2))
        if block_timeout == "config":
            block_timeout = dsconfig.get("predict.block-timeout", None)
        time_limit = _seconds(block_timeout)
        if progress is None:
            progress = sys.stderr.isatty()
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=skipped, unit="block", desc="predict", dynamic_ncols=True, smoothing=0.1)

        token = uuid.uuid4().hex[:8]
        processed = 0
        voxels = 0
        task_seconds = {"read": 0.0, "process": 0.0, "write": 0.0}
        voxel_volume = math.prod(vs)
        last_flush = time.monotonic()

        def key(item: Sequence[int]) -> str:
            k = grid.block(item[0]).key(KEY_PREFIX, token)
            return k if len(item) == 1 else f"{k}-x{len(item)}"

        if blocks_per_task == "auto":
            most = max_blocks_per_task(total - skipped, worker_threads(dask_client))
            groups: Iterable[Sequence[int]] = AdaptiveGroups(record.pending(), max_blocks=most)
        else:
            groups = fixed_groups(record.pending(), blocks_per_task)

        def done(item: Sequence[int], result: Any) -> None:
            nonlocal processed, voxels, last_flush
            for flat in item:
                record.mark_done(flat)
                voxels += grid.block(flat).write_roi.size // voxel_volume
            processed += len(item)
            if isinstance(result, dict):
                for k in task_seconds:
                    task_seconds[k] += float(result.get(k, 0.0))
                if isinstance(groups, AdaptiveGroups):
                    groups.observe(len(item), sum(float(result.get(k, 0.0)) for k in task_seconds))
            if bar is not None:
                bar.update(len(item))
            now = time.monotonic()
            if now - last_flush > 1.0:
                record.flush()
                last_flush = now
            if on_block_done is not None:
                for flat in item:
                    on_block_done(grid.block(flat))

        stats = submit_bounded(
            dask_client,
            run_task,
            groups,
            key=key,
            args=(grid, processor, raw_ds, out_ds, token, time_limit),
            max_in_flight=max_in_flight,
            retries=retries,
            resources=resources,
            on_done=done,
            on_failed=_blocks_one_by_one,
            max_failures=max_failures,
        )
        record.flush()
        if stats.failures:
            names = [grid.block(f.item[0]).index for f in stats.failures]
            logger.error("failed blocks: %s", names)
            raise BlocksFailedError(
                stats.failures,
                total - skipped,
                stats.stopped_early,
                unit="blocks",
                hint=" The other blocks were written and recorded; run again (resume is on by default) to retry "
                "only the unfinished ones.",
            )
        return PredictResult(
            output=f"{out_ds.container}/{out_ds.name}",
            roi=output_roi,
            block_shape=block_shape_c,
            grid_shape=grid.shape,
            num_blocks=total,
            skipped=skipped,
            processed=processed,
            seconds=stats.seconds,
            voxels_per_second=voxels / stats.seconds if stats.seconds > 0 else 0.0,
            dashboard_link=link,
            task_seconds=task_seconds,
            tasks=stats.finished,
        )
    finally:
        record.close()
        if bar is not None:
            bar.close()
        sessions.close()


def _blocks_one_by_one(failure: BlockFailure) -> list[tuple[int]] | None:
    """A failed group of blocks runs again one block per task, so that only failing blocks fail."""
    return [(flat,) for flat in failure.item] if len(failure.item) > 1 else None


def _describe(ds: Dataset) -> dict:
    return {"dtype": str(ds.dtype), "shape": list(ds.shape), "roi": [list(ds.roi.offset), list(ds.roi.shape)]}


def _seconds(value: float | str | None) -> float | None:
    if value is None or value == 0:
        return None
    if isinstance(value, str):
        from dask.utils import parse_timedelta

        return float(parse_timedelta(value))
    return float(value)


def _existing_write_unit(out: str | tuple[str, str]) -> Coordinate | None:
    """The write unit of an existing output (to choose a default block shape that fits it)."""
    container, name = split_dataset_path(out) if isinstance(out, (str, os.PathLike)) else out
    array_dir = os.path.join(str(container), name.strip("/"))
    if not (os.path.exists(os.path.join(array_dir, "zarr.json")) or os.path.exists(os.path.join(array_dir, ".zarray"))):
        return None
    try:
        return _write_unit(open_dataset(str(container), name, mode="r"))
    except DatasetError:
        return None


def _write_attrs(out: Dataset, processor: BlockProcessor, dtype: np.dtype) -> None:
    """Record what produced the output (and how uint8 values scale) in its attributes."""
    attrs = {"daskseg": {"producer": processor.identity()}}
    if dtype == np.uint8:
        attrs["daskseg"]["value_scale"] = 255
        attrs["daskseg"]["value_range"] = [0.0, 1.0]
    out._array().attrs.update(attrs)
