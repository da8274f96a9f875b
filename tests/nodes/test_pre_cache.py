"""PreCache on real LocalClusters of worker processes: batches, seeds, errors, worker deaths, teardown."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
import traceback

import numpy as np
import psutil
import pytest
from dask.utils import key_split
from dask_fixtures import local_client, worker_pids
from distributed import get_task_stream

import daskseg as gp
from daskseg.nodes.pre_cache import PreCache, batch_seed
from daskseg.pipeline import BatchFilter, BatchProvider

RAW = gp.ArrayKey("PRECACHE_RAW")
VOXEL = gp.Coordinate((2, 1))
TOTAL = gp.Roi((0, 0), (40, 20))


class SeededSource(BatchProvider):
    """RAW: random integers from the node's generator; attrs say which seed and which process made them."""

    def __init__(self, sleep: float = 0.0):
        self.sleep = sleep

    def setup(self):
        self.provides(RAW, gp.ArraySpec(roi=TOTAL, voxel_size=VOXEL, dtype=np.int64))

    def provide(self, request):
        if self.sleep:
            time.sleep(self.sleep)  # a slow batch: sleeping parallelises across worker processes
        spec = self.spec[RAW].copy()
        spec.roi = request[RAW].roi
        shape = spec.roi.shape / VOXEL
        data = self.random_generator(request).integers(0, 2**31, shape, dtype=np.int64)
        batch = gp.Batch()
        batch[RAW] = gp.Array(data, spec, attrs={"seed": request.random_seed, "pid": os.getpid()})
        return batch


class Zeros(BatchProvider):
    """Provides zeros under ``key``: nothing random."""

    def __init__(self, key):
        self.key = key

    def setup(self):
        self.provides(self.key, gp.ArraySpec(roi=TOTAL, voxel_size=VOXEL, dtype=np.int64))

    def provide(self, request):
        spec = self.spec[self.key].copy()
        spec.roi = request[self.key].roi
        batch = gp.Batch()
        batch[self.key] = gp.Array(np.zeros(spec.roi.shape / VOXEL, np.int64), spec)
        return batch


class AddOffset(BatchFilter):
    """Adds one random offset to ``key`` (RAW), from its own random stream."""

    def __init__(self, key=RAW):
        self.key = key

    def process(self, batch, request):
        if self.key in batch:
            batch[self.key].data = batch[self.key].data + self.random_generator(request).integers(1, 1000)


class WithLock(BatchFilter):
    """Holds a lock and a thread-local store, as nodes that serve several threads do."""

    def __init__(self):
        self.lock = threading.Lock()
        self.local = threading.local()

    def process(self, batch, request):
        with self.lock:
            self.local.seen = getattr(self.local, "seen", 0) + 1


class Explode(BatchFilter):
    """Fails on every batch."""

    def process(self, batch, request):
        raise ValueError(f"exploded on seed {request.random_seed}")


class LifeCycleLog(BatchFilter):
    """Leaves a file ``<pid>.<n>.setup`` / ``<pid>.<n>.teardown`` in ``folder`` for each setup and teardown."""

    def __init__(self, folder):
        self.folder = str(folder)

    def _log(self, event):
        for n in itertools.count():
            try:
                open(os.path.join(self.folder, f"{os.getpid()}.{n}.{event}"), "x").close()
                return
            except FileExistsError:
                continue

    def setup(self):
        self._log("setup")

    def teardown(self):
        self._log("teardown")


def make_request(size=(8, 4), seed=None) -> gp.BatchRequest:
    request = gp.BatchRequest(random_seed=seed)
    request.add(RAW, size)
    return request


def upstream_reference(request, seed):
    """What the upstream pipeline gives in this process for ``request`` with ``seed``."""
    pipeline = SeededSource() + AddOffset()
    with gp.build(pipeline):
        request = request.copy()
        request.random_seed = seed
        return pipeline.request_batch(request)[RAW]


@pytest.fixture(scope="module")
def client():
    with local_client(n_workers=2) as c:
        yield c


def test_batches_are_the_upstream_batches_of_the_derived_seeds(client):
    pipeline = SeededSource() + AddOffset() + PreCache(cache_size=3, client=client, ordered=True, seed=11)
    request = make_request()
    with gp.build(pipeline):
        batches = [pipeline.request_batch(request) for _ in range(5)]

    for i, batch in enumerate(batches):
        seed = batch_seed(11, 0, i)
        assert seed == int(np.random.SeedSequence([11, 0, i]).generate_state(1, np.uint32)[0])
        assert batch[RAW].attrs["seed"] == seed
        assert batch[RAW].attrs["pid"] != os.getpid()
        assert batch[RAW].spec.roi == request[RAW].roi
        reference = upstream_reference(request, seed)
        np.testing.assert_array_equal(batch[RAW].data, reference.data)
    assert {b[RAW].attrs["pid"] for b in batches} <= set(worker_pids(client).values())


