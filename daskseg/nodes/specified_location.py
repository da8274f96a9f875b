"""``SpecifiedLocation``: centre each batch on the next (or a random) location from a list."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from ..array import Array, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, RequestError
from ..geometry import Coordinate, Roi
from ..graph import GraphKey
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class SpecifiedLocation(BatchFilter):
    """Choses a batch at a location from the list provided at init, making sure it is in the
    bounding box of the upstream provider.

    Locations are given in world units; a batch's total ROI is centred on the location (its centre
    rounded down), plus an optional jitter, with the shift rounded to the nearest multiple of the
    requested arrays' voxel sizes. A location whose shifted request does not fit upstream is
    skipped with a warning. In order, locations are shared by all requests (thread safe) and loop
    when exhausted; randomly, they are drawn from this node's random stream (seeded requests repeat).

    Args:

        locations (``list`` of locations):

            Locations to center batches around.

        choose_randomly (``bool``):

            Defines whether locations should be picked in order or at random from the list.

        extra_data (``list`` of array-like):

            One item per location, put into every requested array's ``attrs`` as
            ``specified_location_extra_data``.

        jitter (``tuple`` of int):

            How far to allow the point to shift in each direction (uniform in
            ``[loc - jitter, loc + jitter]``). Default is None: the point is at the centre.

        attempt_factor (``int``):

            If choosing randomly then given ``n`` points, sample ``attempt_factor * n`` points at
            most before giving up and raising an error.
    """

    thread_safe = True

    def __init__(
        self,
        locations: Sequence[Sequence[int]],
        choose_randomly: bool = False,
        extra_data: Sequence | None = None,
        jitter: Sequence[int] | None = None,
        attempt_factor: int = 5,
    ):
        if len(locations) == 0:
            raise ArgumentError("SpecifiedLocation: locations must not be empty")
        if extra_data is not None and len(extra_data) != len(locations):
            raise ArgumentError(
                f"SpecifiedLocation: extra_data ({len(extra_data)}) should match the length of specified "
                f"locations ({len(locations)})"
            )
        self.coordinates = [Coordinate(loc) for loc in locations]
        self.choose_randomly = choose_randomly
        self.extra_data = extra_data
        self.jitter = None if jitter is None else Coordinate(jitter)
        self.attempt_factor = attempt_factor
        self.loc_i = -1
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def setup(self) -> None:
        self.upstream_spec = self.get_upstream_provider().spec.copy()
        # any position can be asked for downstream: the location decides what upstream serves
        for key, spec in list(self.spec.items()):
            if spec.roi is not None:
                spec = spec.copy()
                spec.roi = Roi((None,) * spec.roi.dims, (None,) * spec.roi.dims)
                self.updates(key, spec)

    def _next_index(self, rng) -> int:
        if self.choose_randomly:
            return int(rng.integers(len(self.coordinates)))
        with self._lock:
            self.loc_i += 1
            if self.loc_i >= len(self.coordinates):
                self.loc_i = 0
                logger.warning("SpecifiedLocation: ran out of specified locations, looping list")
            return self.loc_i

    def _shift(self, index: int, center: Coordinate, voxel_size: Coordinate, rng) -> Coordinate:
        shift = self.coordinates[index] - center
        if self.jitter is not None:
            shift = shift + Coordinate(int(rng.integers(-j, j, endpoint=True)) for j in self.jitter)
        # a multiple of the voxel size, rounded to the nearest (as gunpowder)
        return Coordinate(int(vs * round(float(s) / vs)) for vs, s in zip(voxel_size, shift))

    def _fits(self, request: BatchRequest, shift: Coordinate) -> bool:
        for key, spec in request.items():
            if spec.roi is None:
                continue
            if key not in self.upstream_spec:
                raise RequestError(f"SpecifiedLocation: {key} is requested, but upstream does not provide it")
            provided = self.upstream_spec[key].roi
            shifted = spec.roi.shift(shift)
            if provided is not None and not provided.contains(shifted):
                logger.warning("SpecifiedLocation: provided ROI %s of %s does not contain %s", provided, key, shifted)
                return False
        return True

    def prepare(self, request: BatchRequest) -> None:
        spatial = [k for k, s in request.items() if s.roi is not None]
        if not spatial:
            return
        voxel_size = self.spec.get_lcm_voxel_size(spatial) or Coordinate((1,) * request[spatial[0]].roi.dims)
        total = request[spatial[0]].roi
        for key in spatial[1:]:
            total = total.union(request[key].roi)
        center = total.offset + total.shape // 2
        rng = self.random_generator(request)
        tries = len(self.coordinates) * (1 + (self.attempt_factor - 1) * int(self.choose_randomly))
        for _ in range(tries):
            index = self._next_index(rng)
            shift = self._shift(index, center, voxel_size, rng)
            if self._fits(request, shift):
                break
            logger.warning("SpecifiedLocation: location %s (shift %s) skipped", self.coordinates[index], shift)
        else:
            raise RequestError(
                f"SpecifiedLocation: none of the {tries} locations tried fits the request "
                f"{ {k: str(request[k].roi) for k in spatial} } inside what upstream provides"
            )
        logger.debug("SpecifiedLocation: location %d (%s), shift %s", index, self.coordinates[index], shift)
        for key in spatial:
            spec = request[key].copy()
            spec.roi = spec.roi.shift(shift)
            request[key] = spec
        request.plan = (index, shift)
        return

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        out = Batch()
        index, shift = request.plan if isinstance(request.plan, tuple) else (None, None)
        for key, spec in request.items():
            if key not in batch:
                continue
            if isinstance(key, GraphKey):  # nodes back into the request's coordinates
                out[key] = batch[key].relocate(spec.roi, shift)
                continue
            array = batch[key]
            new_spec: ArraySpec = array.spec.copy()
            if spec.roi is not None and new_spec.roi is not None:
                new_spec.roi = spec.roi
            attrs = dict(array.attrs)
            if self.extra_data is not None and index is not None:
                attrs["specified_location_extra_data"] = self.extra_data[index]
            out[key] = Array(array.data, new_spec, attrs)
        return out
