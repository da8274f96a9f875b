"""What one training batch reads of a sample: the training request grown by the augmentations at
their worst, found before any cluster starts.

The pipeline above ``RandomLocation`` (augmentations, ``AddAffinities``, ``BalanceLabels``) is set up
on a stand-in source that provides everything and records the request that reaches it, once per
extreme setting of ``ElasticAugment`` (each rotation angle where the bounding box of the rotated
request is largest, the smallest scale), with 3 standard deviations of control-point jitter added
per side. No data is read or computed: ``prepare`` runs, ``provide`` stops at the stand-in.

Section misalignment (``prob_slip``/``prob_shift`` with ``max_misalign``) is left out: its shifts
accumulate at random without a useful bound, so a sample that passes can still be short for an
unlucky batch (then ``RandomLocation`` names the sample); a sample that fails is short for every
batch at the worst rotation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .array import ArrayKey, ArraySpec
from .batch import Batch, BatchRequest
from .errors import SampleTooSmallError, SpecError
from .geometry import Coordinate, Roi
from .pipeline import BatchProvider, build

#: angles (radians) between which the worst rotation is looked for when it is not at 45 degrees
ANGLE_STEP = math.radians(5)


class _Probed(Exception):
    """Carries the request that reached the stand-in source."""

    def __init__(self, request: BatchRequest):
        super().__init__("probed")
        self.request = request


class _Probe(BatchProvider):
    """Provides every key of ``specs`` over an unbounded ROI; ``provide`` raises :class:`_Probed`."""

    thread_safe = True

    def __init__(self, specs: dict[ArrayKey, ArraySpec]):
        self.specs = specs

    def setup(self) -> None:
        for key, spec in self.specs.items():
            self.provides(key, spec.copy())

    def provide(self, request: BatchRequest) -> Batch:
        raise _Probed(request)


def worst_angles(rotation_interval: tuple[float, float]) -> list[float]:
    """The rotations (radians) to try: the interval's ends, every odd multiple of 45 degrees inside
    (where a square's bounding box is largest) and a grid of ``ANGLE_STEP`` for other shapes."""
    lo, hi = sorted(float(a) for a in rotation_interval)
    angles = {lo, hi}
    k = math.ceil((lo - math.pi / 4) / (math.pi / 2))
    while math.pi / 4 + k * math.pi / 2 <= hi:
        angles.add(math.pi / 4 + k * math.pi / 2)
        k += 1
    steps = int((hi - lo) / ANGLE_STEP)
    angles.update(lo + i * ANGLE_STEP for i in range(1, steps + 1))
    return sorted(angles)


def _elastic_variants(args: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    """``ElasticAugment`` arguments without randomness, one per worst angle (``[None]``: no elastic)."""
    if args is None:
        return [None]
    scale = args.get("scale_interval", (1.0, 1.0))
    base = {**args, "jitter_sigma": 0, "scale_interval": [min(scale), min(scale)], "prob_slip": 0, "prob_shift": 0}
    return [{**base, "rotation_interval": [a, a]} for a in worst_angles(args["rotation_interval"])]


def _jitter_margin(args: dict[str, Any] | None, voxel_size: Coordinate) -> Coordinate:
    """World units per side for the control-point jitter the elastic variants leave out (3 sigma)."""
    dims = voxel_size.dims
    margin = np.zeros(dims)
    if args is None:
        return Coordinate((0,) * dims)
    spatial = min(int(args.get("spatial_dims", 3)), dims)
    sigma = np.atleast_1d(np.asarray(args.get("jitter_sigma", 0), dtype=np.float64))
    sigma = np.repeat(sigma, spatial) if sigma.size == 1 else sigma
    margin[dims - spatial :] += np.ceil(3 * sigma)
    return Coordinate(int(m) for m in margin) * voxel_size


def batch_needs(
    request: BatchRequest,
    specs: dict[ArrayKey, ArraySpec],
    make_nodes,
    elastic_args: dict[str, Any] | None,
) -> Coordinate:
    """The world shape one batch of ``request`` reads of the arrays ``specs`` describe at the worst
    rotation and smallest scale, with 3 sigma of jitter (section misalignment comes on top).

    Args:
        request: the training request (downstream of every node ``make_nodes`` gives).
        specs: the sample's arrays (voxel size, dtype; the ROI is ignored).
        make_nodes: ``make_nodes(elastic_args)`` gives the nodes between ``RandomLocation`` and the
            request, with ``ElasticAugment`` built from ``elastic_args`` (None: left out).
        elastic_args: ``ElasticAugment``'s arguments, or None.
    """
    voxel_size = next(iter(specs.values())).voxel_size
    if voxel_size is None:
        raise SpecError("batch_needs: the arrays' specs need a voxel size")
    unbounded = Roi(-(voxel_size * 10**7), voxel_size * 2 * 10**7)
    probe_specs = {}
    for key, spec in specs.items():
        probe_spec = spec.copy()
        probe_spec.roi = unbounded
        probe_specs[key] = probe_spec
    need = Coordinate((0,) * voxel_size.dims)
    for variant in _elastic_variants(elastic_args):
        pipeline = _Probe(probe_specs)
        for node in make_nodes(variant):
            pipeline = pipeline + node
        with build(pipeline):
            probe = request.copy()
            probe.random_seed = 0
            try:
                pipeline.request_batch(probe)
            except _Probed as reached:
                total = reached.request.get_total_roi()
            else:  # pragma: no cover - the stand-in always raises
                total = None
        if total is None:  # pragma: no cover
            raise AssertionError("the stand-in source was not reached with a spatial request")
        need = Coordinate(max(n, s) for n, s in zip(need, total.shape))
    return need + _jitter_margin(elastic_args, voxel_size) * 2


def check_sample_fits(sample: str, need: Coordinate, provided: Roi, voxel_size: Coordinate, why: str) -> None:
    """Raise a :class:`SampleTooSmallError` naming ``sample`` if ``need`` (world) exceeds ``provided``."""
    short = [d for d in range(need.dims) if need[d] > provided.shape[d]]
    if not short:
        return
    axes = "zyx"[-need.dims :] if need.dims <= 3 else [str(d) for d in range(need.dims)]
    raise SampleTooSmallError(
        f"{sample} is too small for one training batch: {why} a batch reads "
        f"{tuple(need / voxel_size)} voxels ({tuple(need)} world units), the sample has "
        f"{tuple(provided.shape / voxel_size)} ({tuple(provided.shape)}), short along "
        f"{', '.join(axes[d] for d in short)}. Use larger samples, a smaller network input, or milder "
        "augment.elastic settings (rotation_interval, scale_interval, max_misalign)"
    )
