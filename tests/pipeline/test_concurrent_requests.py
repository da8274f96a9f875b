"""One pipeline serving several requests at once: what a node's ``prepare`` draws travels to its
``process`` with the request (``request.plan``), so concurrent requests give what serial ones give;
nodes that keep state on ``self`` (``thread_safe = False``) are served one request at a time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import daskseg as gp

RAW = gp.ArrayKey("CONC_RAW")
LABELS = gp.ArrayKey("CONC_LABELS")
VOXEL = gp.Coordinate((4, 2, 2))
SHAPE = (24, 48, 48)
TOTAL = gp.Roi((0, 0, 0), gp.Coordinate(SHAPE) * VOXEL)


class MemorySource(gp.BatchProvider):
    """RAW (float32 in [0, 1]) and LABELS from memory; the first ``meet`` requests wait for each
    other in ``provide``, so they are all in flight (prepared by every node downstream) at once."""

    thread_safe = True

    def __init__(self, meet: int = 0, sleep: float = 0.0, timeout: float = 20.0):
        rng = np.random.default_rng(0)
        self.raw = rng.random(SHAPE, dtype=np.float32)
        self.labels = (np.arange(np.prod(SHAPE), dtype=np.uint64) // 7).reshape(SHAPE)
        self.meet = meet
        self.sleep = sleep
        self.timeout = timeout

    def setup(self):
        self.provides(RAW, gp.ArraySpec(roi=TOTAL, voxel_size=VOXEL, dtype=np.float32, interpolatable=True))
        self.provides(LABELS, gp.ArraySpec(roi=TOTAL, voxel_size=VOXEL, dtype=np.uint64, interpolatable=False))
        self._barrier = threading.Barrier(self.meet, timeout=self.timeout) if self.meet else None
        self._arrived = 0
        self._count_lock = threading.Lock()

    def provide(self, request):
        with self._count_lock:
            self._arrived += 1
            wait = self._barrier is not None and self._arrived <= self.meet
        if wait:
            self._barrier.wait()  # BrokenBarrierError if the requests were served one at a time
        if self.sleep:
            time.sleep(self.sleep)
        batch = gp.Batch()
        for key, data in ((RAW, self.raw), (LABELS, self.labels)):
            if key not in request:
                continue
            spec = self.spec[key].copy()
            spec.roi = request[key].roi
            index = tuple(slice(b, e) for b, e in zip(spec.roi.begin / VOXEL, spec.roi.end / VOXEL))
            batch[key] = gp.Array(data[index].copy(), spec)
        return batch


def augmentations():
    return (
        gp.RandomLocation()
        + gp.ElasticAugment([4, 8, 8], [0, 1, 1], [0, np.pi / 2], prob_slip=0.2, prob_shift=0.2, max_misalign=2)
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.ShiftAugment(prob_slip=0.2, prob_shift=0.2, sigma=2)
        + gp.DefectAugment(RAW, prob_missing=0.1, prob_low_contrast=0.1, prob_deform=0.2, deformation_strength=2)
        + gp.IntensityAugment(RAW, 0.9, 1.1, -0.1, 0.1)
        + gp.NoiseAugment(RAW)
    )


def request(seed: int) -> gp.BatchRequest:
    r = gp.BatchRequest(random_seed=seed)
    r.add(RAW, gp.Coordinate((8, 20, 20)) * VOXEL)
    r.add(LABELS, gp.Coordinate((4, 12, 12)) * VOXEL)
    return r


def serial(seeds):
    pipeline = MemorySource() + augmentations()
    with gp.build(pipeline):
        return [pipeline.request_batch(request(s)) for s in seeds]


def test_two_requests_in_flight_through_one_pipeline_give_the_serial_batches():
    seeds = [3, 11]
    expected = serial(seeds)
    assert not np.array_equal(expected[0][RAW].data, expected[1][RAW].data)

    pipeline = MemorySource(meet=2) + augmentations()
    with gp.build(pipeline), ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda s: pipeline.request_batch(request(s)), seeds))
    for e, g in zip(expected, got):
        for key in (RAW, LABELS):
            assert g[key].spec.roi == e[key].spec.roi
            np.testing.assert_array_equal(g[key].data, e[key].data)


def test_parallel_scan_over_augmentations_equals_the_serial_scan():
    reference = gp.BatchRequest()
    reference.add(RAW, gp.Coordinate((6, 10, 10)) * VOXEL)
    # requests ROIs inside what RandomLocation can shift: it moves each chunk somewhere random
    whole = gp.BatchRequest(random_seed=5)
    whole[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), gp.Coordinate((12, 20, 20)) * VOXEL))

    def scan(workers, meet):
        pipeline = MemorySource(meet=meet) + augmentations() + gp.Scan(reference, num_workers=workers)
        with gp.build(pipeline):
            return pipeline.request_batch(whole)[RAW].data

    np.testing.assert_array_equal(scan(3, meet=3), scan(1, meet=0))


class OffsetOnSelf(gp.BatchFilter):
    """A gunpowder-style node: draws an offset in ``prepare``, keeps it on ``self`` for ``process``."""

    def prepare(self, request):
        self.offset = float(self.random_generator(request).integers(1, 1000))

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + self.offset


def test_a_node_keeping_state_on_self_serves_one_request_at_a_time():
    assert not OffsetOnSelf.thread_safe and gp.ElasticAugment.thread_safe
    seeds = list(range(8))
    pipeline = MemorySource(sleep=0.02) + OffsetOnSelf()
    with gp.build(pipeline):
        expected = [pipeline.request_batch(request(s))[RAW].data for s in seeds]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda s: pipeline.request_batch(request(s))[RAW].data, seeds))
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    assert len({float(g.flat[0] - e.flat[0]) for e, g in zip(expected, got)}) == 1


def test_the_plan_stays_with_its_node_and_request():
    seen = []

    class Planner(gp.BatchFilter):
        thread_safe = True

        def __init__(self, name):
            self.label = name

        def prepare(self, request):
            assert request.plan is None  # nothing from downstream leaks up
            request.plan = (self.label, request.random_seed)

        def process(self, batch, request):
            seen.append(request.plan)

    pipeline = MemorySource() + Planner("a") + Planner("b")
    with gp.build(pipeline):
        pipeline.request_batch(request(4))
    assert seen == [("a", 4), ("b", 4)]
    r = request(4)
    r.plan = "x"
    assert r.copy().plan is None and r == request(4)


def test_requests_through_a_node_keeping_state_on_self_do_not_overlap():
    # the source's barrier opens only when two requests are in it at once (as in the tests above):
    # behind a node that is not thread-safe they arrive one at a time, and the barrier breaks
    pipeline = MemorySource(meet=2, timeout=1.0) + OffsetOnSelf()
    with gp.build(pipeline), ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(pipeline.request_batch, request(s)) for s in (1, 2)]
        with pytest.raises(threading.BrokenBarrierError):
            for f in futures:
                f.result()
