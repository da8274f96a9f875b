"""A real Dask cluster of separate processes on 127.0.0.1, started with deploy/local/start-cluster.sh."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START = os.path.join(ROOT, "deploy", "local", "start-cluster.sh")
STOP = os.path.join(ROOT, "deploy", "local", "stop-cluster.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalProcessCluster:
    address: str
    dashboard_port: int
    run_dir: str

    def pids(self) -> list[int]:
        with open(os.path.join(self.run_dir, "pids")) as f:
            return [int(line) for line in f if line.strip()]

    def stop(self) -> None:
        subprocess.run(["bash", STOP, self.run_dir], check=False, timeout=60)


def start_cluster(run_dir: str, workers: int = 2) -> LocalProcessCluster:
    env = dict(os.environ, DASK=os.path.join(os.path.dirname(sys.executable), "dask"))
    port, dashboard = free_port(), free_port()
    out = subprocess.run(
        ["bash", START, "--workers", str(workers), "--port", str(port), "--dashboard-port", str(dashboard),
         "--run-dir", run_dir],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    return LocalProcessCluster(out.stdout.strip().splitlines()[-1], dashboard, run_dir)


@pytest.fixture(scope="module")
def process_cluster(tmp_path_factory):
    """Scheduler + 2 single-threaded workers as separate processes; stopped after the module."""
    cluster = start_cluster(str(tmp_path_factory.mktemp("cluster")))
    from distributed import Client

    with Client(cluster.address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    yield cluster
    cluster.stop()
