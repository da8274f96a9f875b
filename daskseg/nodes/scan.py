"""``Scan``: tile a reference request over a volume, to predict (and write) all of it chunk by chunk."""

from __future__ import annotations

import collections
import itertools
import logging
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ..array import Array, ArrayKey
from ..batch import Batch, BatchRequest, ProviderSpec
from ..errors import RequestError, SpecError
from ..geometry import Coordinate, Roi
from ..graph import Graph, GraphKey
from ..pipeline import BatchFilter
from .scan_callback import ScanCallback

logger = logging.getLogger(__name__)


class Scan(BatchFilter):
    """Request ``reference``-sized batches from upstream in a scanning fashion until the requested
    ROIs (or, for an empty request, the whole upstream ROIs) are covered.

    The reference is shifted on a grid whose stride is its smallest ROI shape (per dimension), such
    that every key's shifted ROI stays inside what upstream provides; the last chunk of each
    dimension is shifted back inside, overlapping its neighbour, so the whole region is covered.

    - With an **empty** request, Scan covers the upstream ROIs of the reference keys completely,
      driving every chunk through the nodes upstream (e.g. ``Predict`` and a ``ZarrWrite`` or
      ``Hdf5Write``), and returns an empty batch: the whole volume is processed without ever being
      held in memory. This is the tutorial's prediction pipeline.
    - With a **non-empty** request (keys of the reference), Scan covers just the requested ROIs and
      returns each requested array assembled from the chunks, equal to what a single large request
      would give for nodes that work locally (such as a U-Net's valid convolutions).

    Args:

        reference (:class:`BatchRequest`):

            The request to shift over the volume, e.g. the network's ``request.add(raw, input_size);
            request.add(pred_affs, output_size)``.

        num_workers (``int``):

            With more than 1, that many threads request chunks from upstream at once. Every daskseg node
            serves concurrent requests (``thread_safe``); a node that keeps per-request state on ``self``
            (``thread_safe = False``, the default of custom nodes) serves them one at a time. Returned arrays
            do not depend on it.

        cache_size (``int``):

            How many chunks may be requested but not yet consumed at once (bounds memory with several
            workers).

        progress_callback (:class:`ScanCallback`, optional):

            Told the number of chunks, each chunk done and the end of the scan (gunpowder's interface).
            Without one, progress is logged.
    """

    thread_safe = True

    def __init__(
        self,
        reference: BatchRequest,
        num_workers: int = 1,
        cache_size: int = 50,
        progress_callback: ScanCallback | None = None,
    ):
        self.reference = reference.copy()
        self.progress_callback = progress_callback
        self.num_workers = max(1, int(num_workers))
        self.cache_size = max(1, int(cache_size))
        if len(self.reference) == 0:
            raise SpecError("Scan needs a reference request with at least one array")
        for key, spec in self.reference.items():
            if spec.roi is None or spec.roi.unbounded or spec.roi.empty:
                raise SpecError(f"Scan: reference ROI of {key} must be bounded and non-empty, got {spec.roi}")
        self._executor: ThreadPoolExecutor | None = None

    # --- set-up ------------------------------------------------------------------------------
    def setup(self) -> None:
        for key, spec in self.reference.items():
            if key not in self.spec:
                raise SpecError(
                    f"Scan: reference asks for {key}, which is not provided upstream; provided: {sorted(self.spec)}"
                )
            vs = getattr(self.spec[key], "voxel_size", None)  # graphs have none
            if vs is not None and not spec.roi.is_aligned(vs):
                raise SpecError(
                    f"Scan: reference ROI {spec.roi} of {key} is not aligned with its voxel size {vs}; make the "
                    f"input/output sizes differ by an even number of voxels"
                )
        self._lcm = self.spec.get_lcm_voxel_size(list(self.reference)) or Coordinate((1,) * self._dims())
        self.stride = self._stride()
        # fail early if the reference fits nowhere upstream
        self._upstream_shifts()
        if self.num_workers > 1:
            self._executor = ThreadPoolExecutor(max_workers=self.num_workers, thread_name_prefix="scan")

    def teardown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _dims(self) -> int:
        return next(iter(self.reference.values())).roi.dims

    def _stride(self) -> Coordinate:
        """The smallest reference ROI shape per dimension, on the grid of all reference voxel sizes."""
        shapes = [spec.roi.shape for spec in self.reference.values()]
        stride = Coordinate(min(values) for values in zip(*shapes))
        if any(s < m for s, m in zip(stride, self._lcm)):
            raise SpecError(
                f"Scan: reference ROIs {[str(s.roi) for s in self.reference.values()]} are smaller than the least "
                f"common multiple {self._lcm} of their voxel sizes"
            )
        return (stride // self._lcm) * self._lcm

    def _upstream_shifts(self) -> tuple[list[int | None], list[int | None]]:
        """Per dimension, the smallest and largest shift of the reference that keeps every key's ROI
        inside the ROI upstream provides (None where no key is bounded)."""
        dims = self._dims()
        lo: list[int | None] = [None] * dims
        hi: list[int | None] = [None] * dims
        for key, ref in self.reference.items():
            provided = self.spec[key].roi
            if provided is None:
                continue
            for d in range(dims):
                if provided.shape[d] is None:
                    continue
                k_lo = provided.begin[d] - ref.roi.begin[d]
                k_hi = provided.end[d] - ref.roi.end[d]
                lo[d] = k_lo if lo[d] is None else max(lo[d], k_lo)
                hi[d] = k_hi if hi[d] is None else min(hi[d], k_hi)
        lcm = self._lcm
        lo = [None if v is None else -(-v // m) * m for v, m in zip(lo, lcm)]
        hi = [None if v is None else (v // m) * m for v, m in zip(hi, lcm)]
        for d in range(dims):
            low, high = lo[d], hi[d]
            if low is not None and high is not None and high < low:
                fits = "\n".join(
                    f"  {key}: reference {ref.roi}, provided {self.spec[key].roi}"
                    for key, ref in self.reference.items()
                )
                raise RequestError(
                    f"Scan: the reference does not fit inside what upstream provides (dimension {d}); no shift "
                    f"keeps every reference ROI inside the provided ROI:\n{fits}\nUse a smaller reference or "
                    f"pad the input (Pad)."
                )
        return lo, hi

    # --- scanning ----------------------------------------------------------------------------
    def _shift_range(self, request: BatchRequest) -> tuple[Coordinate, Coordinate]:
        """First and last shift (per dimension, inclusive) of the chunks that cover ``request``."""
        up_lo, up_hi = self._upstream_shifts()
        dims = self._dims()
        if len(request) == 0:
            if any(v is None for v in up_lo + up_hi):
                raise RequestError(
                    "Scan: an empty request scans the whole upstream ROIs, but upstream provides no bounded ROI "
                    f"for the reference keys in every dimension: {[str(self.spec[k].roi) for k in self.reference]}"
                )
            return Coordinate(up_lo), Coordinate(up_hi)

        first: list[int] = [0] * dims
        last: list[int] = [0] * dims
        for d in range(dims):
            lows = [req.roi.begin[d] - self.reference[key].roi.begin[d] for key, req in request.items()]
            highs = [req.roi.end[d] - self.reference[key].roi.end[d] for key, req in request.items()]
            lcm = self._lcm[d]
            a = (min(lows) // lcm) * lcm
            b = max(a, -(-max(highs) // lcm) * lcm)
            if up_lo[d] is not None:
                a, b = max(a, up_lo[d]), max(b, up_lo[d])
            if up_hi[d] is not None:
                a, b = min(a, up_hi[d]), min(b, up_hi[d])
            first[d], last[d] = a, b
        first_c, last_c = Coordinate(first), Coordinate(last)
        for key, req in request.items():
            ref = self.reference[key].roi
            covered = Roi(ref.begin + first_c, ref.shape + (last_c - first_c))
            if not covered.contains(req.roi):
                raise RequestError(
                    f"Scan: cannot assemble {key} over {req.roi}: shifting the reference ({key}: {ref}) inside "
                    f"what upstream provides covers only {covered}; request ROIs that keep the reference's "
                    f"relative layout, or request fewer keys"
                )
        return first_c, last_c

    def _shifts(self, first: Coordinate, last: Coordinate) -> list[Coordinate]:
        """All chunk shifts: ``first`` onwards by ``stride``, the last one at ``last`` in each dimension."""
        axes = []
        for a, b, s in zip(first, last, self.stride):
            positions = list(range(a, b, s))
            positions.append(b)
            axes.append(positions)
        return [Coordinate(p) for p in itertools.product(*axes)]

    def _chunk_request(self, shift: Coordinate, seed: int) -> BatchRequest:
        chunk = BatchRequest(random_seed=seed)
        for key, spec in self.reference.items():
            shifted = spec.copy()
            shifted.roi = spec.roi.shift(shift)
            chunk[key] = shifted
        return chunk

    def provide(self, request: BatchRequest) -> Batch:
        request = request.copy()
        request.remove_placeholders()
        for key, req in request.items():
            if key not in self.reference:
                raise RequestError(
                    f"Scan: {key} was requested, but Scan only assembles keys of its reference {sorted(self.reference)}"
                )
            if req.roi is None:
                raise RequestError(f"Scan: {key} was requested without a ROI")
        first, last = self._shift_range(request)
        shifts = self._shifts(first, last)
        seeds = np.random.SeedSequence(request.random_seed or 0).generate_state(len(shifts))
        chunk_requests = [self._chunk_request(shift, int(seed)) for shift, seed in zip(shifts, seeds)]
        total = len(chunk_requests)
        logger.info("Scan: %d chunks (stride %s) over shifts %s to %s", total, self.stride, first, last)

        output = Batch()
        arrays: dict[ArrayKey, Array] = {}
        callback = self.progress_callback
        if callback is not None:
            callback.start(total)
        try:
            self._scan(chunk_requests, request, arrays, output, callback)
        finally:
            if callback is not None:
                callback.stop()
        for key, array in arrays.items():
            output[key] = array
        return output

    def _scan(self, chunk_requests, request, arrays, output, callback) -> None:
        total = len(chunk_requests)
        reported = 0
        for i, chunk in enumerate(self._chunks(chunk_requests), start=1):
            self._fill(arrays, request, chunk)
            if callback is not None:
                callback.update(i)
            output.profiling_stats.merge_with(chunk.profiling_stats)
            if chunk.iteration is not None:
                output.iteration = chunk.iteration
            if chunk.loss is not None:
                output.loss = chunk.loss
            decile = (10 * i) // total
            if decile > reported:
                reported = decile
                logger.info("Scan: %d/%d chunks (%d%%)", i, total, 100 * i // total)

    def _chunks(self, chunk_requests: list[BatchRequest]):
        """Yield the upstream batches of ``chunk_requests``, in order."""
        upstream = self.get_upstream_provider()
        if self._executor is None:
            for chunk_request in chunk_requests:
                yield upstream.request_batch(chunk_request)
            return
        in_flight = max(self.num_workers, self.cache_size)
        pending: collections.deque[Future] = collections.deque()
        requests = iter(chunk_requests)
        try:
            for chunk_request in itertools.islice(requests, in_flight):
                pending.append(self._executor.submit(upstream.request_batch, chunk_request))
            while pending:
                batch = pending.popleft().result()
                next_request = next(requests, None)
                if next_request is not None:
                    pending.append(self._executor.submit(upstream.request_batch, next_request))
                yield batch
        finally:
            for future in pending:
                future.cancel()
            for future in pending:
                if not future.cancelled():
                    future.exception()  # wait, so no chunk runs on after Scan returned or failed

    def _fill(self, arrays: dict[ArrayKey, Array], request: ProviderSpec, chunk: Batch) -> None:
        """Paste the requested parts of ``chunk`` into the assembled ``arrays``."""
        for key, req in request.items():
            part = chunk[key]
            if isinstance(key, GraphKey):
                self._fill_graph(arrays, key, req.roi, part)
                continue
            if key not in arrays:
                spec = part.spec.copy()
                spec.roi = req.roi
                dims = req.roi.dims
                shape = part.data.shape[:-dims] + tuple(req.roi.shape / spec.voxel_size)
                arrays[key] = Array(np.zeros(shape, dtype=part.data.dtype), spec)
            common = part.spec.roi.intersect(req.roi)
            if not common.empty:
                target = arrays[key]
                vs = target.spec.voxel_size
                begin = (common.begin - req.roi.begin) // vs
                end = (common.end - req.roi.begin) // vs
                channels = (slice(None),) * (target.data.ndim - req.roi.dims)
                target.data[channels + tuple(slice(b, e) for b, e in zip(begin, end))] = part.crop(
                    common, copy=False
                ).data

    def _fill_graph(self, graphs: dict, key: GraphKey, roi, part: Graph) -> None:
        """Add the nodes of chunk graph ``part`` inside ``roi``, and the edges between them, to the
        assembled graph. Temporary nodes (made while processing a chunk, e.g. by trimming) are left
        out, as in gunpowder: their ids may clash across chunks."""
        if key not in graphs:
            spec = self.spec[key].copy()
            spec.roi = roi
            graphs[key] = Graph([], [], spec)
        graph = graphs[key]
        for node in part.nodes:
            if not node.temporary and roi.contains(node.location):
                graph.add_node(node)
        for edge in part.edges:
            if graph.contains(edge.u) and graph.contains(edge.v):
                if part.node(edge.u).temporary or part.node(edge.v).temporary:
                    continue
                graph.add_edge(edge)
