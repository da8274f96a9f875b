"""Per-node timings that travel with each batch, summarised by ``PrintProfilingStats``."""

from __future__ import annotations

import time
from collections import defaultdict


class Timing:
    """Wall-clock time one node spent in one method (``prepare``, ``process``, ``provide``) for one batch."""

    def __init__(self, node: object, method_name: str):
        self.node_name = node if isinstance(node, str) else getattr(node, "name", lambda: type(node).__name__)()
        self.method_name = method_name
        self.elapsed = 0.0
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        if self._start is not None:
            self.elapsed += time.perf_counter() - self._start
            self._start = None

    def __enter__(self) -> "Timing":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ProfilingStats:
    """A bag of timings keyed by (node name, method name); merged as batches flow downstream."""

    def __init__(self):
        self.timings: dict[tuple[str, str], list[float]] = defaultdict(list)

    def add(self, timing: Timing) -> None:
        self.timings[(timing.node_name, timing.method_name)].append(timing.elapsed)

    def merge_with(self, other: "ProfilingStats") -> None:
        for key, values in other.timings.items():
            self.timings[key].extend(values)

    def span(self) -> float:
        """Total seconds of all timings."""
        return sum(sum(v) for v in self.timings.values())

    def __getstate__(self):
        return dict(self.timings)

    def __setstate__(self, state):
        self.timings = defaultdict(list, state)
