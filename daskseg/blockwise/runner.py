"""Plan, then run: a blockwise job is a ``BlockwiseTask`` (pure description) handed to ``Runner``.

Every blockwise job of daskseg (``predict``, the stages of ``segment``, ``evaluate``, pyramids)
has the same two halves, as daisy separates its ``Task`` from its server:

- the **plan**, a ``BlockwiseTask``: the block grid, the per-block function and its (small,
  picklable) arguments, where the done record lives and the layout it belongs to. Making one opens
  datasets and checks geometry, but never touches Dask; it can be built, inspected and tested
  without a cluster.
- the **run**, ``Runner.run(task)``: finds or starts the cluster (once, for all tasks of a
  ``Runner``), opens the ``DoneRecord`` (skipping blocks an earlier run of the same layout
  finished, refusing a record of another layout), submits the pending blocks through
  ``submit_bounded`` (a bounded window, retries, a time limit per block, adaptive blocks per task),
  marks each block done after its task reported success, shows a progress bar, and names every task
  ``<name>-block-z-y-x-<token>`` so that the dashboard says which job a task belongs to.

A per-block function has the signature ``function(block, *args, cancel) -> dict | None``:

- ``block`` is a ``Block`` of the task's grid (``index``, ``write_roi``, ``read_roi``);
- ``args`` are the task's ``args``; ``Dataset`` arguments arrive as this worker process's open
  copy, reused from block to block within a run;
- ``cancel`` is a ``threading.Event`` set when the block's time limit passed: check it right before
  writing and raise ``BlockCancelledError`` if set, so a timed-out block never writes late;
- the function must write its results itself (idempotently: a retried block writes the same
  data again) and may return a dict of numbers (seconds per phase, counts), summed over blocks
  into ``RunResult.totals``.

A job in a few lines::

    from daskseg.blockwise import BlockGrid, BlockwiseTask, Runner

    def smooth(block, raw, out, *, cancel):
        out.write(block.write_roi, some_filter(raw.read(block.read_roi)))

    task = BlockwiseTask("smooth", grid, smooth, args=(raw, out), record_dir=out_path,
                         layout={"grid": grid.layout(), "filter": "some_filter"})
    with Runner(n_workers=2) as runner:
        result = runner.run(task)
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cluster import ClientLike
from ..errors import BlocksFailedError
from ..io import Dataset
from ..worker_state import STATE
from .done import DoneRecord
from .grid import Block, BlockGrid
from .grouping import AdaptiveGroups, fixed_groups, max_blocks_per_task
from .submit import BlockFailure, call_with_time_limit, gpu_resources, not_retried, submit_bounded, worker_threads

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

RESUME_HINT = (
    " The other blocks were written and recorded; run again (resume is on by default) to retry only the "
    "unfinished ones."
)


@dataclass(frozen=True)
class BlockwiseTask:
    """The plan of one blockwise job: what to run on which blocks, and how it is recorded.

    Args:
        name (str): the job's name: the progress bar's label, and the dashboard's task names
            ``<name>-block-z-y-x-<token>`` (e.g. ``'predict'``, ``'fragments'``).
        grid (BlockGrid): the blocks.
        function (callable): ``function(block, *args, cancel) -> dict | None``, run on the workers
            (module-level, so that it pickles); see the module docstring.
        args (tuple): further arguments of ``function``, small and picklable (paths, ``Dataset``s,
            parameters): they travel with every task.
        record_dir (str): the directory of the ``DoneRecord`` (for Zarr outputs the output array's
            directory, so the record goes when the output goes).
        layout (dict): JSON-able description of everything that decides the output (grid, inputs,
            parameters); its hash identifies the record.
        resume (bool): keep the marks of an earlier run of the same layout.
        settings (str): the section of daskseg's settings (``daskseg.<settings>.max-in-flight``,
            ``.retries``, ``.block-timeout``) that gives the run's defaults.
        wants_gpu (bool): ask for a ``GPU`` resource per task when some worker declares one.
        multithreaded (bool): a block uses all cores by itself (a network): a new LocalCluster
            gets one worker.
    """

    name: str
    grid: BlockGrid
    function: Callable[..., dict | None]
    args: tuple = ()
    record_dir: str = ""
    layout: dict = field(default_factory=dict)
    resume: bool = True
    settings: str = "predict"
    wants_gpu: bool = False
    multithreaded: bool = False

    @property
    def key_prefix(self) -> str:
        return f"{self.name}-block"

    def open_record(self) -> DoneRecord:
        """The done record of this task (the caller closes it)."""
        return DoneRecord(self.record_dir, {"task": self.name, **self.layout}, len(self.grid), resume=self.resume)


@dataclass
class RunResult:
    """What ``Runner.run`` did for one task.

    Attributes:
        name: the task's name.
        num_blocks: blocks of the grid.
        skipped: blocks found done by an earlier run (and not redone).
        processed: blocks done by this run.
        tasks: Dask tasks that ran them (fewer when cheap blocks were grouped).
        seconds: wall-clock time of the block loop.
        voxels: write-ROI voxels of the processed blocks.
        totals: the per-block functions' returned numbers, summed.
        dashboard_link: the dashboard of the cluster used (None without one or when nothing ran).
    """

    name: str
    num_blocks: int
    skipped: int
    processed: int = 0
    tasks: int = 0
    seconds: float = 0.0
    voxels: int = 0
    totals: dict[str, float] = field(default_factory=dict)
    dashboard_link: str | None = None

    @property
    def voxels_per_second(self) -> float:
        return self.voxels / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------
def local_dataset(ds: Dataset, run: str | None) -> Dataset:
    """This process's copy of ``ds`` for run ``run``, so later tasks of the run reuse its open handle
    (``daskseg.worker_state``, kind ``"datasets"``).

    Handles are never kept across runs: a dataset recreated in between (other chunks or codecs)
    must be reopened, so the first task of a run closes the handles of earlier runs.
    """
    if run is None:
        return ds
    STATE.release("datasets", lambda key: key[0] != run)  # type: ignore[index]
    return STATE.get("datasets", (run, ds.container, ds.name, ds.mode), lambda: ds, release=Dataset.close)


def run_blocks(
    item: Sequence[int], grid: BlockGrid, function: Callable, args: tuple, run: str | None = None, cancel=None
) -> dict[str, float]:
    """Run ``function`` on the blocks with flat indices ``item`` (on a worker); sums what they return.

    ``seconds`` (the blocks' total time) and ``blocks`` are always in the result.
    """
    args = tuple(local_dataset(a, run) if isinstance(a, Dataset) else a for a in args)
    totals: dict[str, float] = {"seconds": 0.0, "blocks": 0}
    for flat in item:
        t0 = time.perf_counter()
        result = function(grid.block(int(flat)), *args, cancel=cancel)
        totals["seconds"] += time.perf_counter() - t0
        totals["blocks"] += 1
        for k, v in (result or {}).items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return totals


def block_task(item, grid, function, args, run, time_limit):
    """The Dask task: ``run_blocks`` under a time limit of ``time_limit`` seconds per block; a
    ``DeterministicError`` is returned as ``NotRetried`` (failed at once, not retried)."""
    limit = None if time_limit is None else time_limit * len(item)
    return not_retried(call_with_time_limit, run_blocks, limit, item, grid, function, args, run)


# --------------------------------------------------------------------------------------------
# the client side
# --------------------------------------------------------------------------------------------

#: The settings (daskseg.yaml) that bound the runs of blockwise jobs: ``(max-in-flight, retries,
#: block-timeout)`` per section. ``predict`` for ``daskseg predict``; ``segment`` for every stage of
#: ``daskseg segment``, ``daskseg evaluate`` and ``daskseg pyramid``.
RUN_SETTINGS: dict[str, tuple[str, str, str]] = {
    "predict": ("predict.max-in-flight", "predict.retries", "predict.block-timeout"),
    "segment": ("segment.max-in-flight", "segment.retries", "segment.block-timeout"),
}

class Runner:
    """Runs ``BlockwiseTask``s on one Dask cluster, one after the other.

    The cluster is found or started on the first task that has blocks left (a task whose blocks
    are all done never starts one) and closed on exit if the runner started it.

    Args:
        client (distributed.Client | str, optional): the cluster (or a scheduler address);
            default ``daskseg.cluster.get_client``: the current client, ``$DASK_SCHEDULER_ADDRESS``
            or a new LocalCluster.
        scheduler (str, optional): a scheduler address to connect to.
        n_workers (int, optional): workers of a new LocalCluster (default one per core, one for a
            multithreaded task).
        max_in_flight (int | str, optional): tasks on the cluster at once (``'2x'``: twice the
            worker threads); default ``daskseg.<settings>.max-in-flight``.
        retries (int, optional): extra tries per task; default ``daskseg.<settings>.retries``.
        block_timeout (float | str | None): time limit of one try of a block (seconds or ``'30
            minutes'``); ``'config'`` (default) reads ``daskseg.<settings>.block-timeout``; None: none.
        blocks_per_task (int | str): blocks per Dask task; ``'auto'`` packs cheap blocks into tasks
            of about half a second (``AdaptiveGroups``).
        max_failures (int, optional): stop submitting after this many failed tasks.
        progress (bool, optional): a progress bar per task (default: when stderr is a terminal).
        on_block_done (callable, optional): ``on_block_done(task, block)`` after each block was
            recorded done.

    Use as a context manager; ``run`` raises ``BlocksFailedError`` (naming the failed blocks, the
    others recorded) when blocks failed after all retries.
    """

    def __init__(
        self,
        client: ClientLike = None,
        *,
        scheduler: str | None = None,
        n_workers: int | None = None,
        max_in_flight: int | str | None = None,
        retries: int | None = None,
        block_timeout: float | str | None = "config",
        blocks_per_task: int | str = "auto",
        max_failures: int | None = None,
        progress: bool | None = None,
        on_block_done: Callable[[BlockwiseTask, Block], None] | None = None,
    ):
        if blocks_per_task != "auto" and (not isinstance(blocks_per_task, int) or blocks_per_task < 1):
            raise ValueError(
                f"blocks_per_task must be 'auto' or a whole number of at least 1, got {blocks_per_task!r}"
            )
        self._client_arg = client
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.max_in_flight = max_in_flight
        self.retries = retries
        self.block_timeout = block_timeout
        self.blocks_per_task = blocks_per_task
        self.max_failures = max_failures
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.on_block_done = on_block_done
        self._sessions = contextlib.ExitStack()
        self._client: Client | None = None
        self.dashboard_link: str | None = None

    # --- the cluster ---------------------------------------------------------------------------
    def client(self, multithreaded: bool = False):
        """The cluster's client, found or started on first use."""
        if self._client is None:
            from ..cluster import client_session, dashboard_link

            n_workers = self.n_workers if self.n_workers is not None or not multithreaded else 1
            self._client = self._sessions.enter_context(
                client_session(self._client_arg, scheduler_address=self.scheduler, n_workers=n_workers)
            )
            self.dashboard_link = dashboard_link(self._client)
            if self.dashboard_link:
                logger.info("Dask dashboard: %s", self.dashboard_link)
        return self._client

    @property
    def connected(self) -> bool:
        """Whether this runner has found or started its cluster yet."""
        return self._client is not None

    def close(self) -> None:
        self._sessions.close()
        self._client = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- settings ------------------------------------------------------------------------------
    def settings(self, section: str) -> tuple[int | str, int, float | None]:
        """``(max_in_flight, retries, block time limit in seconds)``: given values, else the
        settings of ``daskseg.<section>`` (``RUN_SETTINGS``)."""
        from .. import config as dsconfig

        if section not in RUN_SETTINGS:
            raise ValueError(f"no run settings {section!r} in daskseg.yaml; sections are {sorted(RUN_SETTINGS)}")
        window_key, retries_key, timeout_key = RUN_SETTINGS[section]
        window = self.max_in_flight if self.max_in_flight is not None else dsconfig.get(window_key, "2x")
        retries = self.retries if self.retries is not None else int(dsconfig.get(retries_key, 2))
        timeout = self.block_timeout
        if timeout == "config":
            timeout = dsconfig.get(timeout_key, None)
        return window, retries, seconds(timeout)

    # --- running -------------------------------------------------------------------------------
    def run(self, task: BlockwiseTask) -> RunResult:
        """Run every pending block of ``task``; see the class docstring."""
        with task.open_record() as record:
            total = len(task.grid)
            result = RunResult(task.name, total, record.count_done())
            if result.skipped:
                logger.info("%s: resuming, %d of %d blocks are done already", task.name, result.skipped, total)
            if result.skipped == total:
                return result
            client = self.client(task.multithreaded)
            result.dashboard_link = self.dashboard_link
            window, retries, time_limit = self.settings(task.settings)
            bar = None
            if self.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, initial=result.skipped, unit="block", desc=task.name, dynamic_ncols=True,
                           smoothing=0.1)
            try:
                self._submit(task, client, record, result, bar, window, retries, time_limit)
            finally:
                if bar is not None:
                    bar.close()
        return result

    def _submit(self, task, client, record, result, bar, window, retries, time_limit) -> None:
        grid = task.grid
        token = uuid.uuid4().hex[:8]
        voxel_volume = math.prod(grid.voxel_size)
        pending = result.num_blocks - result.skipped
        size = self.blocks_per_task
        if isinstance(size, int):
            groups: Iterable[Sequence[int]] = fixed_groups(record.pending(), size)
        else:  # 'auto'
            most = max_blocks_per_task(pending, worker_threads(client))
            groups = AdaptiveGroups(record.pending(), max_blocks=most)
        last_flush = time.monotonic()

        def key(item: Sequence[int]) -> str:
            k = grid.block(item[0]).key(task.key_prefix, token)
            return k if len(item) == 1 else f"{k}-x{len(item)}"

        def done(item: Sequence[int], totals: Any) -> None:
            nonlocal last_flush
            for flat in item:
                record.mark_done(flat)
                result.voxels += grid.block(flat).write_roi.size // voxel_volume
            result.processed += len(item)
            if isinstance(totals, dict):
                for k, v in totals.items():
                    if k != "blocks":
                        result.totals[k] = result.totals.get(k, 0.0) + float(v)
                if isinstance(groups, AdaptiveGroups):
                    groups.observe(len(item), float(totals.get("seconds", 0.0)))
            if bar is not None:
                bar.update(len(item))
            if time.monotonic() - last_flush > 1.0:
                record.flush()
                last_flush = time.monotonic()
            if self.on_block_done is not None:
                for flat in item:
                    self.on_block_done(task, grid.block(flat))

        stats = submit_bounded(
            client,
            block_task,
            groups,
            key=key,
            args=(grid, task.function, task.args, token, time_limit),
            max_in_flight=window,
            retries=retries,
            resources=gpu_resources(client) if task.wants_gpu else None,
            on_done=done,
            on_failed=blocks_one_by_one,
            max_failures=self.max_failures,
        )
        record.flush()
        result.tasks = stats.finished
        result.seconds = stats.seconds
        if stats.failures:
            names = [grid.block(f.item[0]).index for f in stats.failures]
            logger.error("%s: failed blocks: %s", task.name, names)
            raise BlocksFailedError(stats.failures, pending, stats.stopped_early, unit="blocks", hint=RESUME_HINT)


def run_blockwise(task: BlockwiseTask, client: ClientLike = None, **options: Any) -> RunResult:
    """Run one task on its own ``Runner`` (``options`` as for ``Runner``)."""
    with Runner(client, **options) as runner:
        return runner.run(task)


def blocks_one_by_one(failure: BlockFailure) -> list[tuple[int]] | None:
    """A failed group of blocks runs again one block per task, so that only failing blocks fail."""
    return [(flat,) for flat in failure.item] if len(failure.item) > 1 else None


def seconds(value: float | str | None) -> float | None:
    """A duration in seconds from a number or a string such as ``'30 minutes'``; None or 0: none."""
    if value is None or value == 0:
        return None
    if isinstance(value, str):
        from dask.utils import parse_timedelta

        return float(parse_timedelta(value))
    return float(value)
