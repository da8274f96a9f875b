"""``PreCache``: produce batches of the upstream pipeline on Dask workers while downstream consumes them."""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
import uuid

import numpy as np

from ..batch import Batch, BatchRequest
from ..errors import PipelineError
from ..pipeline import BatchFilter, Pipeline

logger = logging.getLogger(__name__)


class PreCache(BatchFilter):
    """Produce batches of the upstream pipeline in parallel on Dask workers, ahead of the requests.

    For the first of a series of equal requests, ``cache_size`` tasks are submitted, each producing
    one batch for that request on a Dask worker; every batch handed downstream is replaced by a new
    task, so at most ``cache_size`` batches are computing or waiting at any time. Finished batches
    are brought into this process in the background, so handing one downstream costs next to
    nothing while the training step runs. The upstream pipeline is shipped to each worker once and
    set up there on first use (and torn down when the worker leaves or this node is torn down);
    the threads of a worker share it (nodes that are not ``thread_safe`` serve one at a time);
    batches come back with the per-node timings measured on the workers, so
    ``PrintProfilingStats`` downstream shows them. Dask task keys read ``daskseg-batch-<i>-...``.

    Without a ``client``, the client of the current context is used (``with Client(...):``), else
    the scheduler at ``$DASK_SCHEDULER_ADDRESS``, else a ``LocalCluster`` of ``num_workers``
    single-threaded worker processes is started on 127.0.0.1, and closed on teardown. Worker
    processes are spawned, so scripts that start one this way must guard their entry point with
    ``if __name__ == "__main__":``.

    Batch ``i`` of the ``k``-th series (``k = 0`` until the request changes) gets the random seed
    ``batch_seed(s, k, i)`` (``numpy.random.SeedSequence([s, k, i])``), where ``s`` is ``seed`` or
    else the seed of the request that started the series (which ``gp.set_seed`` makes
    reproducible): a run gives the same batches whatever the number of workers and the order in
    which they finish, and ``ordered=True`` also delivers them in that order. A request that
    differs from the current series is served by a single task (e.g. a snapshot request every few
    hundred iterations) with its own seed, unless it becomes the most frequent of the last five
    requests: then the queue is dropped and a new series starts for it.

    An error in a worker's pipeline is raised here with its original type and traceback. Tasks of
    a worker that dies are produced again by another (Dask reschedules them): no batch is lost or
    delivered twice.

    This node only makes sense if requests repeat and the upstream pipeline draws random numbers
    (e.g. ``RandomLocation`` and augmentations). Upstream nodes must pickle: locks and
    thread-local stores are shipped as new, empty ones; open files should be reopened in ``setup``.

    Args:

        cache_size (``int``, optional):

            How many batches may be computing or waiting at most (default the setting
            ``daskseg.precache.cache-size``, 50 as in gunpowder).

        num_workers (``int``, optional):

            How many worker processes a ``LocalCluster`` started by this node has (default the setting
            ``daskseg.precache.num-workers``, 20 as in gunpowder). Ignored when an existing cluster is used.

        client (``distributed.Client`` or ``str``, optional):

            The Dask client to use, or the address of a scheduler to connect to.

        ordered (``bool``):

            Deliver the batches of a series in their order (batch ``i`` before ``i + 1``) rather than as soon
            as any is done.

        seed (``int``, optional):

            The seed ``s`` of every series; None takes the seed of the request that starts the series.
    """

    _times_itself = False

    def __init__(
        self,
        cache_size: int | None = None,
        num_workers: int | None = None,
        client=None,
        ordered: bool = False,
        seed: int | None = None,
    ):
        from .. import config as dsconfig

        if cache_size is None:
            cache_size = int(dsconfig.get("precache.cache-size", 50))
        if num_workers is None:
            num_workers = int(dsconfig.get("precache.num-workers", 20))
        if cache_size < 1:
            raise ValueError(f"PreCache: cache_size must be at least 1, got {cache_size}")
        if num_workers < 1:
            raise ValueError(f"PreCache: num_workers must be at least 1, got {num_workers}")
        self.cache_size = int(cache_size)
        self.num_workers = int(num_workers)
        self.client = client
        self.ordered = ordered
        self.seed = seed
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._client = None
        self._owns_client = False
        self._token: str | None = None
        self._plugin_name: str | None = None
        self._series: _Series | None = None
        self._series_count = 0
        self._once_count = itertools.count()
        self._recent: collections.deque = collections.deque([None] * 5, maxlen=5)

    # --- life cycle --------------------------------------------------------------------------
    def setup(self) -> None:
        from ..cluster import dashboard_link, get_client

        payload = _pack_upstream(self.get_upstream_provider())
        self._client, self._owns_client = get_client(self.client, n_workers=self.num_workers)
        self._token = uuid.uuid4().hex[:8]
        self._plugin_name = _plugin_name(self._token)
        try:
            plugin = _plugin_class()(self._token, payload)
            self._client.register_plugin(plugin, name=self._plugin_name)
        except BaseException:
            self._close_client()
            raise
        logger.info(
            "PreCache %s: upstream pipeline registered on the Dask cluster at %s (dashboard: %s)",
            self._token,
            self._client.scheduler.address,
            dashboard_link(self._client),
        )

    def teardown(self) -> None:
        try:
            if self._series is not None:
                self._series.cancel()
            if self._client is not None and self._plugin_name is not None and self._client.status == "running":
                self._client.unregister_worker_plugin(self._plugin_name)
        finally:
            self._close_client()
            self._reset_runtime()

    def _close_client(self) -> None:
        if self._client is not None and self._owns_client:
            from ..cluster import close_client

            close_client(self._client)
        self._client = None

    # --- requests ----------------------------------------------------------------------------
    def provide(self, request: BatchRequest) -> Batch:
        if self._client is None:
            raise PipelineError(f"{self.name()} is not set up: request batches inside `with build(pipeline):`")
        self._recent.append(request.copy())
        series = self._series
        if series is None or request != series.request:
            current = 0 if series is None else sum(r == series.request for r in self._recent)
            new = sum(r == request for r in self._recent)
            if series is not None and new <= current:
                return self._produce_once(request)
            self._start_series(request)
        return self._series.next_batch()

    def _start_series(self, request: BatchRequest) -> None:
        if self._series is not None:
            dropped = len(self._series.pending) + len(self._series.ready)
            logger.info("PreCache %s: the request changed, dropping %d queued batches", self._token, dropped)
            self._series.cancel()
        series_seed = int(self.seed if self.seed is not None else request.random_seed)
        self._series = _Series(
            self._client,
            self._token,
            self._series_count,
            request.copy(),
            series_seed,
            self.cache_size,
            self.ordered,
        )
        self._series_count += 1

    def _produce_once(self, request: BatchRequest) -> Batch:
        n = next(self._once_count)
        future = self._client.submit(
            _produce_batch,
            self._token,
            request.copy(),
            key=f"daskseg-batch-once-{n}-{self._token}",
            pure=False,
            priority=1,
        )
        try:
            return future.result()
        except Exception as e:
            e.add_note(f"while {self.name()} produced a one-off batch (seed {request.random_seed}) on a Dask worker")
            raise
        finally:
            future.release()

    def __getstate__(self):
        # a PreCache is shipped without its client and queue (e.g. inside another PreCache's upstream)
        state = dict(self.__dict__)
        for key in ("_client", "_series", "_owns_client", "_token", "_plugin_name", "_once_count", "_recent"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset_runtime()


class _Series:
    """The batches of one request: tasks ``0, 1, 2, ...``, at most ``cache_size`` not yet delivered.

    A fetcher thread brings the batches of finished tasks into this process as they finish (several
    at once when several are done), so that handing one to the training loop costs nothing while
    the loop computes.
    """

    def __init__(self, client, token, number, request, series_seed, cache_size, ordered):
        self.client = client
        self.token = token
        self.number = number
        self.request = request
        self.series_seed = series_seed
        self.cache_size = cache_size
        self.ordered = ordered
        self.pending: dict[int, object] = {}  # submitted tasks, by batch index
        self.ready: dict[int, Batch | BaseException] = {}  # fetched, not yet delivered
        self.next_index = 0
        self.next_to_deliver = 0
        self.closed = False
        self.fetch_error: BaseException | None = None
        self.lock = threading.Condition()
        self.finished: queue.SimpleQueue[int | None] = queue.SimpleQueue()  # indices of finished tasks
        with self.lock:
            self._fill()
        self.fetcher = threading.Thread(target=self._fetch, name=f"daskseg-precache-{token}", daemon=True)
        self.fetcher.start()

    def _fill(self) -> None:
        while len(self.pending) + len(self.ready) < self.cache_size:
            i = self.next_index
            request = self.request.copy()
            request.random_seed = batch_seed(self.series_seed, self.number, i)
            future = self.client.submit(
                _produce_batch,
                self.token,
                request,
                key=f"daskseg-batch-{i}-{self.token}s{self.number}",
                pure=False,
            )
            future.add_done_callback(lambda _, i=i: self.finished.put(i))
            self.pending[i] = future
            self.next_index += 1

    def _fetch(self) -> None:
        try:
            self._fetch_until_closed()
        except BaseException as e:  # noqa: BLE001 - handed to the training loop by next_batch
            self.fetch_error = e
            with self.lock:
                self.lock.notify_all()

    def _fetch_until_closed(self) -> None:
        while True:
            indices = [self.finished.get()]
            while not self.finished.empty():
                indices.append(self.finished.get())
            if None in indices:
                return
            with self.lock:
                futures = {i: self.pending[i] for i in indices if i in self.pending}
            values = self._gather(list(futures.values()))
            with self.lock:
                if self.closed:
                    return
                for i, value in zip(futures, values):
                    del self.pending[i]
                    self.ready[i] = value
                self.lock.notify_all()
            for future in futures.values():
                future.release()

    def _gather(self, futures: list) -> list:
        try:
            return self.client.gather(futures)  # transfers from several workers at once
        except BaseException:  # noqa: BLE001 - at least one failed: fetch them one by one to keep each error with its batch
            values = []
            for future in futures:
                try:
                    values.append(future.result())
                except BaseException as e:  # noqa: BLE001 - kept with its batch, raised when used
                    values.append(e)
            return values

    def next_batch(self) -> Batch:
        with self.lock:
            while True:
                if self.ordered and self.next_to_deliver in self.ready:
                    index = self.next_to_deliver
                    break
                if not self.ordered and self.ready:
                    index = min(self.ready)
                    break
                if self.fetch_error is not None:
                    raise PipelineError(f"PreCache {self.token} failed to fetch batches") from self.fetch_error
                self.lock.wait(timeout=1.0)
            value = self.ready.pop(index)
            self.next_to_deliver = index + 1
            self._fill()
        if isinstance(value, BaseException):
            value.add_note(
                f"while PreCache produced batch {index} of series {self.number} "
                f"(seed {batch_seed(self.series_seed, self.number, index)}) on a Dask worker"
            )
            raise value
        return value

    def cancel(self) -> None:
        with self.lock:
            self.closed = True
            futures = list(self.pending.values())
            self.pending, self.ready = {}, {}
        self.finished.put(None)
        if futures and self.client.status == "running":
            self.client.cancel(futures)
        if self.fetcher is not threading.current_thread():
            self.fetcher.join(timeout=30)


def batch_seed(series_seed: int, series: int, index: int) -> int:
    """The random seed (32 bits) of batch ``index`` of the ``series``-th series of a PreCache seeded ``series_seed``."""
    return int(np.random.SeedSequence([int(series_seed), int(series), int(index)]).generate_state(1, np.uint32)[0])


# --- shipping the upstream pipeline -------------------------------------------------------------


def _upstream_tree(node) -> Pipeline:
    return Pipeline(node, [_upstream_tree(up) for up in node.get_upstream_providers()])


def _pack_upstream(node) -> bytes:
    """Pickle the pipeline ending in ``node``, naming the node that fails.

    Its nodes travel with their random-stream names, so on the workers they draw what they draw here.
    """
    tree = _upstream_tree(node)
    try:
        return _dumps(tree)
    except Exception as e:
        for n in tree.nodes():
            try:
                _dumps(n)
            except Exception as node_error:
                raise PipelineError(
                    f"PreCache cannot ship its upstream pipeline to Dask workers: node {n.name()} does not "
                    f"pickle ({type(node_error).__name__}: {node_error}). Keep open handles out of node "
                    "attributes, or define __getstate__"
                ) from node_error
        raise PipelineError(f"PreCache cannot pickle its upstream pipeline {tree!r}: {e}") from e


_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


def _dumps(obj) -> bytes:
    """cloudpickle, with locks and thread-local stores of nodes shipped as new, empty ones."""
    import io

    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):
            if type(obj) in _LOCK_TYPES:
                return _LOCK_TYPES[type(obj)], ()
            if type(obj) is threading.local:
                return threading.local, ()
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def _make_plugin_class() -> type:
    # distributed is imported when a PreCache is set up (or a worker unpickles the plugin), not by
    # `import daskseg`; the class pickles by reference through this module's __getattr__
    from distributed.diagnostics.plugin import WorkerPlugin

    class _PipelinePlugin(WorkerPlugin):
        """Worker plugin holding one PreCache's upstream pipeline: set up on first use, torn down on removal.

        The worker's threads share the one pipeline: daskseg's nodes serve concurrent requests
        (``thread_safe``), and other nodes serve them one at a time.
        """

        idempotent = False

        def __init__(self, token: str, payload: bytes):
            self.token = token
            self.payload = payload

        def setup(self, worker=None) -> None:
            self._lock = threading.Lock()
            self._pipeline: Pipeline | None = None
            self._closed = False

        def teardown(self, worker=None) -> None:
            with self._lock:
                self._closed = True
                pipeline, self._pipeline = self._pipeline, None
            if pipeline is not None:
                pipeline.teardown()

        def pipeline(self) -> Pipeline:
            with self._lock:
                if self._closed:
                    raise PipelineError(f"the pipeline of PreCache {self.token} was torn down on this worker")
                if self._pipeline is None:
                    self._pipeline = self._build()
                return self._pipeline

        def _build(self) -> Pipeline:
            import cloudpickle

            tree = cloudpickle.loads(self.payload)
            logger.debug("setting up the upstream pipeline of PreCache %s: %r", self.token, tree)
            try:
                tree.setup()
            except BaseException:
                tree.teardown()
                raise
            return tree

        def __getstate__(self):
            return {"token": self.token, "payload": self.payload}

    _PipelinePlugin.__qualname__ = "_PipelinePlugin"
    _PipelinePlugin.__module__ = __name__
    return _PipelinePlugin


def _plugin_class() -> type:
    cls = globals().get("_PipelinePlugin")
    if cls is None:
        cls = globals()["_PipelinePlugin"] = _make_plugin_class()
    return cls


def __getattr__(name: str):
    # how a worker finds the plugin class when it unpickles a plugin
    if name == "_PipelinePlugin":
        return _plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _plugin_name(token: str) -> str:
    return f"daskseg-precache-{token}"


def _produce_batch(token: str, request: BatchRequest) -> Batch:
    """The task run on a Dask worker: one batch of PreCache ``token``'s upstream pipeline for ``request``."""
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(_plugin_name(token))
    if plugin is None:
        raise PipelineError(
            f"Dask worker {worker.address} has no pipeline for PreCache {token}: it was torn down, or "
            "the worker missed the plugin registration"
        )
    return plugin.pipeline().request_batch(request)
