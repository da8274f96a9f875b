"""``ProducerPool``: importable for ported scripts, not supported (a gunpowder internal)."""

from __future__ import annotations

from ._unsupported import Unsupported


class ProducerPool(Unsupported):
    """gunpowder's pool of worker processes behind ``PreCache``. daskseg does not expose one: use
    :class:`PreCache` (``num_workers``) for parallel batches, or a Dask cluster (``daskseg.cluster``)."""

    instead = "use PreCache(num_workers=...) for parallel batches, or a Dask cluster (daskseg.cluster)"
