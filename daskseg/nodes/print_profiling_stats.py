"""``PrintProfilingStats``: log where the time of the upstream nodes goes."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from typing import cast

from ..batch import Batch, BatchRequest
from ..pipeline import BatchFilter
from ..profiling import ProfilingStats

logger = logging.getLogger(__name__)


def format_profiling_table(stats: ProfilingStats, upstream_seconds: list[float] | None = None) -> str:
    """A table of ``stats``: per node and method the counts, min/max/mean/median and total seconds,
    and the method's share of the summed totals; ``upstream_seconds`` (wall-clock per batch) add a
    TOTAL line."""
    header = (
        f"{'NODE':<30}{'METHOD':<10}{'COUNTS':>8}{'MIN':>10}{'MAX':>10}{'MEAN':>10}{'MEDIAN':>10}"
        f"{'TOTAL':>11}{'SHARE':>8}"
    )
    lines = ["", "Profiling Stats", "===============", "", header]
    grand_total = stats.total_time()
    for (node, method), values in sorted(stats.timings.items()):
        if not values:
            continue
        total = sum(values)
        share = 100.0 * total / grand_total if grand_total > 0 else 0.0
        lines.append(
            f"{node[:29]:<30}{(method or '')[:9]:<10}{len(values):>8d}{min(values):>10.4f}{max(values):>10.4f}"
            f"{statistics.fmean(values):>10.4f}{statistics.median(values):>10.4f}{total:>11.3f}{share:>7.1f}%"
        )
    lines.append("")
    lines.append(f"{'sum of node times':<48}{'':>40}{grand_total:>11.3f}")
    if upstream_seconds:
        lines.append(
            f"{'TOTAL upstream (wall)':<40}{len(upstream_seconds):>8d}{min(upstream_seconds):>10.4f}"
            f"{max(upstream_seconds):>10.4f}{statistics.fmean(upstream_seconds):>10.4f}"
            f"{statistics.median(upstream_seconds):>10.4f}{sum(upstream_seconds):>11.3f}"
        )
    lines.append("")
    return "\n".join(lines)


class PrintProfilingStats(BatchFilter):
    """Log (``logging.info``) how long the nodes upstream of this one took, every ``every`` batches.

    The table lists, per node and method (``provide`` for sources, ``prepare``/``process`` for
    filters, which exclude the time spent upstream of them), how often it ran, min/max/mean/median
    and total seconds, and its share of the summed node times, over the batches since the last
    table. A TOTAL line gives the wall-clock time per batch spent upstream of this node. The batches
    of an unfinished window are reported when the pipeline is torn down (e.g. after a ``Scan`` of
    fewer than ``every`` chunks). Enable the output with ``logging.basicConfig(level=logging.INFO)``.

    Args:

        every (``int``):

            Collect the statistics of that many batches, then log them and start anew.
    """

    thread_safe = True

    def __init__(self, every: int = 1):
        self.every = max(1, int(every))
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.accumulated_stats = ProfilingStats()
        self.upstream_seconds: list[float] = []

    def setup(self) -> None:
        self._reset()

    def prepare(self, request: BatchRequest) -> None:
        request.plan = time.perf_counter()

    def process(self, batch: Batch, request: BatchRequest) -> None:
        upstream = time.perf_counter() - cast(float, request.plan)
        with self._lock:
            self.n += 1
            self.accumulated_stats.merge_with(batch.profiling_stats)
            self.upstream_seconds.append(upstream)
            if self.n % self.every != 0:
                return
            table = self._take_table()
        logger.info("%s", table)

    def teardown(self) -> None:
        with self._lock:
            table = self._take_table() if self.upstream_seconds else None
        if table is not None:
            logger.info("%s", table)

    def _take_table(self) -> str:
        """The table of the batches since the last one; starts a new window."""
        table = format_profiling_table(self.accumulated_stats, self.upstream_seconds)
        self.accumulated_stats = ProfilingStats()
        self.upstream_seconds = []
        return table
