"""``PreCache``: produce batches of the upstream pipeline on Dask workers while downstream consumes them."""

from __future__ import annotations

import collections
import itertools
import logging
import uuid
from typing import TYPE_CHECKING

from ..batch import Batch, BatchRequest
from ..cluster import ClientLike
from ..errors import PipelineError
from ..pipeline import BatchFilter
from ._precache_series import Series, batch_seed
from ._precache_worker import pack_upstream, plugin_class, plugin_name, produce_batch

if TYPE_CHECKING:
    from distributed import Client

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
        client: ClientLike = None,
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
        self._client: Client | None = None
        self._owns_client = False
        self._token: str | None = None
        self._plugin_name: str | None = None
        self._series: Series | None = None
        self._series_count = 0
        self._once_count = itertools.count()
        self._recent: collections.deque = collections.deque([None] * 5, maxlen=5)

    # --- life cycle --------------------------------------------------------------------------
    def setup(self) -> None:
        from ..cluster import dashboard_link, get_client

        payload = pack_upstream(self.get_upstream_provider())
        client, self._owns_client = get_client(self.client, n_workers=self.num_workers)
        self._client = client
        self._token = uuid.uuid4().hex[:8]
        self._plugin_name = plugin_name(self._token)
        try:
            plugin = plugin_class()(self._token, payload)
            client.register_plugin(plugin, name=self._plugin_name)
        except BaseException:
            self._close_client()
            raise
        logger.info(
            "PreCache %s: upstream pipeline registered on the Dask cluster at %s (dashboard: %s)",
            self._token,
            client.scheduler.address,
            dashboard_link(client),
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

    def _require_client(self) -> Client:
        if self._client is None:
            raise PipelineError(f"{self.name()} is not set up: request batches inside `with build(pipeline):`")
        return self._client

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
            series = self._start_series(request)
        return series.next_batch()

    def _start_series(self, request: BatchRequest) -> Series:
        if self._series is not None:
            dropped = len(self._series.pending) + len(self._series.ready)
            logger.info("PreCache %s: the request changed, dropping %d queued batches", self._token, dropped)
            self._series.cancel()
        seed = self.seed if self.seed is not None else request.with_seed().random_seed
        series_seed = int(seed)  # type: ignore[arg-type]  # with_seed() always gives one
        series = self._series = Series(
            self._require_client(),
            self._token,
            self._series_count,
            request.copy(),
            series_seed,
            self.cache_size,
            self.ordered,
        )
        self._series_count += 1
        return series

    def _produce_once(self, request: BatchRequest) -> Batch:
        n = next(self._once_count)
        future = self._require_client().submit(
            produce_batch,
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


__all__ = ["PreCache", "batch_seed"]
