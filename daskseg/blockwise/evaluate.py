"""``evaluate``: CREMI's VOI and adapted Rand of a segmentation against ground truth, blockwise on Dask.

The scores of a volume are functions of its contingency table (segment id, ground-truth id, voxel
count), and tables of blocks that tile a volume add up to the table of the volume. So:

1. **count** (``evaluate-block-z-y-x-…`` tasks, a ``BlockwiseTask`` on the ``Runner``): every block
   of the intersection of the segmentation's, the ground truth's (and the mask's) ROIs reads both
   arrays there and writes its table (a few KB: ``uint64`` ids, ``int64`` counts) as
   ``tables/block-z-y-x.npz`` into the work directory, atomically; the done record next to it makes
   an interrupted evaluation resume with the blocks left.
2. **sum** (``evaluate-sum-<level>-<i>-…``): a tree reduction on the workers. Leaves read ``fan_in``
   block tables each, inner tasks add ``fan_in`` tables of the level below; no task holds more than
   ``fan_in`` tables, and the client holds only task handles.
3. **score** (``evaluate-scores-…``): one task scores the summed table with
   ``daskseg.segment.evaluate.scores_from_counts`` (the functions the in-memory ``cremi_scores``
   uses) and sends the client the numbers only.

Counts are integers, so the summed table is exactly the table of the whole volume (sorted the same
way), and the scores equal the in-memory ones. When the scores are in, the work directory's tables
and record are removed (``keep_tables`` keeps them).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cluster import ClientLike
from ..errors import BlockCancelledError, BlockwiseError, DatasetError, GeometryError, SegmentError
from ..geometry import Coordinate, Roi
from ..io import Dataset
from ..segment.evaluate import PairCounts, count_pairs, scores_from_counts, sum_pair_counts
from .done import RECORD_BIN, RECORD_JSON
from .grid import Block, BlockGrid, layout_hash
from .outputs import describe, open_input
from .predict import DEFAULT_BLOCK_VOXELS, default_block_shape
from .runner import BlockwiseTask, Runner

logger = logging.getLogger(__name__)

TABLES = "tables"
#: Tables added by one reduction task.
DEFAULT_FAN_IN = 8


@dataclass
class EvaluateResult:
    """What ``evaluate`` measured.

    Attributes:
        voi_split, voi_merge, voi: variation of information in bits (``H(seg|gt)``, ``H(gt|seg)``, sum).
        adapted_rand: CREMI's adapted Rand error.
        roi: the ROI evaluated (world units): the intersection of the inputs' ROIs.
        block_shape: voxels per block.
        num_blocks: blocks of the grid; ``skipped`` were counted by an earlier run, ``processed`` now.
        voxels: voxels counted (inside the mask, background included).
        pairs: distinct (segment, object) pairs of the summed table.
        seconds: wall-clock time of counting and summing.
        dashboard_link: the Dask dashboard of the cluster used.
    """

    voi_split: float
    voi_merge: float
    voi: float
    adapted_rand: float
    roi: Roi
    block_shape: Coordinate
    num_blocks: int
    skipped: int
    processed: int
    voxels: int
    pairs: int
    seconds: float
    dashboard_link: str | None = None

    def scores(self) -> dict[str, float]:
        """``voi_split``, ``voi_merge``, ``voi``, ``adapted_rand`` (as ``cremi_scores`` returns them)."""
        return {"voi_split": self.voi_split, "voi_merge": self.voi_merge, "voi": self.voi,
                "adapted_rand": self.adapted_rand}

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-able."""
        return {
            **self.scores(),
            "roi": {"offset": list(self.roi.offset), "shape": list(self.roi.shape)},
            "block_shape": list(self.block_shape),
            "num_blocks": self.num_blocks,
            "skipped": self.skipped,
            "processed": self.processed,
            "voxels": self.voxels,
            "pairs": self.pairs,
            "seconds": self.seconds,
        }


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------
def table_path(tables_dir: str, index: Sequence[int]) -> str:
    return os.path.join(tables_dir, "block-" + "-".join(str(i) for i in index) + ".npz")


