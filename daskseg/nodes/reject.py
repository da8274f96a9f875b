"""``Reject``: request batches from upstream until one has enough of its mask set."""

from __future__ import annotations

import logging
import time

from ..array import ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, RequestError, SpecError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class Reject(BatchFilter):
    """Reject batches based on the masked-in vs. masked-out ratio.

    If a pipeline also contains a :class:`RandomLocation` node, :class:`Reject` needs to be placed
    downstream of it. Every new attempt asks upstream with a new random seed drawn from this node's
    stream, so a seeded pipeline rejects and accepts the same batches on every run.

    Args:

        mask (:class:`ArrayKey`, optional):

            The mask to use, if any.

        min_masked (``float``, optional):

            The minimal required ratio of masked-in vs. masked-out voxels (the mask's mean must be
            greater). Defaults to 0.5.

        ensure_nonempty (:class:`GraphKey`, optional):

            gunpowder's option to require a graph node in the batch; daskseg has no graphs yet,
            so giving it raises ``NotImplementedError``.

        reject_probability (``float``, optional):

            The probability by which a batch that is not valid (less than min_masked) is actually
            rejected. Defaults to 1., i.e. strict rejection.
    """

    thread_safe = True

    def __init__(
        self,
        mask: ArrayKey | None = None,
        min_masked: float = 0.5,
        ensure_nonempty=None,
        reject_probability: float = 1.0,
    ):
        if ensure_nonempty is not None:
            raise NotImplementedError(
                "Reject(ensure_nonempty=...) needs graphs, which daskseg does not have yet; reject on a mask instead"
            )
        if mask is not None and not isinstance(mask, ArrayKey):
            raise ArgumentError(f"Reject: mask must be an ArrayKey, got {mask!r}")
        if not 0.0 <= reject_probability <= 1.0:
            raise ArgumentError(f"Reject: reject_probability must be in [0, 1], got {reject_probability}")
        self.mask = mask
        self.min_masked = min_masked
        self.ensure_nonempty = ensure_nonempty
        self.reject_probability = reject_probability

    def setup(self) -> None:
        if self.mask is not None and self.mask not in self.spec:
            raise SpecError(f"Reject: mask {self.mask} is not provided upstream; provided: {sorted(self.spec)}")

    def provide(self, request: BatchRequest) -> Batch:
        if self.mask is not None and self.mask not in request:
            raise RequestError(f"Reject: the request must contain the mask {self.mask}; it has {sorted(request)}")
        rng = self.random_generator(request)
        upstream = self.get_upstream_provider()
        started = time.monotonic()
        report_after = 10.0
        num_rejected = 0
        while True:
            attempt = request.copy()
            attempt.random_seed = int(rng.integers(2**63))
            batch = upstream.request_batch(attempt)
            if self.mask is None:
                return batch
            ratio = float(batch[self.mask].data.mean())
            good = ratio > self.min_masked
            if not good and self.reject_probability < 1.0:
                good = rng.random() > self.reject_probability
            if good:
                logger.debug("Reject: accepted batch with mask ratio %f at %s", ratio, batch[self.mask].spec.roi)
                return batch
            num_rejected += 1
            logger.debug("Reject: rejected batch with mask ratio %f at %s", ratio, batch[self.mask].spec.roi)
            waited = time.monotonic() - started
            if waited > report_after:
                logger.warning("Reject: rejected %d batches, waiting for a good one since %ds", num_rejected, int(waited))
                report_after *= 2