def test_upstream_random_streams_are_those_of_the_pipeline_without_pre_cache(client):
    # in a second branch, after another AddOffset, the branch's AddOffset has the stream
    # "AddOffset#1", not "AddOffset#0" as in a pipeline of its own: the workers use the former
    other_key = gp.ArrayKey("PRECACHE_OTHER")

    def tree(pre_cache):
        branch = SeededSource() + AddOffset()
        if pre_cache is not None:
            branch = branch + pre_cache
        return (Zeros(other_key) + AddOffset(other_key), branch) + gp.MergeProvider()

    request = make_request()
    with gp.build(tree(PreCache(cache_size=2, client=client, ordered=True, seed=9))) as pipeline:
        cached = pipeline.request_batch(request)[RAW]
    with gp.build(tree(None)) as pipeline:
        request = request.copy()
        request.random_seed = batch_seed(9, 0, 0)
        direct = pipeline.request_batch(request)[RAW]
    np.testing.assert_array_equal(cached.data, direct.data)
    assert not np.array_equal(cached.data, upstream_reference(make_request(), batch_seed(9, 0, 0)).data)


def test_unordered_batches_are_distinct_and_from_the_window(client):
    cache_size, n = 4, 10
    pipeline = SeededSource() + PreCache(cache_size=cache_size, client=client, seed=5)
    with gp.build(pipeline):
        seeds = [pipeline.request_batch(make_request())[RAW].attrs["seed"] for _ in range(n)]
    assert len(set(seeds)) == n
    assert set(seeds) <= {batch_seed(5, 0, i) for i in range(n + cache_size)}


def test_series_seed_is_the_first_request_seed_without_a_seed(client):
    pipeline = SeededSource() + PreCache(cache_size=2, client=client, ordered=True)
    with gp.build(pipeline):
        first = pipeline.request_batch(make_request(seed=1234))
        second = pipeline.request_batch(make_request(seed=99))  # seeds of later requests are not used
    assert [first[RAW].attrs["seed"], second[RAW].attrs["seed"]] == [batch_seed(1234, 0, 0), batch_seed(1234, 0, 1)]


def test_a_different_request_is_served_once_then_becomes_the_series(client):
    pipeline = SeededSource() + AddOffset() + PreCache(cache_size=2, client=client, ordered=True, seed=3)
    a, b = make_request((8, 4)), make_request((4, 6), seed=777)
    with gp.build(pipeline):
        first_a = pipeline.request_batch(a)
        one_off = pipeline.request_batch(b)
        second_a = pipeline.request_batch(a)
        # b becomes the most frequent of the last five requests: a new series starts for it
        later_b = [pipeline.request_batch(b) for _ in range(4)]

    assert first_a[RAW].attrs["seed"] == batch_seed(3, 0, 0)
    assert second_a[RAW].attrs["seed"] == batch_seed(3, 0, 1)
    assert one_off[RAW].spec.roi == b[RAW].roi
    assert one_off[RAW].attrs["seed"] == 777
    np.testing.assert_array_equal(one_off[RAW].data, upstream_reference(b, 777).data)
    # last five: a, b, a, b, b -> b (3) outnumbers a (2) at the third b
    expected = [777] + [batch_seed(3, 1, i) for i in range(3)]
    assert [x[RAW].attrs["seed"] for x in later_b] == expected
    for batch in later_b:
        assert batch[RAW].spec.roi == b[RAW].roi


def test_worker_error_reaches_the_caller_with_its_traceback(client):
    pipeline = SeededSource() + Explode() + PreCache(cache_size=2, client=client, seed=8)
    with gp.build(pipeline):
        with pytest.raises(ValueError, match="exploded on seed") as excinfo:
            pipeline.request_batch(make_request())
    text = "".join(traceback.format_exception(excinfo.value))
    assert "in process" in text and "test_pre_cache.py" in text  # the worker's frames
    assert any("PreCache produced batch" in note for note in excinfo.value.__notes__)


def test_profiling_stats_hold_worker_timings_and_keys_name_the_task(client):
    pipeline = SeededSource() + AddOffset() + PreCache(cache_size=2, client=client, ordered=True)
    with get_task_stream(client) as stream:
        with gp.build(pipeline):
            batch = pipeline.request_batch(make_request())
    timings = batch.profiling_stats.timings
    assert {("SeededSource", "provide"), ("AddOffset", "process"), ("PreCache", "provide")} <= set(timings)
    keys = [task["key"] for task in stream.data]
    assert keys and all(key_split(key) == "daskseg-batch" for key in keys)


