"""The batches of one ``PreCache`` series: tasks submitted ahead, fetched in the background.

A series is the run of equal requests a ``PreCache`` serves: batch ``i`` of series ``k`` is one
Dask task with the seed ``batch_seed(s, k, i)``; at most ``cache_size`` are computing or waiting.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

import numpy as np

from ..batch import Batch
from ..errors import PipelineError
from ._precache_worker import produce_batch

if TYPE_CHECKING:
    from distributed import Future


class Series:
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
        self.pending: dict[int, Future] = {}  # submitted tasks, by batch index
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
                produce_batch,
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
