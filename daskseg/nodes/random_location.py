"""``RandomLocation``: serve each request from a random position inside the upstream data."""

from __future__ import annotations

import itertools
import logging

import numpy as np

from ..array import Array, ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest, ProviderSpec
from ..errors import ArgumentError, RequestError, SpecError
from ..geometry import Coordinate, Roi
from ..graph import GraphKey, GraphSpec
from ..pipeline import BatchFilter, BatchProvider

logger = logging.getLogger(__name__)


class RandomLocation(BatchFilter):
    """Choose a batch at a random location in the bounding box of the upstream provider.

    The random location is chosen such that every requested ROI lies entirely inside the ROI
    upstream provides for its key. Locations are drawn uniformly among all shifts that are
    multiples of the least common multiple of the requested arrays' voxel sizes, from the
    node's seeded random stream (the same request seed gives the same location). The batch
    is delivered with the ROIs that were requested, so downstream nodes never see where it
    came from (ask for ``random_shift_key`` to find out).

    Downstream of this node the provided ROIs are unbounded: requests of any position and
    size are accepted as long as they fit into the upstream data somewhere.

    If ``min_masked`` and ``mask`` are set, only locations where at least the ratio
    ``min_masked`` of the mask's voxels are non-zero are returned. The mask is read once in
    ``setup`` and kept as an integral array, so each test costs a few look-ups. The ratio is
    measured in the ROI requested for ``mask``, or, if ``mask`` is not requested, in the total
    requested ROI (mask voxels outside the mask's data count as masked out). After
    ``max_attempts`` rejected draws a ``RequestError`` is raised.

    Additional tests for randomly picked locations can be implemented by subclassing and
    overwriting :func:`accepts`, which receives the shifted request and returns whether it is
    acceptable.

    Args:

        min_masked (``float``, optional):

            If non-zero, require that the random sample contains at least that ratio of
            masked-in voxels.

        mask (:class:`ArrayKey`, optional):

            The array to use for mask checks.

        ensure_nonempty (:class:`GraphKey`, optional):

            Ensures that a request for this graph contains at least one node (in the ROI requested
            for it, or in the total requested ROI if it is not requested). All its nodes are read
            once in ``setup``; a node is drawn, then a location that has it inside.

        p_nonempty (``float``, optional):

            The probability with which ``ensure_nonempty`` is enforced; other requests get a
            location drawn as without it.

        ensure_centered (``bool``, optional):

            With ``ensure_nonempty``, place the drawn node in the middle voxel of the request (of
            the voxel size's least common multiple; for an even number of voxels, the one after the
            centre).

        point_balance_radius (``int``):

            With ``ensure_nonempty``, nodes are drawn with probability inversely proportional to
            the number of nodes within this radius (world units), so that dense regions are not
            favoured. The default of 1 draws (nearly) every node alike.

        random_shift_key (:class:`ArrayKey`, optional):

            If given, this node provides a nonspatial array under this key holding the random
            shift (world units) applied to the request.
    """

    thread_safe = True

    #: how many random locations are tried before giving up on ``min_masked``/``accepts``
    max_attempts: int = 10000

    def __init__(
        self,
        min_masked: float = 0,
        mask: ArrayKey | None = None,
        ensure_nonempty: GraphKey | None = None,
        p_nonempty: float = 1.0,
        ensure_centered: bool | None = None,
        point_balance_radius: int = 1,
        random_shift_key: ArrayKey | None = None,
    ):
        if ensure_nonempty is not None and not isinstance(ensure_nonempty, GraphKey):
            raise ArgumentError(f"RandomLocation: ensure_nonempty must be a GraphKey, got {ensure_nonempty!r}")
        if not 0 <= p_nonempty <= 1:
            raise ArgumentError(f"RandomLocation: p_nonempty must lie in [0, 1], got {p_nonempty}")
        if not 0 <= min_masked <= 1:
            raise ValueError(f"RandomLocation: min_masked must lie in [0, 1], got {min_masked}")
        if min_masked > 0 and mask is None:
            raise ValueError("RandomLocation: min_masked > 0 needs a mask key")
        self.min_masked = min_masked
        self.mask = mask
        self.ensure_nonempty = ensure_nonempty
        self.p_nonempty = p_nonempty
        self.ensure_centered = ensure_centered
        self.point_balance_radius = point_balance_radius
        self.random_shift_key = random_shift_key
        self.upstream_spec: ProviderSpec | None = None
        self.mask_spec: ArraySpec | None = None
        self.mask_integral: np.ndarray | None = None
        self.points: np.ndarray | None = None
        self.point_weights: np.ndarray | None = None

    # --- setup -------------------------------------------------------------------------------
    def setup(self) -> None:
        upstream = self.get_upstream_provider()
        self.upstream_spec = upstream.spec.copy()

        if self.mask is not None and self.min_masked > 0:
            self._read_mask(upstream, self.mask)
        if self.ensure_nonempty is not None:
            self._read_points(upstream, self.ensure_nonempty)

        # RandomLocation has no limits downstream: any request is served from somewhere
        for key, spec in list(self.spec.items()):
            if spec.roi is not None:
                spec = spec.copy()
                spec.roi = Roi((None,) * spec.roi.dims, (None,) * spec.roi.dims)
                self.updates(key, spec)

        if self.random_shift_key is not None:
            self.provides(self.random_shift_key, ArraySpec(nonspatial=True))

    def _provided_upstream(self) -> ProviderSpec:
        if self.upstream_spec is None:
            raise RuntimeError("RandomLocation is not set up (setup() reads what upstream provides)")
        return self.upstream_spec

    def _read_mask(self, upstream: BatchProvider, mask: ArrayKey) -> None:
        provided = self._provided_upstream()
        if mask not in provided:
            raise SpecError(f"RandomLocation: mask {mask} is not provided upstream; provided: {sorted(provided)}")
        self.mask_spec = provided[mask].copy()
        roi = self.mask_spec.roi
        if roi is None or roi.unbounded:
            raise SpecError(f"RandomLocation: mask {mask} needs a bounded ROI upstream, it has {roi}")
        logger.info("RandomLocation: reading the complete mask %s in %s", mask, roi)
        batch = upstream.request_batch(BatchRequest({mask: ArraySpec(roi=roi)}, random_seed=0))
        masked_in = batch[mask].data > 0
        if masked_in.ndim > roi.dims:  # a voxel is masked in if any of its channels is
            masked_in = masked_in.any(axis=tuple(range(masked_in.ndim - roi.dims)))
        dtype = np.uint32 if masked_in.size < 2**32 else np.uint64
        # integral array with a leading zero plane per axis: sum over [b, e) by inclusion-exclusion
        integral = np.zeros(tuple(s + 1 for s in masked_in.shape), dtype=dtype)
        inner = masked_in.astype(dtype)
        for axis in range(inner.ndim):
            inner = np.cumsum(inner, axis=axis, dtype=dtype)
        integral[(slice(1, None),) * inner.ndim] = inner
        self.mask_integral = integral

    def _read_points(self, upstream: BatchProvider, key: GraphKey) -> None:
        from scipy.spatial import cKDTree

        provided = self._provided_upstream()
        if key not in provided:
            raise SpecError(f"RandomLocation: ensure_nonempty {key} is not provided upstream; provided: {sorted(provided)}")
        spec = provided[key].copy()
        logger.info("RandomLocation: reading all nodes of %s in %s", key, spec.roi)
        graph = upstream.request_batch(BatchRequest({}, {key: GraphSpec(roi=spec.roi)}, random_seed=0))[key]
        points = np.array([n.location for n in graph.nodes], dtype=np.float64)
        if len(points) == 0:
            raise SpecError(f"RandomLocation: ensure_nonempty {key} has no nodes in {spec.roi}")
        counts = [len(c) for c in cKDTree(points).query_ball_point(points, r=self.point_balance_radius)]
        weights = 1.0 / np.asarray(counts, dtype=np.float64)
        self.points = points
        self.point_weights = weights / weights.sum()
        logger.debug("RandomLocation: %d nodes of %s", len(points), key)

    def __getstate__(self) -> dict:
        # the integral mask can be large; setup() rebuilds it where the node is set up again
        # (e.g. on the Dask workers of a PreCache)
        state = dict(self.__dict__)
        state["mask_integral"] = None
        return state

    # --- requests ----------------------------------------------------------------------------
    def prepare(self, request: BatchRequest) -> None:
        # the request is moved in place: as a dependency it would be united with the original
        provided = self._provided_upstream()
        spatial = [k for k, s in request.items() if s.roi is not None and k != self.random_shift_key and k in provided]
        if not spatial:
            return

        lcm = self.spec.get_lcm_voxel_size(spatial)
        if lcm is None:  # graphs only
            lcm = Coordinate((1,) * request[spatial[0]].roi.dims)
        lo, hi = self._possible_shifts(request, spatial, lcm)

        rng = self.random_generator(request)
        nonempty = self.ensure_nonempty is not None and rng.random() < self.p_nonempty
        best_ratio = None
        for _ in range(self.max_attempts):
            if nonempty:
                shift = self._shift_to_a_point(request, spatial, lo, hi, lcm, rng)
                if shift is None:
                    continue
            else:
                shift = Coordinate(int(rng.integers(a, b, endpoint=True)) for a, b in zip(lo, hi)) * lcm
            if self.mask is not None and self.min_masked > 0:
                ratio = self._mask_ratio(request, spatial, shift)
                best_ratio = ratio if best_ratio is None else max(best_ratio, ratio)
                if ratio < self.min_masked:
                    continue
            shifted = self._shifted(request, shift)
            if not self.accepts(shifted):
                continue
            logger.debug("RandomLocation: shifting request by %s", shift)
            for key, spec in shifted.items():
                request[key] = spec
            request.plan = shift
            return

        why = (
            f"the best mask ratio of {self.mask} seen was {best_ratio:.4f} < min_masked={self.min_masked}"
            if best_ratio is not None and best_ratio < self.min_masked
            else "accepts() rejected them"
        )
        raise RequestError(
            f"RandomLocation: none of {self.max_attempts} random locations was acceptable ({why}); "
            f"requested ROIs: { {k: request[k].roi for k in spatial} }"
        )

    def _shift_to_a_point(
        self, request: BatchRequest, keys: list, lo: list[int], hi: list[int], lcm: Coordinate, rng: np.random.Generator
    ) -> Coordinate | None:
        """A random shift (within ``lo``..``hi`` multiples of ``lcm``) that brings a randomly drawn node of
        ``ensure_nonempty`` into its requested ROI; None if the drawn node cannot be reached."""
        key, points = self.ensure_nonempty, self.points
        if key is None or points is None:
            raise RuntimeError("RandomLocation: the nodes of ensure_nonempty are read at setup()")
        asked = request[key].roi if key in request else None
        roi = asked if asked is not None else _total(request, keys)
        point = points[rng.choice(len(points), p=self.point_weights)]
        step = np.asarray(lcm, dtype=np.float64)
        if self.ensure_centered:
            # the node ends in the middle voxel (of the lcm grid; the one after the centre for even sizes)
            middle = (np.asarray(roi.shape) // step).astype(int) // 2
            first = last = np.floor((point - np.asarray(roi.begin, dtype=np.float64)) / step).astype(int) - middle
        else:
            # begin + s <= point < end + s, for s = k * lcm
            first = np.floor((point - np.asarray(roi.end, dtype=np.float64)) / step).astype(int) + 1
            last = np.floor((point - np.asarray(roi.begin, dtype=np.float64)) / step).astype(int)
        first = np.maximum(first, lo)
        last = np.minimum(last, hi)
        if np.any(first > last):
            return None
        shift = Coordinate(int(rng.integers(a, b, endpoint=True)) for a, b in zip(first, last)) * lcm
        if not self.ensure_centered and not roi.shift(shift).contains(point):
            return None
        return shift

    def accepts(self, request: BatchRequest) -> bool:
        """Whether the randomly shifted ``request`` is acceptable (besides ``min_masked``).

        Subclasses can overwrite this to implement additional tests.
        """
        return True

    def _possible_shifts(self, request: BatchRequest, keys: list, lcm: Coordinate) -> tuple[list[int], list[int]]:
        """Inclusive bounds, in multiples of ``lcm``, of shifts that keep every ROI inside upstream's."""
        dims = request[keys[0]].roi.dims
        lo: list[int | None] = [None] * dims
        hi: list[int | None] = [None] * dims
        upstream = self._provided_upstream()
        for key in keys:
            req = request[key].roi
            provided = upstream[key].roi
            if provided is None:
                continue
            for d in range(dims):
                pb, pe = provided.begin[d], provided.end[d]
                if pb is None:
                    continue
                a = -(-(pb - req.begin[d]) // lcm[d])
                b = (pe - req.end[d]) // lcm[d]
                lo[d] = a if lo[d] is None else max(lo[d], a)
                hi[d] = b if hi[d] is None else min(hi[d], b)
        rois = {k: request[k].roi for k in keys}
        provided = {k: upstream[k].roi for k in keys}
        lo_bounds = [v for v in lo if v is not None]
        hi_bounds = [v for v in hi if v is not None]  # set where lo is
        if len(lo_bounds) < dims:
            raise RequestError(
                "RandomLocation: cannot choose a random location, the upstream ROIs are unbounded (is there an "
                f"unbounded Pad upstream?); requested {rois}, upstream provides {provided}"
            )
        if any(a > b for a, b in zip(lo_bounds, hi_bounds)):
            raise RequestError(
                f"RandomLocation: the requested ROIs {rois} do not fit inside the upstream ROIs {provided}"
                f"{self._upstream_files()} at any location (shifts are multiples of {lcm}); augmentations "
                "downstream (a rotation, section misalignment) grow the request beyond what was asked"
            )
        return lo_bounds, hi_bounds

    def _upstream_files(self) -> str:
        """`` of FILE`` naming the file(s) of the sources upstream, if they have one."""
        files = []
        todo = list(self.get_upstream_providers())
        while todo:
            node = todo.pop()
            filename = getattr(node, "filename", None)
            if isinstance(filename, str):
                files.append(filename)
            todo.extend(node.get_upstream_providers())
        return f" of {', '.join(sorted(set(files)))}" if files else ""

    def _shifted(self, request: BatchRequest, shift: Coordinate) -> BatchRequest:
        shifted = BatchRequest(random_seed=request.random_seed)
        for key, spec in request.items():
            if key == self.random_shift_key:
                continue
            spec = spec.copy()
            if spec.roi is not None:
                spec.roi = spec.roi.shift(shift)
            shifted[key] = spec
        return shifted

    def _mask_ratio(self, request: BatchRequest, keys: list, shift: Coordinate) -> float:
        mask, spec, integral = self.mask, self.mask_spec, self.mask_integral
        if mask is None or spec is None or integral is None:
            raise RuntimeError("RandomLocation: the mask is read at setup()")
        vs = spec.checked_voxel_size(f"RandomLocation's mask {mask}")
        mask_roi = spec.checked_roi(f"RandomLocation's mask {mask}")
        asked = request[mask].roi if mask in request else None
        if asked is not None:
            roi = asked.shift(shift)
        else:
            roi = _total(request, keys).shift(shift).snap_to_grid(vs, mode="grow")
        size = int(np.prod(roi.shape / vs))
        inside = roi.intersect(mask_roi)
        if inside.empty or size == 0:
            return 0.0
        begin = (inside.begin - mask_roi.begin) / vs
        end = (inside.end - mask_roi.begin) / vs
        total = 0
        for corner in itertools.product((0, 1), repeat=len(begin)):
            index = tuple(e if c else b for b, e, c in zip(begin, end, corner))
            sign = -1 if (len(begin) - sum(corner)) % 2 else 1
            total += sign * int(integral[index])
        return total / size

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        out = Batch()
        shift = request.plan if isinstance(request.plan, Coordinate) else None
        for key, spec in request.items():
            if key == self.random_shift_key or key not in batch:
                continue
            if isinstance(key, GraphKey):  # nodes back into the request's coordinates
                out[key] = batch[key].relocate(spec.roi, shift)
                continue
            array = batch[key]
            if spec.roi is not None and array.spec.roi is not None:
                shift = array.spec.roi.offset - spec.roi.offset
                new_spec = array.spec.copy()
                new_spec.roi = spec.roi
                array = Array(array.data, new_spec, array.attrs)
            out[key] = array
        if self.random_shift_key is not None and self.random_shift_key in request:
            if shift is None:
                dims = next((s.roi.dims for s in self._provided_upstream().values() if s.roi is not None), 0)
                shift = Coordinate((0,) * dims)
            out[self.random_shift_key] = Array(np.array(shift, dtype=np.int64), ArraySpec(nonspatial=True))
        return out


def _total(request: BatchRequest, keys: list) -> Roi:
    total = request[keys[0]].roi
    for key in keys[1:]:
        total = total.union(request[key].roi)
    return total