def test_workers_never_import_jax(client):
    pipeline = SeededSource() + PreCache(cache_size=2, client=client)
    with gp.build(pipeline):
        pipeline.request_batch(make_request())
    assert client.run(lambda: "jax" in sys.modules) == {w: False for w in worker_pids(client)}


def test_nodes_with_locks_are_shipped_with_new_locks(client):
    pipeline = SeededSource() + WithLock() + PreCache(cache_size=1, client=client, ordered=True, seed=4)
    with gp.build(pipeline):
        batch = pipeline.request_batch(make_request())
    assert batch[RAW].attrs["seed"] == batch_seed(4, 0, 0)


def test_pipeline_is_set_up_once_per_worker_and_torn_down_with_the_node(client, tmp_path):
    pipeline = SeededSource() + LifeCycleLog(tmp_path) + PreCache(cache_size=2, client=client)
    with gp.build(pipeline):
        pids = {pipeline.request_batch(make_request())[RAW].attrs["pid"] for _ in range(8)}
        during = sorted(p.name for p in tmp_path.iterdir())
        held = client.run(lambda: __import__("daskseg.worker_state", fromlist=["x"]).STATE.count("pipelines"))
    after = sorted(p.name for p in tmp_path.iterdir())
    # the built pipelines live in each worker's state registry until the node is torn down
    assert sorted(held.values()) == sorted(1 if str(pid) in {str(p) for p in pids} else 0 for pid in
                                           worker_pids(client).values())
    released = client.run(lambda: __import__("daskseg.worker_state", fromlist=["x"]).STATE.count("pipelines"))
    assert set(released.values()) == {0}

    workers = {str(pid) for pid in worker_pids(client).values()}
    set_up = [name.split(".")[0] for name in during if name.endswith("setup")]
    worker_set_up = [pid for pid in set_up if pid in workers]
    assert sorted(worker_set_up) == sorted({str(pid) for pid in pids})  # once on each worker used
    assert str(os.getpid()) in set_up  # and once in this process, for the spec
    torn_down = [name.split(".")[0] for name in after if name.endswith("teardown")]
    assert sorted(torn_down) == sorted(set_up)
    assert not [t for t in threading.enumerate() if t.name.startswith("daskseg-precache")]


def test_the_current_context_client_or_a_scheduler_address_is_used(client):
    workers = set(worker_pids(client).values())
    with client.as_current():
        pipeline = SeededSource() + PreCache(cache_size=1)
        with gp.build(pipeline):
            assert pipeline.request_batch(make_request())[RAW].attrs["pid"] in workers
    pipeline = SeededSource() + PreCache(cache_size=1, client=client.scheduler.address)
    with gp.build(pipeline):
        assert pipeline.request_batch(make_request())[RAW].attrs["pid"] in workers
    assert client.status == "running" and set(worker_pids(client).values()) == workers


def test_the_threads_of_a_worker_share_its_pipeline(tmp_path):
    with local_client(n_workers=2, processes=False, threads_per_worker=2) as threaded:
        pre_cache = PreCache(cache_size=4, client=threaded, ordered=True, seed=6)
        pipeline = SeededSource() + LifeCycleLog(tmp_path) + pre_cache
        request = make_request()
        with gp.build(pipeline):
            seeds = [pipeline.request_batch(request)[RAW].attrs["seed"] for _ in range(12)]
    assert seeds == [batch_seed(6, 0, i) for i in range(12)]
    events = [p.name.rsplit(".", 1)[1] for p in tmp_path.iterdir()]
    # one pipeline in this process for the spec, and at most one per worker, all torn down
    assert 2 <= events.count("setup") <= 1 + 2
    assert events.count("teardown") == events.count("setup")


class OffsetOnSelf(BatchFilter):
    """A gunpowder-style node: draws an offset in ``prepare`` and keeps it on ``self`` for ``process``."""

    def prepare(self, request):
        self.offset = self.random_generator(request).integers(1, 1000)

    def process(self, batch, request):
        batch[RAW].data = batch[RAW].data + self.offset


def test_a_node_keeping_state_on_self_is_right_on_threaded_workers():
    with local_client(n_workers=1, processes=False, threads_per_worker=4) as threaded:
        pipeline = SeededSource(sleep=0.02) + OffsetOnSelf() + PreCache(cache_size=8, client=threaded, seed=3)
        request = make_request()
        with gp.build(pipeline):
            batches = [pipeline.request_batch(request)[RAW] for _ in range(8)]
    reference = SeededSource() + OffsetOnSelf()
    with gp.build(reference):
        for batch in batches:
            seeded = request.copy()
            seeded.random_seed = batch.attrs["seed"]
            np.testing.assert_array_equal(batch.data, reference.request_batch(seeded)[RAW].data)


