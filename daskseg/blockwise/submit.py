"""The bounded Dask submission loop: at most N tasks in flight, never a graph of every block.

Dask costs about 2 ms of scheduler time and some memory per task, and a graph of every block of a
large volume (as ``map_overlap`` builds, with ~30 tasks a block) costs seconds and gigabytes before
the first block runs. ``submit_bounded`` instead submits one task per item (a block, or a small
group of blocks) from a lazy iterator, keeps at most ``max_in_flight`` of them on the cluster, and
tops the window up (one ``client.map`` call) whenever half of it has finished. Client and scheduler
memory stay flat however many blocks there are.

Failed tasks are retried (``retries``), each try limited in time (``time_limit``); items that still
fail are collected and reported at the end (``BlocksFailedError``), after all other items ran. A
task that returns ``NotRetried`` (an error that would recur: ``not_retried`` turns a
``DeterministicError`` into one on the worker) fails at once, without retries.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
import traceback as tb_module
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BlockTimeoutError

logger = logging.getLogger(__name__)


@dataclass
class BlockFailure:
    """A task that failed on all its tries: its key, the items it held and the last error."""

    key: str
    item: Any
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.key}: {self.error}"


@dataclass
class NotRetried:
    """What a task returns instead of raising an error that would recur on every try (a
    ``DeterministicError``): ``submit_bounded`` counts it as failed at once, without Dask's retries."""

    error: str
    traceback: str = ""


def not_retried(function: Callable, *args, **kwargs) -> Any:
    """``function(*args, **kwargs)``, with a ``DeterministicError`` returned as ``NotRetried`` (on a worker)."""
    from ..errors import DeterministicError

    try:
        return function(*args, **kwargs)
    except DeterministicError as e:
        return NotRetried(f"{type(e).__name__}: {e}", tb_module.format_exc())


