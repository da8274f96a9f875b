"""How daskseg finds or starts a Dask cluster: ``get_client`` and ``dashboard_link``.

Every part of daskseg that runs work on Dask (``PreCache``, blockwise prediction) asks
``get_client`` for its client, which looks in this order:

1. an explicit ``distributed.Client`` (or a scheduler address string) passed by the caller;
2. the client of the current context (``with Client(...):`` or the global default client);
3. the scheduler at ``$DASK_SCHEDULER_ADDRESS``, if that variable is set;
4. else a new ``LocalCluster`` on this machine: single-threaded worker processes, scheduler and
   dashboard bound to ``daskseg.cluster.host`` (127.0.0.1) only, the dashboard at
   ``daskseg.cluster.dashboard-address``; its workers ignore Ctrl-C (``daskseg.worker_preload``),
   which the client handles by closing the cluster.

Before a ``Client`` connects to an address, the address is checked (``tcp://HOST:PORT``) and the
scheduler is asked who it is, all within ``daskseg.cluster.connect-timeout``: ``distributed``'s own
timeout does not cover a server that accepts the connection but never answers (an HTTP port), and
a ``Client`` made for a malformed address hangs in its finaliser.

The caller owns (and must close) what ``get_client`` started: the second value it returns says
whether that is the case. ``close_client`` closes a client and, if it owns one, its cluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Union

from .errors import ClusterError
from .main_guard import check_main_guard

if TYPE_CHECKING:
    from distributed import Client

#: What daskseg takes as a cluster: a ``distributed.Client``, a scheduler address, or None (use the
#: current client, ``$DASK_SCHEDULER_ADDRESS``, or start a LocalCluster).
ClientLike = Union["Client", str, None]

logger = logging.getLogger(__name__)

SCHEDULER_ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
DEFAULT_CONNECT_TIMEOUT = 10.0
#: tries of the connection handshake, which distributed's own race can fail (see ``_connect``)
HANDSHAKE_ATTEMPTS = 10


def get_client(
    client: ClientLike = None,
    scheduler_address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    timeout: float | str | None = None,
    dashboard_address: str | None = None,
    **kwargs,
):
    """Find or start the Dask cluster to run on; returns ``(client, owns_cluster)``.

    Args:
        client (distributed.Client | str, optional): use this client, or connect to this scheduler
            address (``'tcp://10.0.0.1:8786'``).
        scheduler_address (str, optional): connect to this scheduler (same as passing a string as
            ``client``).
        n_workers (int, optional): number of workers of a new ``LocalCluster`` (default: one per
            core). Ignored when an existing cluster is used.
        threads_per_worker (int): threads of each worker of a new ``LocalCluster``. Pipeline nodes
            are numpy/scipy code that mostly holds the GIL, so one thread per process is best.
        processes (bool): whether a new ``LocalCluster`` runs its workers in processes.
        timeout (float | str, optional): seconds (or ``'10s'``) to wait for a scheduler to answer
            before raising ``ClusterError``; default ``daskseg.cluster.connect-timeout``.
        dashboard_address (str, optional): where a new ``LocalCluster`` serves its dashboard
            (``':0'`` style addresses pick a free port); default
            ``daskseg.cluster.dashboard-address``. A taken port is warned about, naming the one used.
        **kwargs: passed on to ``distributed.LocalCluster``; ``host`` defaults to
            ``daskseg.cluster.host``.

    Returns:
        tuple[distributed.Client, bool]: the client, and whether the caller started (and must close)
        it and its cluster, e.g. with ``close_client(client)``.

    Raises:
        ClusterError: the address is malformed, the scheduler at the given (or
            ``$DASK_SCHEDULER_ADDRESS``) address does not answer as a Dask scheduler within
            ``timeout`` seconds, or a ``LocalCluster`` could not be started.
            Also ``n_workers`` below 1 (a cluster without workers would wait forever).
    """
    from distributed import Client

    if n_workers is not None and n_workers < 1:
        raise ClusterError(
            f"a LocalCluster needs at least 1 worker, got {n_workers} (--workers, num_workers): without workers "
            f"nothing would ever run. Give 1 or more."
        )
    timeout = connect_timeout(timeout)

    if isinstance(client, str):
        if scheduler_address is not None and scheduler_address != client:
            raise ValueError(f"got two scheduler addresses: client={client!r}, scheduler_address={scheduler_address!r}")
        scheduler_address, client = client, None
    if client is not None:
        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client or a scheduler address, not {type(client).__name__}")
        return client, False
    if scheduler_address is not None:
        return _connect(scheduler_address, timeout, from_env=False), True

    current = current_client()
    if current is not None:
        logger.debug("using the Dask client of the current context: %s", current)
        return current, False

    env_address = os.environ.get(SCHEDULER_ADDRESS_ENV)
    if env_address:
        return _connect(env_address, timeout, from_env=True), True

    return _start_local_cluster(n_workers, threads_per_worker, processes, dashboard_address, **kwargs), True


def current_client():
    """The client of the current context (``with Client():`` or the default client), or None."""
    from distributed import Client

    try:
        return Client.current(allow_global=True)
    except ValueError:
        return None


def connect_timeout(value: float | str | None = None) -> float:
    """Seconds to wait for a scheduler: ``value`` (seconds or ``'10s'``), else the setting
    ``daskseg.cluster.connect-timeout``."""
    from dask.utils import parse_timedelta

    from . import config as dsconfig

    if value is None:
        value = dsconfig.get("cluster.connect-timeout", DEFAULT_CONNECT_TIMEOUT)
    seconds = float(parse_timedelta(value, default="seconds"))
    if seconds <= 0:
        raise ValueError(f"the connect timeout must be positive, got {value!r}")
    return seconds


def check_scheduler(address: str, timeout: float, origin: str = "as given", hint: str = "") -> None:
    """Make sure a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Checks the address's form, then (for ``tcp://``) connects and asks for the server's identity,
    the whole exchange bounded by ``timeout``. Other protocols (``tls://`` needs the security
    settings) are left to the ``Client``.

    Raises:
        ClusterError: one line naming the address and what to do.
    """
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    example = "e.g. tcp://127.0.0.1:8786 (the port `dask scheduler` prints)"
    try:
        protocol, location = parse_address(address)
        host, port = parse_host_port(location) if protocol == "tcp" else ("", 0)
    except (ValueError, TypeError) as e:
        raise ClusterError(
            f"{address!r} ({origin}) is not a Dask scheduler address ({e}): give tcp://HOST:PORT, {example}{hint}"
        ) from None
    if protocol != "tcp":
        return
    try:
        identity = _run_async(_identity(address, timeout), timeout)
    except (OSError, TimeoutError, EOFError, concurrent.futures.TimeoutError) as e:
        if _port_open(host, port, min(timeout, 2.0)):
            raise ClusterError(
                f"something listens at {address!r} ({origin}) but it did not answer as a Dask scheduler within "
                f"{timeout:g} s (an HTTP port such as the dashboard's?): give the scheduler's address, {example}{hint}"
            ) from None
        reason = f": {e}" if str(e) else ""
        raise ClusterError(
            f"could not reach a Dask scheduler at {address!r} ({origin}) within {timeout:g} s{reason}. "
            f"Start one (`dask scheduler`) or fix the address{hint}"
        ) from None
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind != "Scheduler":
        raise ClusterError(
            f"{address!r} ({origin}) is a Dask {kind or 'server'}, not a scheduler: give the scheduler's address, "
            f"{example}{hint}"
        )


async def _identity(address: str, timeout: float):
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _run_async(coroutine, timeout: float):
    """Run ``coroutine`` to completion within ``timeout`` s on an event loop of its own (in a
    helper thread, so that it works inside a running loop too)."""

    def target():
        return asyncio.run(asyncio.wait_for(coroutine, timeout))

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="daskseg-connect") as pool:
        return pool.submit(target).result(timeout + 5)


def _port_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _connect(address: str, timeout: float, from_env: bool):
    from distributed import Client

    origin = f"from ${SCHEDULER_ADDRESS_ENV}" if from_env else "as given"
    hint = f"; or unset ${SCHEDULER_ADDRESS_ENV} to run on a LocalCluster" if from_env else ""

    logger.info("connecting to the Dask scheduler at %s (%s)", address, origin)
    check_scheduler(address, timeout, origin, hint)
    for attempt in range(1, HANDSHAKE_ATTEMPTS + 1):
        try:
            return Client(address, timeout=timeout, set_as_default=False)
        except AssertionError:
            # distributed's handshake expects its first message batch to hold only "stream-start"; a
            # broadcast to all clients in the same batch (another client cancelling tasks, say) fails
            # it: seen in 15 of 60 connections made while another client cancelled tasks.
            logger.warning("the handshake with the Dask scheduler at %s was interrupted by a broadcast to all "
                           "clients (attempt %d of %d)", address, attempt, HANDSHAKE_ATTEMPTS)
            time.sleep(0.01 * attempt)
        except (OSError, TimeoutError) as e:
            raise ClusterError(
                f"could not reach a Dask scheduler at {address!r} ({origin}) within {timeout:g} s: {e}. "
                f"Start one (`dask scheduler`) or fix the address{hint}"
            ) from e
    raise ClusterError(
        f"the Dask scheduler at {address!r} ({origin}) interrupted {HANDSHAKE_ATTEMPTS} connection handshakes in a "
        f"row with broadcasts to all clients; is another client there cancelling tasks nonstop?"
    )


WORKER_PRELOAD = "daskseg.worker_preload"


def _as_list(value: Any) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def _start_local_cluster(n_workers, threads_per_worker, processes, dashboard_address, **kwargs):
    import dask.config
    from distributed import Client, LocalCluster

    from . import config as dsconfig

    if dashboard_address is None:
        dashboard_address = str(dsconfig.get("cluster.dashboard-address", "127.0.0.1:8787"))
    if processes:
        # spawned workers import the __main__ script again: refuse an unguarded one before they start
        check_main_guard("a LocalCluster of worker processes")
        # listen on loopback only (unless configured); a threads-only cluster talks in-process
        # (inproc://) and has no host
        kwargs.setdefault("host", str(dsconfig.get("cluster.host", "127.0.0.1")))
        # the worker processes share the terminal's Ctrl-C: leave it to this client (see worker_preload)
        kwargs.setdefault("preload", [*_as_list(dask.config.get("distributed.worker.preload", [])), WORKER_PRELOAD])
    logger.info(
        "starting a LocalCluster: %s workers x %d threads (%s)",
        "default" if n_workers is None else n_workers,
        threads_per_worker,
        "processes" if processes else "threads",
    )
    try:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=dashboard_address,
            **kwargs,
        )
    except Exception as e:
        raise ClusterError(f"could not start a LocalCluster with {n_workers} workers: {e}") from e
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    link = dashboard_link(client)
    _warn_if_dashboard_moved(dashboard_address, client)
    logger.info("Dask dashboard: %s", link)
    return client


def _warn_if_dashboard_moved(asked: str, client) -> None:
    """Dask serves the dashboard on another port when the one asked for is taken: say so."""
    try:
        wanted = int(str(asked).rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return
    if wanted == 0:
        return
    got = client.scheduler_info().get("services", {}).get("dashboard")
    if got is not None and int(got) != wanted:
        logger.warning(
            "the dashboard port %d (daskseg.cluster.dashboard-address %s) is taken: the Dask dashboard is at %s "
            "instead", wanted, asked, dashboard_link(client)
        )


def close_client(client) -> None:
    """Close ``client`` and, if it was started together with a ``LocalCluster``, that cluster too."""
    cluster = getattr(client, "cluster", None)
    try:
        client.close()
    finally:
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def client_session(client: ClientLike = None, **kwargs: Any) -> Iterator[Client]:
    """``get_client(client, **kwargs)`` as a context: yields the client and, on exit, closes it and
    its LocalCluster if this call started them (a found or given client is left open)."""
    dask_client, owns = get_client(client, **kwargs)
    try:
        yield dask_client
    finally:
        if owns:
            close_client(dask_client)


def dashboard_link(client) -> str | None:
    """The URL of the dashboard of ``client``'s scheduler (None if the client cannot tell)."""
    try:
        return client.dashboard_link or None
    except (KeyError, AttributeError):  # no HTTP service known to the client
        logger.debug("no dashboard address for %s", client, exc_info=True)
        return None
