"""``MergeProvider``: join upstream providers that deliver different keys."""

from __future__ import annotations

import logging

from ..array import ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import PipelineError, SpecError
from ..pipeline import BatchProvider

logger = logging.getLogger(__name__)


class MergeProvider(BatchProvider):
    """Merge different providers::

        (a, b, c) + MergeProvider()

    creates a provider that combines the arrays offered by ``a``, ``b`` and ``c``. Each request
    is split by key and sent to the upstream providing that key; the batches are joined. The
    keys of ``a``, ``b`` and ``c`` must be disjoint (a key provided twice raises a
    ``SpecError`` naming both providers).
    """

    thread_safe = True

    _times_itself = True  # provide() is mostly upstream time; do not count it twice

    # placeholders pass on to the upstreams, whose filters may need their ROIs
    _accepts_placeholders = True

    def __init__(self):
        self.key_to_provider: dict[ArrayKey, BatchProvider] = {}

    def setup(self) -> None:
        upstreams = self.get_upstream_providers()
        if not upstreams:
            raise PipelineError("MergeProvider needs at least one upstream provider: (a, b) + MergeProvider()")
        self.key_to_provider = {}
        for provider in upstreams:
            for key, spec in provider.spec.items():
                if key in self.key_to_provider:
                    raise SpecError(
                        f"MergeProvider: {key} is provided by both {self.key_to_provider[key].name()} and "
                        f"{provider.name()}; MergeProvider only merges providers of different keys"
                    )
                self.key_to_provider[key] = provider
                self.provides(key, spec)

    def provide(self, request: BatchRequest) -> Batch:
        upstream_requests: dict[int, BatchRequest] = {}
        providers: dict[int, BatchProvider] = {}
        for key, spec in request.items():
            provider = self.key_to_provider[key]
            sub = upstream_requests.setdefault(id(provider), BatchRequest(random_seed=request.random_seed))
            providers[id(provider)] = provider
            sub[key] = spec

        merged = Batch()
        for pid, sub in upstream_requests.items():
            if all(s.placeholder for s in sub.values()):
                continue
            batch = providers[pid].request_batch(sub)
            for key, array in batch.items():
                merged[key] = array
            merged.profiling_stats.merge_with(batch.profiling_stats)
        return merged
