"""get_client: explicit client, current context, $DASK_SCHEDULER_ADDRESS, LocalCluster; clear errors."""

from __future__ import annotations

import threading
import time

import pytest
from dask_fixtures import free_port, local_client
from distributed import Client

from daskseg.cluster import close_client, dashboard_link, get_client
from daskseg.errors import ClusterError


@pytest.fixture(scope="module")
def client():
    """A small cluster of worker threads reachable over TCP on 127.0.0.1."""
    with local_client(n_workers=1, processes=False) as c:
        yield c


@pytest.fixture(autouse=True)
def no_env_scheduler(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)


def test_an_explicit_client_is_used_and_not_owned(client):
    assert get_client(client) == (client, False)


def test_the_current_context_client_comes_next(client, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", f"tcp://127.0.0.1:{free_port()}")  # not consulted
    with client.as_current():
        found, owned = get_client()
    assert found is client and owned is False


def test_scheduler_address_from_the_environment(client, monkeypatch):
    address = client.scheduler.address
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    found, owned = get_client()
    try:
        assert owned is True and found is not client
        assert found.scheduler.address == address
        assert found.submit(sum, [1, 2, 3], key="daskseg-smoke-1").result(timeout=30) == 6
    finally:
        close_client(found)
    assert client.status == "running"  # closing the connection leaves the cluster alone


@pytest.mark.parametrize("how", ["client", "scheduler_address"])
def test_a_scheduler_address_string_connects(client, how):
    found, owned = get_client(**{how: client.scheduler.address})
    try:
        assert owned is True and found.scheduler.address == client.scheduler.address
    finally:
        close_client(found)


@pytest.mark.parametrize("from_env", [False, True])
def test_an_unreachable_scheduler_raises_a_clear_error_quickly(monkeypatch, from_env):
    address = f"tcp://127.0.0.1:{free_port()}"
    if from_env:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=address) as excinfo:
        get_client(None if from_env else address, timeout=1)
    assert time.monotonic() - t0 < 30  # a bounded wait, not a hang
    assert isinstance(excinfo.value, ConnectionError)
    assert ("from $DASK_SCHEDULER_ADDRESS" in str(excinfo.value)) == from_env


def test_a_local_cluster_is_started_on_localhost_when_nothing_else_is_found():
    found, owned = get_client(n_workers=1, processes=False, protocol="tcp", dashboard_address="127.0.0.1:0")
    try:
        assert owned is True
        assert found.scheduler.address.startswith("tcp://127.0.0.1:")
        info = found.scheduler_info()
        assert len(info["workers"]) == 1
        assert all(w["nthreads"] == 1 for w in info["workers"].values())
        assert all(address.startswith("tcp://127.0.0.1:") for address in info["workers"])
        assert dashboard_link(found).startswith("http://127.0.0.1:")
    finally:
        close_client(found)
    assert found.status == "closed" and found.cluster.status.name == "closed"


def test_dashboard_link_names_the_scheduler_host_and_http_port(client):
    port = client.scheduler_info()["services"]["dashboard"]
    assert dashboard_link(client) == f"http://127.0.0.1:{port}/status"


def test_wrong_client_types_are_rejected():
    with pytest.raises(TypeError, match="distributed.Client"):
        get_client(client=42)
    with pytest.raises(ValueError, match="two scheduler addresses"):
        get_client("tcp://127.0.0.1:1", scheduler_address="tcp://127.0.0.1:2")


def test_a_client_can_be_closed_twice_safely(client):
    other = Client(client.scheduler.address, set_as_default=False, timeout=30)
    close_client(other)
    close_client(other)
    assert other.status == "closed"


def test_client_session_closes_only_what_it_started():
    from distributed import Client, LocalCluster

    from daskseg.cluster import client_session

    with client_session(n_workers=1, processes=False) as started:
        assert started.status == "running"
    assert started.status == "closed" and started.cluster.status.name == "closed"

    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, Client(cluster) as given:
        with client_session(given) as same:
            assert same is given
        assert given.status == "running"  # a client handed in stays open for its owner


