"""Per-node timings that travel with each batch, summarised by ``PrintProfilingStats``.

The query interface is gunpowder's: ``Timing.elapsed()``, ``get_node_name()``,
``ProfilingStats.get_timing_summaries()``/``get_timing_summary(node, method)`` returning
``TimingSummary`` objects (``counts()``, ``min()``, ``max()``, ``mean()``, ``median()``),
``span()`` (first start, last stop) and ``span_time()``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict


class Seconds(float):
    """A number of seconds that can also be called, so both ``timing.elapsed`` (daskseg) and
    ``timing.elapsed()`` (gunpowder) read it."""

    def __call__(self) -> float:
        return float(self)


class Timing:
    """Wall-clock time one node spent in one method (``prepare``, ``process``, ``provide``) for one batch."""

    def __init__(self, node: object, method_name: str | None = None):
        self.node_name = node if isinstance(node, str) else getattr(node, "name", lambda: type(node).__name__)()
        self.method_name = method_name
        self._elapsed = 0.0
        self._start: float | None = None
        self._first_start: float | None = None
        self._last_stop: float | None = None

    @property
    def elapsed(self) -> Seconds:
        """Seconds between ``start()`` and ``stop()`` (summed over repeated starts)."""
        return Seconds(self._elapsed)

    @elapsed.setter
    def elapsed(self, seconds: float) -> None:
        self._elapsed = float(seconds)

    def start(self) -> None:
        self._start = time.perf_counter()
        if self._first_start is None:
            self._first_start = time.time()

    def stop(self) -> None:
        if self._start is not None:
            self._elapsed += time.perf_counter() - self._start
            self._start = None
            self._last_stop = time.time()

    def span(self) -> tuple[float | None, float | None]:
        """Timestamps (``time.time()``) of the first ``start()`` and the last ``stop()``."""
        return self._first_start, self._last_stop

    def get_node_name(self) -> str:
        return self.node_name

    def get_method_name(self) -> str | None:
        return self.method_name

    def __enter__(self) -> Timing:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class TimingSummary:
    """Repeated timings (in seconds) of one node's method, queried for statistics (gunpowder's)."""

    def __init__(self, times: list[float] | None = None):
        self.times: list[float] = list(times or [])

    def add(self, timing: Timing) -> None:
        self.times.append(float(timing.elapsed))

    def merge(self, other: TimingSummary) -> None:
        self.times.extend(other.times)

    def counts(self) -> int:
        return len(self.times)

    def min(self) -> float:
        return min(self.times)

    def max(self) -> float:
        return max(self.times)

    def mean(self) -> float:
        return statistics.fmean(self.times)

    def median(self) -> float:
        return statistics.median(self.times)


class ProfilingStats:
    """A bag of timings keyed by (node name, method name); merged as batches flow downstream."""

    def __init__(self):
        self.timings: dict[tuple[str, str | None], list[float]] = defaultdict(list)
        self._span: tuple[float | None, float | None] = (None, None)

    def _extend_span(self, first: float | None, last: float | None) -> None:
        a, b = self._span
        a = first if a is None else a if first is None else min(a, first)
        b = last if b is None else b if last is None else max(b, last)
        self._span = (a, b)

    def add(self, timing: Timing) -> None:
        self.timings[(timing.node_name, timing.method_name)].append(float(timing.elapsed))
        self._extend_span(*timing.span())

    def merge_with(self, other: ProfilingStats) -> None:
        for key, values in other.timings.items():
            self.timings[key].extend(values)
        self._extend_span(*other._span)

    def total_time(self) -> float:
        """Total seconds of all timings."""
        return sum(sum(v) for v in self.timings.values())

    def get_timing_summaries(self) -> dict[tuple[str, str | None], TimingSummary]:
        """A dictionary (node name, method name) -> :class:`TimingSummary`."""
        return {key: TimingSummary(values) for key, values in self.timings.items()}

    def get_timing_summary(self, node_name: str, method_name: str | None = None) -> TimingSummary:
        """The :class:`TimingSummary` of one node's method (``None``: the node's ``provide``).

        Raises ``RuntimeError`` (as gunpowder) naming the summaries there are when there is none.
        """
        for key in ((node_name, method_name), (node_name, "provide") if method_name is None else None):
            if key is not None and key in self.timings:
                return TimingSummary(self.timings[key])
        raise RuntimeError(
            f"No timing summary for node {node_name}, method {method_name}; there are {sorted(self.timings, key=str)}"
        )

    def span(self) -> tuple[float | None, float | None]:
        """Timestamps of the first call to ``start()`` and the last call to ``stop()`` over all timings."""
        return self._span

    def span_time(self) -> float:
        """Seconds between the first ``start()`` and the last ``stop()`` over all timings."""
        first, last = self._span
        return 0.0 if first is None or last is None else last - first

    def __getstate__(self):
        return {"timings": dict(self.timings), "span": self._span}

    def __setstate__(self, state):
        self.timings = defaultdict(list, state["timings"])
        self._span = state["span"]