def evaluate_block(
    block: Block, seg: Dataset, gt: Dataset, mask: Dataset | None, tables_dir: str, *, cancel=None
) -> dict:
    """Count the (segment, object) pairs of one block and write its table (the per-block function)."""
    roi = block.write_roi
    counts = count_pairs(seg.read(roi), gt.read(roi), None if mask is None else mask.read(roi))
    if cancel is not None and cancel.is_set():
        raise BlockCancelledError(f"block {block.index} was stopped (time limit) before writing its table")
    path = table_path(tables_dir, block.index)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **counts.arrays())  # type: ignore[arg-type]  # numpy stubs: savez(file, *args, allow_pickle, **kwds)
    os.replace(tmp, path)
    return {"pairs": len(counts), "voxels_counted": counts.num_voxels}


def read_table(path: str) -> PairCounts:
    try:
        with np.load(path) as f:
            return PairCounts(f["seg"], f["gt"], f["count"])
    except FileNotFoundError:
        raise BlockwiseError(
            f"the table {path} of a block recorded as counted is missing (work directory changed?): evaluate "
            f"again with resume=False (--no-resume)"
        ) from None


def sum_block_tables(tables_dir: str, grid: BlockGrid, first: int, stop: int) -> PairCounts:
    """The sum of the tables of blocks ``first..stop-1`` (a leaf of the reduction tree)."""
    return sum_pair_counts(read_table(table_path(tables_dir, grid.unravel(i))) for i in range(first, stop))


def sum_tables(*tables: PairCounts) -> PairCounts:
    """The sum of tables (an inner node of the reduction tree)."""
    return sum_pair_counts(tables)


def score_table(counts: PairCounts) -> dict[str, float]:
    """The scores of the summed table, and its size (the root of the reduction tree)."""
    return {**scores_from_counts(counts), "voxels": counts.num_voxels, "pairs": len(counts)}


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------
def _labels_input(path: str | Dataset | tuple[str, str], what: str) -> Dataset:
    ds = open_input(path)
    if not (np.issubdtype(ds.dtype, np.integer) or ds.dtype == bool):
        raise SegmentError(f"the {what} {ds.container}/{ds.name} holds {ds.dtype} values; labels must be integers")
    if ds.num_channel_dims:
        raise SegmentError(
            f"the {what} {ds.container}/{ds.name} has channel dimensions {ds.channel_shape} (shape {ds.shape}, voxel "
            f"size {ds.voxel_size}); labels have one value per voxel"
        )
    return ds


def _common_roi(datasets: dict[str, Dataset]) -> Roi:
    """The intersection of the datasets' ROIs, checked for one voxel grid."""
    (first_name, first), *rest = datasets.items()
    vs = first.voxel_size
    roi = first.roi
    for name, ds in rest:
        if ds.voxel_size != vs:
            raise GeometryError(
                f"voxel sizes differ: the {first_name} {first.container}/{first.name} has voxel size {tuple(vs)}, "
                f"the {name} {ds.container}/{ds.name} has voxel size {tuple(ds.voxel_size)}; resample one of them first"
            )
        if not (ds.roi.offset - first.roi.offset).is_multiple_of(vs):
            raise GeometryError(
                f"the {name} {ds.container}/{ds.name} (offset {tuple(ds.roi.offset)}) and the {first_name} "
                f"(offset {tuple(first.roi.offset)}) are not on one grid of voxel size {tuple(vs)}"
            )
        overlap = roi.intersect(ds.roi)
        if overlap.empty:
            others = ", ".join(f"{n} {d.roi}" for n, d in datasets.items())
            raise GeometryError(f"nothing to evaluate: the ROIs do not overlap ({others})")
        roi = overlap
    return roi