def sleep_a_while(i: int) -> None:
    time.sleep(0.5)


def test_connecting_while_another_client_cancels_tasks(client):
    """distributed broadcasts each cancellation to all clients, which can land in a new client's
    handshake and fail it (15 of 60 connections here); get_client connects again."""
    stop = threading.Event()

    def cancel_nonstop() -> None:
        i = 0
        while not stop.is_set():
            client.cancel(client.submit(sleep_a_while, i, pure=False))
            i += 1

    canceller = threading.Thread(target=cancel_nonstop, daemon=True)
    canceller.start()
    try:
        for _ in range(20):
            connected, owned = get_client(client.scheduler.address)
            assert owned and connected.status == "running"
            close_client(connected)
    finally:
        stop.set()
        canceller.join(timeout=30)


# --- addresses that are not a scheduler, settings -------------------------------------------------
@pytest.fixture
def http_address():
    """The address of a real HTTP server (as the dashboard's port would be): it accepts connections
    but never speaks Dask's protocol."""
    import http.server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_an_http_server_is_not_taken_for_a_scheduler(http_address):
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=rf"something listens at '{http_address}' .* did not answer as a Dask "
                                           r"scheduler within 1 s .* give the scheduler's address"):
        get_client(http_address, timeout=1)
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("seconds", [1, 3])
def test_the_connect_timeout_setting_bounds_the_wait(http_address, seconds):
    import dask.config

    t0 = time.monotonic()
    with dask.config.set({"daskseg.cluster.connect-timeout": f"{seconds}s"}):
        with pytest.raises(ClusterError, match=f"within {seconds} s"):
            get_client(http_address)
    waited = time.monotonic() - t0
    assert seconds - 0.5 < waited < seconds + 5


@pytest.mark.parametrize("address", ["not-an-address", "tcp://127.0.0.1", "tcp://127.0.0.1:port"])
def test_a_malformed_address_fails_at_once_naming_it(address):
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=rf"'{address}' \(as given\) is not a Dask scheduler address .*"
                                           r"give tcp://HOST:PORT"):
        get_client(address)
    assert time.monotonic() - t0 < 2


def test_a_worker_address_is_not_a_scheduler(client):
    worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(ClusterError, match=rf"'{worker}' \(as given\) is a Dask Worker, not a scheduler"):
        get_client(worker, timeout=5)


def test_a_local_cluster_without_workers_is_refused():
    with pytest.raises(ClusterError, match="a LocalCluster needs at least 1 worker, got 0"):
        get_client(n_workers=0)


def test_the_cluster_host_and_dashboard_settings_are_used(caplog):
    import dask.config

    port = free_port()
    with dask.config.set({"daskseg.cluster.host": "127.0.0.2", "daskseg.cluster.dashboard-address": f"127.0.0.1:{port}"}):
        found, _ = get_client(n_workers=1, processes=True)
    try:
        assert found.scheduler.address.startswith("tcp://127.0.0.2:")
        assert all(a.startswith("tcp://127.0.0.2:") for a in found.scheduler_info()["workers"])
        assert found.scheduler_info()["services"]["dashboard"] == port
        assert not [r for r in caplog.records if "is taken" in r.getMessage()]
        # the same dashboard port again is taken: Dask serves elsewhere, and daskseg says where
        with dask.config.set({"daskseg.cluster.dashboard-address": f"127.0.0.1:{port}"}):
            second, _ = get_client(n_workers=1, processes=False)
        try:
            moved = second.scheduler_info()["services"]["dashboard"]
            assert moved != port
            warnings = [r.getMessage() for r in caplog.records if "is taken" in r.getMessage()]
            assert len(warnings) == 1 and f"port {port}" in warnings[0] and f":{moved}/status" in warnings[0]
        finally:
            close_client(second)
    finally:
        close_client(found)