@dataclass
class SubmitStats:
    """What ``submit_bounded`` did."""

    submitted: int = 0
    finished: int = 0
    failures: list[BlockFailure] = field(default_factory=list)
    max_in_flight: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def call_with_time_limit(function: Callable, time_limit: float | None, *args, **kwargs) -> Any:
    """Run ``function(*args, cancel=event, **kwargs)``, raising ``BlockTimeoutError`` after ``time_limit`` s.

    Python cannot stop a running thread, so the function runs in a helper thread; on timeout the
    ``cancel`` event is set (the function checks it before writing, so a timed-out block never writes
    late) and the error is raised at once, letting Dask retry the block.
    """
    cancel = threading.Event()
    if time_limit is None:
        return function(*args, cancel=cancel, **kwargs)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args, cancel=cancel, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread below
            outcome["error"] = e

    thread = threading.Thread(target=target, name="daskseg-block", daemon=True)
    thread.start()
    thread.join(time_limit)
    if thread.is_alive():
        cancel.set()
        raise BlockTimeoutError(f"block did not finish within its time limit of {time_limit:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def compact_span_metadata(dask_scheduler=None) -> int:
    """Drop repeated ``{"type": "Future"}`` entries from the scheduler's span metadata.

    distributed's scheduler appends one such entry to the span of every ``submit``/``map`` call and
    keeps spans forever (dask/distributed#7977): about 200 bytes per call, 200 MB over a million
    submissions. Run on the scheduler (``client.run_on_scheduler``); returns how many were dropped.
    """
    extension = getattr(dask_scheduler, "extensions", {}).get("spans")
    dropped = 0
    for span in list(getattr(extension, "spans", {}).values()):
        metadata = getattr(span, "_metadata", None)
        collections = metadata.get("collections") if isinstance(metadata, dict) else None
        if not isinstance(collections, list) or len(collections) < 2:
            continue
        kept, seen = [], set()
        for entry in collections:
            marker = repr(entry)
            if marker in seen and entry == {"type": "Future"}:
                continue
            seen.add(marker)
            kept.append(entry)
        dropped += len(collections) - len(kept)
        collections[:] = kept
    return dropped


def clear_key_cache() -> int:
    """Empty ``dask.utils.key_split``'s memo; returns how many task keys it held.

    The scheduler, workers and client call ``key_split`` on every new task key, and its
    ``lru_cache(100000)`` keeps each key string with its prefix: about 300 bytes per task, up to
    30 MB per process once 100,000 keys went by. A pure cache: clearing it only costs recomputation.
    """
    from dask.utils import key_split

    held = key_split.cache_info().currsize
    key_split.cache_clear()
    return held


def trim_scheduler_memory(dask_scheduler=None) -> dict[str, int]:
    """What the scheduler keeps per submitted task beyond the task's life, dropped (run on the scheduler).

    Traced with tracemalloc and object censuses over 45,000 no-op tasks: all else the scheduler
    keeps per task lives in bounded logs (transitions, events, computations) that fill early.
    """
    return {"span_entries": compact_span_metadata(dask_scheduler), "cached_keys": clear_key_cache()}


def worker_threads(client) -> int:
    """The number of worker threads on the cluster (0 while it has no workers)."""
    return int(sum(client.nthreads().values()))


def gpu_resources(client) -> dict[str, float] | None:
    """``{'GPU': 1}`` if some worker declares a ``GPU`` resource, else None."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if any(w.get("resources", {}).get("GPU", 0) > 0 for w in workers.values()):
        return {"GPU": 1}
    return None


def parse_max_in_flight(value: int | str | None, threads: int) -> int:
    """``max_in_flight`` as a number: an int, or ``'Nx'`` = N times the worker threads (at least 2)."""
    if value is None:
        value = "2x"
    if isinstance(value, str):
        v = value.strip().lower()
        if v.endswith("x"):
            return max(2, int(round(float(v[:-1]) * max(threads, 1))))
        value = int(v)
    if int(value) < 1:
        raise ValueError(f"max_in_flight must be at least 1, got {value!r}")
    return int(value)


def submit_bounded(
    client,
    function: Callable,
    items: Iterable[Any],
    key: Callable[[Any], str],
    args: Sequence[Any] = (),
    kwargs: dict | None = None,
    max_in_flight: int | str | None = "2x",
    retries: int = 2,
    resources: dict | None = None,
    on_done: Callable[[Any, Any], None] | None = None,
    on_failed: Callable[[BlockFailure], Iterable[Sequence[int]] | None] | None = None,
    max_failures: int | None = None,
    refresh_seconds: float = 5.0,
    trim_every: int = 10_000,
) -> SubmitStats:
    """Run ``function(item, *args, **kwargs)`` on the cluster for every item, at most N at a time.

    Args:
        client (distributed.Client): where to run.
        function (callable): the task; its return value is handed to ``on_done``.
        items (iterable): consumed lazily, one item per task.
        key (callable): ``key(item)`` gives the task's unique Dask key.
        args, kwargs: further arguments of every task (small and picklable: they travel with each).
        max_in_flight (int | str): tasks on the cluster at most; ``'2x'`` means twice the number of
            worker threads (re-read every ``refresh_seconds``, so workers that join are used). The
            window is topped up whenever half of it is free.
        retries (int): extra tries of a failed task (errors and lost workers).
        resources (dict, optional): Dask worker resources each task needs, e.g. ``{'GPU': 1}``.
        on_done (callable, optional): ``on_done(item, result)`` in the client, after a task
            succeeded. An exception raised there (e.g. KeyboardInterrupt) stops the run: the tasks in
            flight are cancelled and the exception propagates.
        on_failed (callable, optional): ``on_failed(failure)`` after a task failed on all tries. It
            may return items to run in its place (e.g. the blocks of a failed group, one per task, so
            that only the failing ones fail); those are submitted next, and then the failure is not
            counted.
        max_failures (int, optional): stop submitting after this many failed tasks.
        refresh_seconds (float): how often a ``'Nx'`` window is recomputed from the worker count.
        trim_every (int): every this many submitted tasks, drop what the scheduler, the workers and
            this client keep per past task (``trim_scheduler_memory``, ``clear_key_cache``), so that
            their memory stays flat however many tasks run; 0 never.

    Returns:
        SubmitStats: counts and the failures (the caller decides whether to raise).
    """
    from distributed import as_completed

    kwargs = kwargs or {}
    stats = SubmitStats()
    start = time.perf_counter()
    iterator: Iterator[Any] = iter(items)
    in_flight: dict[str, tuple[Any, Any]] = {}
    completed = as_completed(loop=client.loop, with_results=True, raise_errors=False)
    dynamic = isinstance(max_in_flight, str) or max_in_flight is None
    limit = parse_max_in_flight(max_in_flight, worker_threads(client))
    last_refresh = time.monotonic()
    exhausted = False
    requeued: collections.deque[Any] = collections.deque()
    next_trim = trim_every

    def fill() -> None:
        nonlocal exhausted
        room = limit - len(in_flight)
        # refill in batches (one client.map call each) once half the window is free: fewer scheduler
        # messages, and the scheduler keeps a few hundred bytes of span metadata per call, not per task
        if (exhausted and not requeued) or room < max(1, limit // 2):
            return
        batch = [requeued.popleft() for _ in range(min(room, len(requeued)))]
        if not exhausted and len(batch) < room:
            batch += itertools.islice(iterator, room - len(batch))
            if len(batch) < room:
                exhausted = True
        if not batch:
            return
        keys = [key(item) for item in batch]
        extra = [[a] * len(batch) for a in args]
        futures = client.map(
            function, batch, *extra, key=keys, retries=retries, resources=resources, pure=False, **kwargs
        )
        for k, item, future in zip(keys, batch, futures):
            in_flight[k] = (item, future)
        completed.update(futures)
        stats.submitted += len(batch)
        stats.max_in_flight = max(stats.max_in_flight, len(in_flight))

    try:
        fill()
        while in_flight:
            batch = completed.next_batch(block=True)
            for future, result in batch:
                item, _ = in_flight.pop(future.key)
                if future.status == "finished" and not isinstance(result, NotRetried):
                    stats.finished += 1
                    if on_done is not None:
                        on_done(item, result)
                else:
                    if isinstance(result, NotRetried):
                        failure = BlockFailure(future.key, item, f"{result.error} (not retried: it would recur)",
                                               result.traceback)
                    else:
                        failure = _failure(future, item, result)
                    instead: list[Sequence[int]] = list(on_failed(failure) or ()) if on_failed is not None else []
                    if instead:
                        logger.warning("task %s failed (%s): running its %d parts one by one", failure.key,
                                       failure.error, len(instead))
                        requeued.extend(instead)
                    else:
                        logger.error("task %s failed: %s", failure.key, failure.error)
                        stats.failures.append(failure)
                del future
            if max_failures is not None and len(stats.failures) >= max_failures and not exhausted:
                logger.error("%d tasks failed: submitting no more", len(stats.failures))
                stats.stopped_early = True
                exhausted = True
                requeued.clear()
            if trim_every and stats.submitted >= next_trim:
                next_trim = stats.submitted + trim_every
                _trim(client)
            if dynamic and time.monotonic() - last_refresh > refresh_seconds:
                limit = parse_max_in_flight(max_in_flight, worker_threads(client))
                last_refresh = time.monotonic()
            fill()
    except BaseException:
        pending = [f for _, f in in_flight.values()]
        if pending:
            logger.warning("stopping: cancelling %d tasks in flight", len(pending))
            try:
                client.cancel(pending)
            except Exception:  # the original exception matters more than a failed cancel
                logger.warning("could not cancel the tasks in flight", exc_info=True)
        raise
    finally:
        completed.clear()
        stats.seconds = time.perf_counter() - start
    return stats


def _trim(client) -> None:
    """Trim the per-task leftovers of the scheduler, the workers and this process (memory only: a
    failure is logged, never fails the run)."""
    try:
        dropped = client.run_on_scheduler(trim_scheduler_memory)
        held = client.run(clear_key_cache)
        logger.debug("trimmed per-task memory: scheduler %s, workers %d keys", dropped, sum(held.values()))
    except Exception:
        logger.warning("could not trim the cluster's per-task memory", exc_info=True)
    clear_key_cache()


def _failure(future, item, result) -> BlockFailure:
    """A BlockFailure from an errored (or cancelled) future and what as_completed gave for it."""
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[1], BaseException):
        _, exc, tb = result
        text = "".join(tb_module.format_exception(type(exc), exc, tb))
        return BlockFailure(future.key, item, f"{type(exc).__name__}: {exc}", text)
    if isinstance(result, BaseException):
        return BlockFailure(future.key, item, f"{type(result).__name__}: {result}")
    return BlockFailure(future.key, item, f"task ended with status {future.status!r}")
