"""``RandomProvider``: relay each request to one randomly chosen upstream provider."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..array import Array, ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import PipelineError, SpecError
from ..pipeline import BatchProvider

logger = logging.getLogger(__name__)


class RandomProvider(BatchProvider):
    """Randomly select one of the upstream providers for each request::

        (a, b, c) + RandomProvider()

    creates a provider that relays each request to ``a``, ``b`` or ``c``. The choice is drawn
    from the node's seeded random stream, so the same request seed picks the same provider.

    The provided spec is what every upstream can deliver: the keys all upstreams provide, each
    with the intersection of their ROIs. Keys missing from some upstreams are dropped (with a
    log message); upstreams that share no key at all, or that disagree on the voxel size or
    data type of a key, raise a ``SpecError``.

    Args:

        probabilities (1-D array-like, optional):

            Probabilities for choosing the upstream providers, in the same order. They do not
            need to be normalized. Default is ``None``, equal probabilities.

        random_provider_key (:class:`ArrayKey`, optional):

            If given, this node provides a nonspatial array under this key holding the index of
            the chosen upstream provider.
    """

    thread_safe = True

    _times_itself = True  # provide() is mostly upstream time; do not count it twice

    # placeholders pass on to the upstreams, whose filters may need their ROIs
    _accepts_placeholders = True

    def __init__(self, probabilities: Sequence[float] | None = None, random_provider_key: ArrayKey | None = None):
        if probabilities is not None:
            p = np.asarray(probabilities, dtype=np.float64)
            if p.ndim != 1 or np.any(p < 0) or p.sum() <= 0:
                raise ValueError(
                    f"RandomProvider: probabilities must be non-negative and not all zero, got {list(probabilities)}"
                )
            probabilities = list(p / p.sum())
        self.probabilities = probabilities
        self.random_provider_key = random_provider_key

    def setup(self) -> None:
        upstreams = self.get_upstream_providers()
        if not upstreams:
            raise PipelineError("RandomProvider needs at least one upstream provider: (a, b, c) + RandomProvider()")
        if self.probabilities is not None and len(self.probabilities) != len(upstreams):
            raise PipelineError(
                f"RandomProvider: {len(self.probabilities)} probabilities given for {len(upstreams)} upstream providers"
            )

        common = set(upstreams[0].spec)
        for provider in upstreams[1:]:
            common &= set(provider.spec)
        if not common:
            raise SpecError(
                "RandomProvider: the upstream providers share no key: "
                + "; ".join(f"{p.name()} provides {sorted(p.spec)}" for p in upstreams)
            )
        dropped = set().union(*(set(p.spec) for p in upstreams)) - common
        if dropped:
            logger.info("RandomProvider: %s not provided by every upstream, not provided here", sorted(dropped))

        for key in sorted(common):
            self.provides(key, self._common_spec(key, upstreams))

        if self.random_provider_key is not None:
            self.provides(self.random_provider_key, ArraySpec(nonspatial=True))

    def _common_spec(self, key: ArrayKey, upstreams: list[BatchProvider]) -> ArraySpec:
        spec = upstreams[0].spec[key].copy()
        for provider in upstreams[1:]:
            other = provider.spec[key]
            for field in ("voxel_size", "dtype", "nonspatial"):
                if getattr(other, field) != getattr(spec, field):
                    raise SpecError(
                        f"RandomProvider: {key} has {field} {getattr(spec, field)} in {upstreams[0].name()} but "
                        f"{getattr(other, field)} in {provider.name()}; upstreams must agree"
                    )
            if spec.roi is not None and other.roi is not None:
                spec.roi = spec.roi.intersect(other.roi)
            if spec.interpolatable != other.interpolatable:
                spec.interpolatable = spec.interpolatable and other.interpolatable
        if spec.roi is not None and spec.roi.empty:
            logger.warning("RandomProvider: the upstream ROIs of %s do not overlap; no ROI of it can be requested", key)
        return spec

    def provide(self, request: BatchRequest) -> Batch:
        upstreams = self.get_upstream_providers()
        rng = self.random_generator(request)
        index = int(rng.choice(len(upstreams), p=self.probabilities))
        upstream_request = request.copy()
        if self.random_provider_key is not None and self.random_provider_key in upstream_request:
            del upstream_request[self.random_provider_key]
        logger.debug("RandomProvider: relaying request to upstream %d (%s)", index, upstreams[index].name())
        batch = upstreams[index].request_batch(upstream_request)
        if self.random_provider_key is not None:
            batch[self.random_provider_key] = Array(np.array(index), ArraySpec(nonspatial=True))
        return batch
