"""Real Dask clusters for tests: small LocalClusters on 127.0.0.1, without dashboard unless asked.

Import from a test module (``from dask_fixtures import local_client``); the ``tests`` folder is on
``sys.path`` because ``tests/conftest.py`` lives there. Clients made here are never the default
client, so code under test that looks for "the current client" does not find them by accident.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from distributed import Client, LocalCluster


@contextlib.contextmanager
def local_client(n_workers: int = 2, processes: bool = True, **kwargs) -> Iterator[Client]:
    """A client of a new LocalCluster of single-threaded workers, closed (with the cluster) on exit."""
    kwargs.setdefault("threads_per_worker", 1)
    if "dashboard_address" not in kwargs:  # no dashboard; the scheduler's HTTP server on any free port
        kwargs["dashboard_address"] = "127.0.0.1:0"
        kwargs.setdefault("scheduler_kwargs", {}).setdefault("dashboard", False)
    kwargs.setdefault("host", "127.0.0.1")
    if not processes:
        kwargs.setdefault("protocol", "tcp")
    with LocalCluster(n_workers=n_workers, processes=processes, **kwargs) as cluster:
        with Client(cluster, set_as_default=False) as client:
            client.wait_for_workers(n_workers, timeout=120)
            yield client


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(client: Client) -> dict[str, int]:
    """The process id of each worker, by worker address."""
    import os

    return client.run(os.getpid)