def default_work_dir(seg: Dataset, layout: dict) -> str:
    """Next to the segmentation's container (workers can reach it), named by the layout's hash."""
    return os.path.join(os.path.dirname(seg.container), f".daskseg-evaluate-{layout_hash(layout)[:12]}")


def plan_evaluate(
    seg: str | Dataset | tuple[str, str],
    gt: str | Dataset | tuple[str, str],
    mask: str | Dataset | tuple[str, str] | None = None,
    block_shape: Sequence[int] | None = None,
    *,
    work_dir: str | os.PathLike | None = None,
    resume: bool = True,
) -> BlockwiseTask:
    """The plan of ``evaluate`` (arguments as there): opens and checks the inputs and returns the
    counting ``BlockwiseTask`` (``args = (seg, gt, mask, tables_dir)``). Touches no cluster."""
    datasets = {"segmentation": _labels_input(seg, "segmentation"), "ground truth": _labels_input(gt, "ground truth")}
    if mask is not None:
        datasets["mask"] = _labels_input(mask, "mask")
    seg_ds, gt_ds, mask_ds = datasets["segmentation"], datasets["ground truth"], datasets.get("mask")
    roi = _common_roi(datasets)
    vs = seg_ds.voxel_size
    if block_shape is None:
        chunks = Coordinate(seg_ds.chunk_shape)  # an unchunked HDF5 dataset: its shape; then any block
        unit = chunks if math.prod(chunks) <= DEFAULT_BLOCK_VOXELS else Coordinate((1,) * vs.dims)
        block = default_block_shape(unit, roi.shape / vs, vs)
    else:
        block = Coordinate(block_shape)
        if block.dims != vs.dims or any(b < 1 for b in block):
            raise GeometryError(f"block shape {tuple(block_shape)} must be {vs.dims} positive numbers of voxels")
    grid = BlockGrid(roi, block, vs)
    layout = {
        "grid": grid.layout(),
        "inputs": {k: {"path": f"{d.container}/{d.name}", **describe(d)} for k, d in datasets.items()},
    }
    directory = os.path.abspath(os.fspath(work_dir)) if work_dir is not None else default_work_dir(seg_ds, layout)
    tables_dir = os.path.join(directory, TABLES)
    try:
        os.makedirs(tables_dir, exist_ok=True)
    except OSError as e:
        raise DatasetError(
            f"cannot create the work directory {directory} ({e.strerror}): give another one (work_dir=, --work-dir)"
        ) from None
    logger.info("%r; tables in %s", grid, tables_dir)
    return BlockwiseTask("evaluate", grid, evaluate_block, args=(seg_ds, gt_ds, mask_ds, tables_dir),
                         record_dir=directory, layout=layout, resume=resume, settings="segment")


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def reduce_and_score(client, grid: BlockGrid, tables_dir: str, *, fan_in: int = DEFAULT_FAN_IN,
                     retries: int = 2) -> dict[str, float]:
    """Sum the block tables up a tree of ``fan_in``-ary tasks on the cluster; return the scores only."""
    if fan_in < 2:
        raise ValueError(f"fan_in must be at least 2, got {fan_in}")
    token = uuid.uuid4().hex[:8]
    n = len(grid)
    level = [
        client.submit(sum_block_tables, tables_dir, grid, first, min(first + fan_in, n), retries=retries,
                      key=f"evaluate-sum-0-{first // fan_in}-{token}")
        for first in range(0, n, fan_in)
    ]
    depth = 1
    while len(level) > 1:
        level = [
            client.submit(sum_tables, *level[i : i + fan_in], retries=retries,
                          key=f"evaluate-sum-{depth}-{i // fan_in}-{token}")
            for i in range(0, len(level), fan_in)
        ]
        depth += 1
    scores = client.submit(score_table, level[0], retries=retries, key=f"evaluate-scores-{token}")
    del level
    return scores.result()


