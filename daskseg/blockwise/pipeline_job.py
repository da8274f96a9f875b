"""``run_pipeline``: a gunpowder-style pipeline run once per block, on the blockwise runner.

This is the Dask way to do what gunpowder users do with ``DaisyRequestBlocks`` on a daisy cluster:
the pipeline (sources, a network, writers such as ``ZarrWrite``) is shipped to the workers once
per run, built there on first use and kept in the worker's state registry
(``daskseg.worker_state``, kind ``"pipelines"``); each block is one request through it, made from
a reference request whose ROIs are moved onto the block (``roi_map`` says which keys get the
block's read ROI and which its write ROI, as ``DaisyRequestBlocks``' does). The writers at the end
of the pipeline write each block. Blocks run on the ``Runner`` that runs ``daskseg predict``: a
bounded window, retries, time limits, a progress bar, and a done record, so running the same call
again after a crash does only the blocks not done.

The first block of a fresh run is requested once in this process before the others are submitted,
so that writers create their datasets once (no two workers create the same dataset) and errors in
the pipeline show here, with their traceback, before the cluster is used.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Hashable, Mapping
from typing import Any

from ..array import ArrayKey
from ..batch import BatchRequest
from ..cluster import ClientLike
from ..errors import ArgumentError, GeometryError
from ..geometry import Coordinate, Roi
from ..pipeline import BatchProvider, Pipeline, build
from ..pipeline.shipping import build_shipped, pack_pipeline
from ..worker_state import STATE
from .grid import Block, BlockGrid
from .runner import BlockwiseTask, Runner, RunResult

logger = logging.getLogger(__name__)

ROI_NAMES = ("read_roi", "write_roi")


def run_pipeline(
    pipeline: Pipeline | BatchProvider,
    reference: BatchRequest,
    roi_map: Mapping[ArrayKey, str],
    record_dir: str,
    *,
    total_roi: Roi | None = None,
    runner: Runner | None = None,
    client: ClientLike = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool | None = None,
    resume: bool = True,
    name: str = "pipeline",
    layout: Mapping[str, Any] | None = None,
) -> RunResult:
    """Request ``reference`` from ``pipeline`` once per block of ``total_roi``, on a Dask cluster.

    Args:
        pipeline (Pipeline | BatchProvider): a pipeline ending in what writes the results (e.g.
            ``ZarrWrite``); it is built on every worker it runs on (and once here, first).
        reference (BatchRequest): one block's request. The keys ``roi_map`` names ``'write_roi'``
            must all have the same ROI: the block's write ROI (its shape is the block shape); the
            keys named ``'read_roi'`` the same larger one: the block's read ROI (the context is the
            difference). Other keys move with the block.
        roi_map (Mapping[ArrayKey, str]): ``'read_roi'`` or ``'write_roi'`` per key, as gunpowder's
            ``DaisyRequestBlocks``.
        record_dir (str): the directory of the done record (e.g. the output dataset's directory).
        total_roi (Roi, optional): the ROI to write, tiled by blocks (world units); default: what the
            pipeline provides of the read keys, shrunk by the context. Blocks at its far end are cut
            to it.
        runner (Runner, optional): the runner to use; else one from ``client``, ``scheduler``,
            ``n_workers`` and ``progress``.
        resume (bool): keep the blocks an earlier run of the same layout finished.
        name (str): the dashboard's task names ``<name>-block-…`` and the progress bar's label.
        layout (Mapping, optional): JSON-able facts that decide the output beyond the pipeline's
            node classes, the reference and the grid (e.g. a checkpoint's name), for the record.

    Returns:
        RunResult: what the runner did.
    """
    tree = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline)
    write_ref, read_ref = _reference_rois(reference, roi_map)
    payload = pack_pipeline(tree, "run_pipeline")
    with build(tree):
        spec = tree.spec
        voxel_size = spec.get_lcm_voxel_size([k for k in roi_map if k in spec])
        if voxel_size is None:
            raise GeometryError(f"run_pipeline: the pipeline provides none of {sorted(roi_map)} with a voxel size")
        context_neg = write_ref.begin - read_ref.begin
        context_pos = read_ref.end - write_ref.end
        if total_roi is None:
            total_roi = _default_total_roi(spec, roi_map, context_neg, context_pos)
        grid = BlockGrid(total_roi, write_ref.shape / voxel_size, voxel_size, context_neg, context_pos)
        description = {
            "grid": grid.layout(),
            "nodes": [type(n).__name__ for n in tree.nodes()],
            "reference": {str(k): [list(s.roi.offset), list(s.roi.shape)] if s.roi is not None else None
                          for k, s in reference.items()},
            "roi_map": {str(k): v for k, v in roi_map.items()},
            **dict(layout or {}),
        }
        token = uuid.uuid4().hex[:12]
        task = BlockwiseTask(name, grid, pipeline_block, args=(payload, token, reference, dict(roi_map), write_ref),
                             record_dir=record_dir, layout=description, resume=resume)
        with task.open_record() as record:
            fresh = record.count_done() == 0
        if fresh:  # writers create their datasets here, once; pipeline errors show here
            tree.request_batch(block_request(grid.block(0), reference, roi_map, write_ref))
    logger.info("run_pipeline: %d blocks %s of %s voxels over %s", len(grid), grid.shape,
                tuple(grid.block_shape), total_roi)
    own = runner is None
    runner = runner or Runner(client, scheduler=scheduler, n_workers=n_workers, progress=progress)
    try:
        return runner.run(task)
    finally:
        if runner.connected:
            runner.client().run(release_pipeline, token)
        if own:
            runner.close()


def _reference_rois(reference: BatchRequest, roi_map: Mapping[ArrayKey, str]) -> tuple[Roi, Roi]:
    """The reference's write ROI and read ROI (the write ROI when no key reads with context)."""
    rois: dict[str, set[Roi]] = {n: set() for n in ROI_NAMES}
    for key, which in roi_map.items():
        if which not in ROI_NAMES:
            raise ArgumentError(f"run_pipeline: roi_map[{key}] must be 'read_roi' or 'write_roi', not {which!r}")
        if key not in reference or reference[key].roi is None:
            raise ArgumentError(f"run_pipeline: roi_map names {key}, which the reference request lacks (or has no ROI)")
        rois[which].add(reference[key].roi)  # type: ignore[arg-type]
    if len(rois["write_roi"]) != 1:
        raise ArgumentError(f"run_pipeline: the keys mapped to 'write_roi' need one common ROI in the reference, "
                            f"got {sorted(map(str, rois['write_roi'])) or 'none'}")
    if len(rois["read_roi"]) > 1:
        raise ArgumentError(f"run_pipeline: the keys mapped to 'read_roi' need one common ROI in the reference, "
                            f"got {sorted(map(str, rois['read_roi']))}")
    (write,) = rois["write_roi"]
    read = next(iter(rois["read_roi"]), write)
    if not read.contains(write):
        raise GeometryError(f"run_pipeline: the read ROI {read} must contain the write ROI {write}")
    return write, read


def _default_total_roi(spec, roi_map: Mapping[ArrayKey, str], context_neg: Coordinate,
                       context_pos: Coordinate) -> Roi:
    provided = [spec[k].roi for k, which in roi_map.items() if which == "read_roi" and k in spec]
    provided = [r for r in provided if r is not None and not r.unbounded]
    if not provided:
        raise GeometryError("run_pipeline: give total_roi: the pipeline provides no bounded ROI of the read keys")
    common = provided[0]
    for roi in provided[1:]:
        common = common.intersect(roi)
    return common.grow(-context_neg, -context_pos)


def block_request(block: Block, reference: BatchRequest, roi_map: Mapping[ArrayKey, str], write_ref: Roi
                  ) -> BatchRequest:
    """The request of one block: the reference moved onto the block, the mapped keys given its
    read or write ROI exactly (cut at the far end of the volume)."""
    shift = block.write_roi.begin - write_ref.begin
    request = reference.copy()
    for key, spec in request.items():
        which = roi_map.get(key) if isinstance(key, ArrayKey) else None
        if which == "write_roi":
            spec.roi = block.write_roi
        elif which == "read_roi":
            spec.roi = block.read_roi
        elif spec.roi is not None:
            spec.roi = spec.roi.shift(shift)
    return request


def pipeline_block(block: Block, payload: bytes, token: str, reference: BatchRequest,
                   roi_map: dict[ArrayKey, str], write_ref: Roi, *, cancel=None) -> dict:
    """The per-block function (on a worker): one request through this run's pipeline."""
    STATE.release("pipelines", lambda key: _is_other_run(key, token))
    pipeline = STATE.get("pipelines", ("run_pipeline", token), lambda: build_shipped(payload), release=Pipeline.teardown)
    pipeline.request_batch(block_request(block, reference, roi_map, write_ref))
    return {}


def _is_other_run(key: Hashable, token: str) -> bool:
    return isinstance(key, tuple) and len(key) == 2 and key[0] == "run_pipeline" and key[1] != token


def release_pipeline(token: str) -> int:
    """Tear down this process's copy of run ``token``'s pipeline (after the run, on every worker)."""
    return STATE.release("pipelines", lambda key: key == ("run_pipeline", token))
