"""``DaisyRequestBlocks``: run the pipeline once per block handed out by a daisy scheduler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..batch import Batch, BatchRequest
from ..errors import RequestError
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)

DASK_WAY = (
    "daskseg's Dask way to run a pipeline block by block is daskseg.blockwise.run_pipeline(pipeline, reference, "
    "roi_map, record_dir) (the resumable blockwise runner behind `daskseg predict`), or Scan in one process"
)


class DaisyRequestBlocks(BatchFilter):
    """Iteratively requests batches similar to ``reference`` from upstream, with their ROIs set to
    the blocks a ``daisy`` scheduler hands to this worker. Needs ``daisy`` installed (and must run
    inside a daisy worker); without it, constructing the node raises an ``ImportError`` that names
    daskseg's Dask way.

    The request to this node has to be empty.

    Args:

        reference (:class:`BatchRequest`):

            A reference request, its ROIs replaced per block (see ``roi_map``).

        roi_map (``dict`` from :class:`ArrayKey` to ``str``):

            Which block ROI (``"read_roi"`` or ``"write_roi"``) each key of the reference gets.

        num_workers (``int``, optional):

            Only 1 is supported (gunpowder's multiprocessing workers are not).

        block_done_callback (function, optional):

            Called as ``(block, start, duration)`` after each block (seconds, ``time.time()``).
    """

    def __init__(
        self,
        reference: BatchRequest,
        roi_map: dict,
        num_workers: int = 1,
        block_done_callback: Callable | None = None,
    ):
        try:
            import daisy  # noqa: F401
        except ImportError as e:
            raise ImportError(f"DaisyRequestBlocks needs daisy (pip install daisy); {DASK_WAY}") from e
        if num_workers != 1:
            raise NotImplementedError(f"DaisyRequestBlocks(num_workers={num_workers}): only 1 is supported; {DASK_WAY}")
        for key, name in roi_map.items():
            if name not in ("read_roi", "write_roi"):
                raise ValueError(f"DaisyRequestBlocks: roi_map[{key}] must be 'read_roi' or 'write_roi', not {name!r}")
        self.reference = reference
        self.roi_map = roi_map
        self.num_workers = num_workers
        self.block_done_callback = block_done_callback

    def provide(self, request: BatchRequest) -> Batch:
        import daisy

        if len(request) != 0:
            raise RequestError("requests made to DaisyRequestBlocks have to be empty")
        client = daisy.Client()
        upstream = self.get_upstream_provider()
        while True:
            with client.acquire_block() as block:
                if block is None:
                    break
                start = time.time()
                block_request = self.reference.copy()
                for key, name in self.roi_map.items():
                    block_request[key].roi = getattr(block, name)
                upstream.request_batch(block_request)
                if self.block_done_callback is not None:
                    self.block_done_callback(block, start, time.time() - start)
        return Batch()