def remove_work(task: BlockwiseTask) -> None:
    """Remove the tables and the record of ``task``, and its work directory if nothing else is there."""
    directory = task.record_dir
    shutil.rmtree(os.path.join(directory, TABLES), ignore_errors=True)
    for name in (RECORD_JSON, RECORD_BIN):
        with_path = os.path.join(directory, name)
        if os.path.exists(with_path):
            os.remove(with_path)
    try:
        os.rmdir(directory)
    except OSError:
        logger.debug("kept %s: it holds other files", directory)


def evaluate(
    seg: str | Dataset | tuple[str, str],
    gt: str | Dataset | tuple[str, str],
    mask: str | Dataset | tuple[str, str] | None = None,
    block_shape: Sequence[int] | None = None,
    *,
    client: ClientLike = None,
    work_dir: str | os.PathLike | None = None,
    resume: bool = True,
    keep_tables: bool = False,
    fan_in: int = DEFAULT_FAN_IN,
    **runner_options: Any,
) -> EvaluateResult:
    """VOI split/merge and adapted Rand (CREMI's definitions) of ``seg`` against ``gt``, blockwise.

    Args:
        seg (str | Dataset): the segmentation, ``'SEG.zarr/volumes/segmentation'`` (or ``.hdf``).
        gt (str | Dataset): the ground truth, ``'S.zarr/volumes/labels/neuron_ids'``; 0 is
            background, ignored by the scores (see ``daskseg.segment.evaluate``).
        mask (str | Dataset, optional): only voxels where the mask is nonzero are evaluated.
        block_shape (Sequence[int], optional): voxels per block; default about 2M voxels, a
            multiple of the segmentation's chunks.
        client (distributed.Client | str, optional): the cluster (or a scheduler address); default
            ``daskseg.cluster.get_client``.
        work_dir (str | Path, optional): where the block tables and the done record go; on storage
            every worker can reach. Default: ``.daskseg-evaluate-<hash>`` next to the segmentation's
            container.
        resume (bool): reuse the tables of an interrupted evaluation of the same inputs and blocks.
        keep_tables (bool): keep the work directory after scoring.
        fan_in (int): tables added by one reduction task.
        **runner_options: passed to ``Runner`` (``scheduler``, ``n_workers``, ``max_in_flight``,
            ``retries``, ``block_timeout``, ``progress``, ...).

    Returns:
        EvaluateResult

    Raises:
        DatasetError: a missing dataset, an unwritable work directory.
        GeometryError: inputs of different voxel sizes or grids, ROIs that do not overlap.
        SegmentError: labels that are not integers; ground truth that is all background.
        BlocksFailedError: blocks that failed after all retries (the others are recorded).
    """
    task = plan_evaluate(seg, gt, mask, block_shape, work_dir=work_dir, resume=resume)
    with Runner(client, **runner_options) as runner:
        return run_evaluate(task, runner, keep_tables=keep_tables, fan_in=fan_in)


def run_evaluate(
    task: BlockwiseTask, runner: Runner, *, keep_tables: bool = False, fan_in: int = DEFAULT_FAN_IN
) -> EvaluateResult:
    """Run the plan of ``plan_evaluate`` on ``runner``'s cluster: count the pending blocks, sum the
    tables, score (arguments as for ``evaluate``)."""
    t0 = time.perf_counter()
    run = runner.run(task)
    retries = runner.settings(task.settings)[1]
    scores = reduce_and_score(runner.client(), task.grid, task.args[3], fan_in=fan_in, retries=retries)
    if not keep_tables:
        remove_work(task)
    grid = task.grid
    return EvaluateResult(
        voi_split=scores["voi_split"], voi_merge=scores["voi_merge"], voi=scores["voi"],
        adapted_rand=scores["adapted_rand"], roi=grid.output_roi, block_shape=grid.effective_block_shape,
        num_blocks=run.num_blocks, skipped=run.skipped, processed=run.processed, voxels=int(scores["voxels"]),
        pairs=int(scores["pairs"]), seconds=time.perf_counter() - t0, dashboard_link=runner.dashboard_link,
    )
