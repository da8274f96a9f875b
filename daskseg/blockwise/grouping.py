"""Blocks per Dask task: fixed groups, or groups sized from measured block times.

Every Dask task costs the scheduler a few milliseconds, whatever it does; a volume of cheap blocks
(a small network, a simple filter, blocks that are mostly done) would then spend most of its time
scheduling. ``AdaptiveGroups`` starts with one block per task and, as tasks report how long their
blocks took, packs consecutive blocks into tasks of about ``target_seconds`` each, so that the
per-task cost stays a small fraction of the work. Expensive blocks (a U-Net on a CPU) stay one per
task, which keeps retries, the done record and the progress bar fine-grained.

A group of consecutive indices is a ``range`` (a few bytes however many blocks it holds: the
scheduler keeps its last thousand messages to each worker, task arguments included), others a tuple.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Iterable, Iterator, Sequence

DEFAULT_TARGET_SECONDS = 0.5
DEFAULT_MAX_BLOCKS = 1024


def compact(group: Sequence[int]) -> Sequence[int]:
    """``group`` as a ``range`` if its indices are consecutive, else as a tuple."""
    if len(group) > 1 and group[-1] - group[0] == len(group) - 1 and all(b - a == 1 for a, b in zip(group, group[1:])):
        return range(group[0], group[-1] + 1)
    return tuple(group)


def fixed_groups(indices: Iterable[int], size: int) -> Iterator[Sequence[int]]:
    """Indices in groups of ``size`` (the last one shorter), in order."""
    if size < 1:
        raise ValueError(f"blocks per task must be at least 1, got {size}")
    group: list[int] = []
    for i in indices:
        group.append(i)
        if len(group) == size:
            yield compact(group)
            group = []
    if group:
        yield compact(group)


def max_blocks_per_task(pending: int, threads: int) -> int:
    """The largest group for ``pending`` blocks on ``threads`` worker threads: a quarter of one
    thread's share (so that the tail of a run stays balanced), at most ``DEFAULT_MAX_BLOCKS``."""
    return max(1, min(DEFAULT_MAX_BLOCKS, pending // (4 * max(threads, 1))))


class AdaptiveGroups:
    """Indices in groups (in order) whose size follows the measured seconds per block.

    Iterate to get the groups (lazily: each group is sized when it is taken); call
    ``observe(blocks, seconds)`` when a task finished. The size is ``target_seconds`` divided by the
    median seconds per block of the last ``window`` tasks, between 1 and ``max_blocks``.

    Args:
        indices (Iterable[int]): the block indices, in the order to run them.
        target_seconds (float): the wanted duration of one task.
        max_blocks (int): the most blocks in one task (keeps the tail of a run balanced across
            workers and the work a failed task repeats bounded).
        window (int): how many recent tasks the estimate uses.
    """

    def __init__(
        self,
        indices: Iterable[int],
        target_seconds: float = DEFAULT_TARGET_SECONDS,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
        window: int = 32,
    ):
        if target_seconds <= 0:
            raise ValueError(f"target_seconds must be positive, got {target_seconds}")
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be at least 1, got {max_blocks}")
        self._indices = iter(indices)
        self.target_seconds = float(target_seconds)
        self.max_blocks = int(max_blocks)
        self._recent: collections.deque[float] = collections.deque(maxlen=window)
        self.size = 1

    def observe(self, blocks: int, seconds: float) -> None:
        """A task of ``blocks`` blocks took ``seconds`` (reading, processing and writing them)."""
        if blocks < 1:
            return
        self._recent.append(max(float(seconds), 0.0) / blocks)
        per_block = statistics.median(self._recent)
        wanted = self.target_seconds / per_block if per_block > 0 else self.max_blocks
        self.size = int(min(max(wanted, 1), self.max_blocks))

    def __iter__(self) -> Iterator[Sequence[int]]:
        while True:
            group = [i for _, i in zip(range(self.size), self._indices)]
            if not group:
                return
            yield compact(group)
