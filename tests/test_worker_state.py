"""``daskseg.worker_state``: the one registry of what a process keeps between tasks."""

from __future__ import annotations

import threading
import time

import pytest

from daskseg import worker_state
from daskseg.worker_state import WorkerState


def test_built_once_and_reused_least_recently_used_released_beyond_the_limit(monkeypatch):
    monkeypatch.setitem(worker_state.LIMITS, "things", 2)
    state, released, builds = WorkerState(), [], []

    def get(key):
        return state.get("things", key, lambda: builds.append(key) or f"v{key}", release=released.append)

    assert get(1) == "v1" and get(1) == "v1" and builds == [1]
    get(2)
    get(1)  # 1 is now the most recently used
    get(3)
    assert released == ["v2"] and state.count("things") == 2
    assert get(1) == "v1" and builds == [1, 2, 3]


def test_owners_release_their_entries_early():
    state, released = WorkerState(), []
    for run in ("a", "b"):
        for name in ("raw", "out"):
            state.get("datasets", (run, name), lambda run=run, name=name: f"{run}/{name}", release=released.append)
    assert state.release("datasets", lambda key: key[0] != "b") == 2
    assert sorted(released) == ["a/out", "a/raw"] and state.count("datasets") == 2


def test_concurrent_first_uses_build_once_and_other_keys_do_not_wait():
    state, builds = WorkerState(), []
    slow_started = threading.Event()

    def slow():
        slow_started.set()
        time.sleep(0.5)
        builds.append("slow")
        return "network"

    threads = [threading.Thread(target=state.get, args=("processors", "net", slow)) for _ in range(3)]
    for t in threads:
        t.start()
    slow_started.wait(5)
    t0 = time.perf_counter()
    assert state.get("datasets", "raw", lambda: "handle") == "handle"
    assert time.perf_counter() - t0 < 0.3  # not blocked by the network being built
    for t in threads:
        t.join()
    assert builds == ["slow"]


def test_a_failed_build_is_not_kept():
    state = WorkerState()

    def fail():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        state.get("processors", "x", fail)
    assert state.count("processors") == 0 and state.get("processors", "x", lambda: 1) == 1