def test_unpicklable_node_is_named():
    class Unpicklable(BatchFilter):
        def __init__(self):
            self.lines = (line for line in ["a generator does not pickle"])

    pipeline = SeededSource() + Unpicklable() + PreCache(cache_size=1, client="tcp://127.0.0.1:1")
    with pytest.raises(gp.DaskSegError, match="Unpicklable"):
        with gp.build(pipeline):
            pass


@pytest.mark.slow
def test_killed_worker_is_replaced_and_every_batch_delivered_once(client):
    n = 12
    pipeline = SeededSource(sleep=0.2) + PreCache(cache_size=4, client=client, ordered=True, seed=21)
    request = make_request()
    with gp.build(pipeline):
        seeds = [pipeline.request_batch(request)[RAW].attrs["seed"]]
        busy = [address for address, keys in client.processing().items() if keys]
        assert busy  # the window keeps the workers busy: the victim dies with a batch in progress
        victim = worker_pids(client)[busy[0]]
        os.kill(victim, signal.SIGKILL)
        seeds += [pipeline.request_batch(request)[RAW].attrs["seed"] for _ in range(n - 1)]
    assert seeds == [batch_seed(21, 0, i) for i in range(n)]
    client.wait_for_workers(2, timeout=120)
    assert victim not in worker_pids(client).values()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_two_workers_are_faster_give_the_same_batches_and_leave_no_process(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    n, sleep = 8, 0.3
    request = make_request()
    elapsed, batches = {}, {}
    me = psutil.Process()
    for workers in (1, 2):
        before = {p.pid for p in me.children(recursive=True)}
        pipeline = SeededSource(sleep=sleep) + PreCache(cache_size=4, num_workers=workers, ordered=True, seed=2)
        with gp.build(pipeline):
            started = [p for p in me.children(recursive=True) if p.pid not in before]
            assert len(started) >= workers  # one nanny and one worker process per worker
            first = pipeline.request_batch(request)  # waits for the workers to set the pipeline up
            t0 = time.perf_counter()
            rest = [pipeline.request_batch(request) for _ in range(n)]
            elapsed[workers] = time.perf_counter() - t0
        batches[workers] = [b[RAW].data for b in [first, *rest]]
        _, alive = psutil.wait_procs(started, timeout=60)
        assert alive == []

    assert elapsed[2] < 0.75 * elapsed[1], elapsed
    for one, two in zip(batches[1], batches[2]):
        np.testing.assert_array_equal(one, two)


def submitted_batch_indices(client) -> list[int]:
    """The batch indices of the PreCache tasks this client holds futures of now."""
    keys = [str(k) for k in client.futures]
    return sorted(int(k.split("-")[2]) for k in keys if k.startswith("daskseg-batch-"))


@pytest.mark.parametrize("cache_size", [2, 3])
def test_the_cache_size_setting_bounds_the_batches_in_flight(client, cache_size):
    import dask.config

    with dask.config.set({"daskseg.precache.cache-size": cache_size}):
        pre_cache = PreCache(client=client, ordered=True, seed=1)
    assert pre_cache.cache_size == cache_size
    pipeline = SeededSource(sleep=1.0) + pre_cache
    with gp.build(pipeline):
        pipeline.request_batch(make_request())
        # the newest task is batch cache_size, just submitted (each takes 1 s); earlier ones may be
        # fetched and released already
        assert max(submitted_batch_indices(client)) == cache_size


def test_the_num_workers_setting_sizes_a_local_cluster_started_by_pre_cache(monkeypatch):
    import dask.config

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with dask.config.set({"daskseg.precache.num-workers": 2, "daskseg.cluster.dashboard-address": "127.0.0.1:0"}):
        pre_cache = PreCache(cache_size=1)
    assert pre_cache.num_workers == 2
    pipeline = SeededSource() + pre_cache
    with gp.build(pipeline):
        assert len(pre_cache._client.scheduler_info()["workers"]) == 2


def test_a_relative_source_path_is_found_by_workers_in_another_directory(client, tmp_path, monkeypatch):
    from daskseg.io import write_array

    data = np.arange(20 * 20, dtype=np.int64).reshape(20, 20)
    write_array(tmp_path / "rel.zarr", "raw", data, VOXEL)
    monkeypatch.chdir(tmp_path)  # the workers, started before, stay where they were
    pipeline = gp.ZarrSource("rel.zarr", {RAW: "raw"}) + PreCache(cache_size=1, client=client, seed=1)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((4, 2), (8, 4)))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(batch[RAW].data, data[2:6, 2:6])
