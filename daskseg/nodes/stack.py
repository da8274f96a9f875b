"""``Stack``: several upstream batches stacked along a new leading axis."""

from __future__ import annotations

import logging

import numpy as np

from ..array import Array
from ..batch import Batch, BatchRequest
from ..graph import GraphKey
from ..pipeline import BatchFilter
from ..profiling import Timing

logger = logging.getLogger(__name__)


class Stack(BatchFilter):
    """Request several batches and stack them together, introducing a new (leading) dimension
    for each array. This is useful to create batches with several samples and only makes sense
    if there is a source of randomness upstream.

    Every upstream request gets its own random seed, drawn from the seed of the request, so the
    samples differ from each other and the same request still gives the same stacked batch.
    ROIs and voxel sizes are those of the upstream arrays. Requested graphs are not stacked: the
    batch holds the first upstream batch's graph, as gunpowder's does.

    Args:

        num_repetitions (``int``):

            How many upstream batches to stack.
    """

    thread_safe = True

    def __init__(self, num_repetitions: int):
        if int(num_repetitions) != num_repetitions or num_repetitions < 1:
            raise ValueError(f"Stack: num_repetitions must be a positive integer, got {num_repetitions!r}")
        self.num_repetitions = int(num_repetitions)

    def provide(self, request: BatchRequest) -> Batch:
        rng = self.random_generator(request)
        seeds = rng.integers(0, 2**32, size=self.num_repetitions)
        upstream = request.copy()
        upstream.remove_placeholders()
        batches = []
        for seed in seeds:
            upstream_request = upstream.copy()
            upstream_request.random_seed = int(seed)
            batches.append(self.get_upstream_provider().request_batch(upstream_request))

        timing = Timing(self, "provide")
        with timing:
            batch = Batch()
            for b in batches:
                batch.profiling_stats.merge_with(b.profiling_stats)
            for key in upstream:
                if isinstance(key, GraphKey):  # graphs are not stacked: the first batch's, as in gunpowder
                    batch[key] = batches[0][key]
                    continue
                first = batches[0][key]
                data = np.stack([b[key].data for b in batches])
                batch[key] = Array(data, first.spec.copy(), first.attrs)
            for attr in ("iteration", "loss", "affinity_neighborhood"):
                setattr(batch, attr, getattr(batches[0], attr))
        batch.profiling_stats.add(timing)
        return batch
