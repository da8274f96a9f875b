"""Shared pieces of the integration tests: block processors and pipeline nodes the worker processes
import, the ``daskseg`` command as a subprocess, bounded polling, and killing a worker by its pid.

The worker processes of ``start_cluster`` import this module by name (``integration.helpers``) when
they unpickle a processor or node defined here: ``workers_import_tests`` puts the ``tests``
directory on their ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest
import scipy.ndimage as ndi

from daskseg.blockwise import FunctionProcessor
from daskseg.blockwise.done import read_done
from daskseg.pipeline import BatchFilter

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASKSEG = os.path.join(os.path.dirname(sys.executable), "daskseg")

#: seconds of simulated work per block / per batch: long enough that a kill lands mid-job
WORK_SECONDS = 0.2


def _env_with_tests_on_path() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": TESTS_DIR + (os.pathsep + path if path else "")}


@pytest.fixture(scope="module", autouse=True)
def workers_import_tests():
    """Let the cluster processes (started after this, with this environment) import ``integration.helpers``."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _env_with_tests_on_path().items():
            mp.setenv(k, v)
        yield


# --- block processors ---------------------------------------------------------------------------
def max3(block: np.ndarray) -> np.ndarray:
    """3x3x3 maximum: exact, so blockwise and whole-volume results must agree bit for bit."""
    return ndi.maximum_filter(block, size=3, mode="nearest")


def slow_max3(block: np.ndarray) -> np.ndarray:
    """``max3`` after ``WORK_SECONDS`` of simulated work (the window in which a test kills something)."""
    time.sleep(WORK_SECONDS)
    return max3(block)


MAX3 = FunctionProcessor(max3, context=1, name="max3")
SLOW_MAX3 = FunctionProcessor(slow_max3, context=1, name="slow_max3")


def expected_max3(raw: np.ndarray) -> np.ndarray:
    """What ``MAX3`` gives over the whole volume, on the output ROI = raw shrunk by one voxel."""
    return max3(raw)[1:-1, 1:-1, 1:-1].astype(np.float32)


# --- pipeline nodes -----------------------------------------------------------------------------
class SimulatedWork(BatchFilter):
    """Pass batches through after ``seconds`` of simulated work (an expensive augmentation)."""

    def __init__(self, seconds: float = WORK_SECONDS):
        self.seconds = seconds

    def process(self, batch, request):
        time.sleep(self.seconds)


# --- processes ----------------------------------------------------------------------------------
def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``daskseg`` subprocess: this one, ``tests`` importable, no ambient scheduler."""
    env = dict(os.environ, **_env_with_tests_on_path(), **extra)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    return env


def run_cli(args: list[str], timeout: float = 120, cwd: str | None = None, **env) -> subprocess.CompletedProcess:
    """Run ``daskseg ARGS`` to completion (bounded by ``timeout``)."""
    return subprocess.run(
        [DASKSEG, *args], capture_output=True, text=True, timeout=timeout, env=cli_env(**env), cwd=cwd
    )


def start_cli(args: list[str], cwd: str | None = None, **env) -> subprocess.Popen:
    """Start ``daskseg ARGS`` without waiting; the caller kills or waits for it."""
    return subprocess.Popen(
        [DASKSEG, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(**env), cwd=cwd
    )


def poll(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Call ``condition`` until it returns something truthy (returned), failing after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _descendants(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def is_dead(pid: int) -> bool:
    """Gone, or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def kill_worker(cluster, name: str) -> list[int]:
    """SIGKILL worker ``name`` (``cpu-1``, ...) of a ``start_cluster`` cluster: its pid from the run
    dir's pids file (the ``dask worker`` process) and the worker process it started; returns the pids.

    The killed pid leaves the pids file, so that ``stop`` does not wait for it.
    """
    pids = cluster.pids()
    index = int(name.rsplit("-", 1)[1])  # line 0 is the scheduler, then cpu-1, cpu-2, ...
    pid = pids[index]
    victims = [pid, *_descendants(pid)]
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    poll(lambda: all(is_dead(p) for p in victims), 30, f"worker {name} (pids {victims}) to die")
    with open(os.path.join(cluster.run_dir, "pids"), "w") as f:
        f.writelines(f"{p}\n" for p in pids if p != pid)
    return victims


def worker_address(client, name: str) -> str:
    """The address of the worker called ``name``."""
    for address, info in client.scheduler_info(n_workers=-1)["workers"].items():
        if info.get("name") == name:
            return address
    raise AssertionError(f"no worker named {name!r} on {client}")


def running_on(client, address: str, prefix: str) -> list[str]:
    """Keys of tasks with ``prefix`` the scheduler has on worker ``address`` now."""
    keys = client.processing(workers=[address]).get(address, ())
    return [str(k) for k in keys if str(k).startswith(prefix)]


# --- data ---------------------------------------------------------------------------------------
def done_marks(array_dir: str) -> np.ndarray | None:
    """The done bytes of a blockwise output (None before its record exists)."""
    try:
        found = read_done(array_dir)
    except (FileNotFoundError, ValueError):  # caught between the record's two files being written
        return None
    return None if found is None else found[1]


def tree_bytes(path: str) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself) with its bytes: to check nothing changed."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {"": f.read()}
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def array_bytes(array_dir: str) -> dict[str, bytes]:
    """The stored bytes of a Zarr array (metadata and chunks), without daskseg's done record."""
    return {k: v for k, v in tree_bytes(array_dir).items() if not os.path.basename(k).startswith("daskseg_done")}


def digest(batch, key) -> str:
    """A hash of one array of a batch: its ROI, dtype, shape and bytes."""
    array = batch[key]
    h = hashlib.sha256(repr((array.spec.roi, array.data.dtype.str, array.data.shape)).encode())
    h.update(np.ascontiguousarray(array.data).tobytes())
    return h.hexdigest()


def wait_until_idle(address: str, timeout: float = 60) -> None:
    """Wait until no task is queued or running on the cluster at ``address`` (e.g. after a PreCache's
    teardown cancelled its tasks), so that the next test or the cluster's shutdown finds it idle."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        poll(lambda: not any(client.processing().values()), timeout, f"the cluster at {address} to be idle", 0.05)
