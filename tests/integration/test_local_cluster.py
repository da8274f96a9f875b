"""deploy/local starts a real scheduler and workers on 127.0.0.1 whose dashboard answers."""

from __future__ import annotations

import urllib.request

import pytest
from distributed import Client

from .conftest import start_cluster

pytestmark = pytest.mark.integration


def test_workers_connect_and_dashboard_answers(process_cluster):
    assert process_cluster.address.startswith("tcp://127.0.0.1:")
    with Client(process_cluster.address, timeout=30) as client:
        info = client.scheduler_info()
        assert len(info["workers"]) == 2
        assert all(w["nthreads"] == 1 for w in info["workers"].values())
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
        assert client.submit(sum, [1, 2, 3], key="daskseg-smoke").result(timeout=30) == 6
    url = f"http://127.0.0.1:{process_cluster.dashboard_port}/status"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200


def test_stop_leaves_no_process_behind(tmp_path):
    cluster = start_cluster(str(tmp_path / "c"), workers=1)
    pids = cluster.pids()
    assert len(pids) == 2
    cluster.stop()
    assert [pid for pid in pids if running(pid)] == []


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper has finished running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
