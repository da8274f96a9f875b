"""submit_bounded on a real LocalCluster: bounded window, failures collected, retries, interruption."""

from __future__ import annotations

import threading
import time

import pytest
from dask_fixtures import local_client

from daskseg.blockwise.submit import call_with_time_limit, parse_max_in_flight, submit_bounded, trim_scheduler_memory
from daskseg.errors import BlocksFailedError, BlockTimeoutError


@pytest.fixture(scope="module")
def client():
    with local_client(n_workers=2) as c:
        yield c


def square(item: int) -> int:
    return item * item


def fail_on_three(item: int) -> int:
    if item == 3:
        raise ValueError(f"item {item} is broken")
    return item


def always_fail(item: int) -> int:
    raise RuntimeError(f"item {item} fails")


def fail_first_try(item: int, marker_dir: str) -> int:
    """Fails the first time it sees an item (a marker file remembers), then succeeds."""
    import os

    marker = os.path.join(marker_dir, str(item))
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError(f"transient failure of item {item}")
    return item


class CountingIterator:
    """Items 0..n-1, counting how many were taken (to see how far ahead submission runs)."""

    def __init__(self, n: int):
        self.n = n
        self.taken = 0

    def __iter__(self):
        for i in range(self.n):
            self.taken += 1
            yield i


def test_runs_every_item_with_a_bounded_window(client):
    items = CountingIterator(40)
    results = {}
    ahead = []

    def on_done(item, result):
        results[item] = result
        ahead.append(items.taken - len(results))

    stats = submit_bounded(client, square, items, key=lambda i: f"square-{i}", max_in_flight=3, on_done=on_done)
    assert results == {i: i * i for i in range(40)}
    assert stats.submitted == stats.finished == 40 and not stats.failures
    assert stats.max_in_flight == 3
    # never more than the window was taken from the iterator beyond what had finished
    assert max(ahead) <= 3


def test_failures_are_collected_and_the_rest_runs(client):
    done = []
    stats = submit_bounded(
        client, fail_on_three, range(8), key=lambda i: f"predict-block-{i}-t1", retries=0,
        on_done=lambda item, result: done.append(item),
    )
    assert sorted(done) == [0, 1, 2, 4, 5, 6, 7]
    assert [f.key for f in stats.failures] == ["predict-block-3-t1"]
    assert "ValueError: item 3 is broken" in stats.failures[0].error
    assert "fail_on_three" in stats.failures[0].traceback
    err = BlocksFailedError(stats.failures, stats.submitted)
    assert "1 of 8 tasks failed" in str(err) and "predict-block-3-t1" in str(err)


def test_retries_recover_transient_failures(client, tmp_path):
    done = []
    stats = submit_bounded(
        client, fail_first_try, range(5), key=lambda i: f"flaky-{i}", args=(str(tmp_path),), retries=1,
        on_done=lambda item, result: done.append(result),
    )
    assert sorted(done) == list(range(5)) and not stats.failures


def test_max_failures_stops_submitting(client):
    stats = submit_bounded(
        client, always_fail, range(20), key=lambda i: f"always-fail-{i}", retries=0,
        max_in_flight=2, max_failures=2,
    )
    assert stats.stopped_early
    assert len(stats.failures) <= 4 and stats.submitted < 20


def test_an_exception_in_the_client_stops_the_run(client):
    seen = []

    def on_done(item, result):
        seen.append(item)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        submit_bounded(client, square, range(100), key=lambda i: f"interrupt-{i}", max_in_flight=4, on_done=on_done)
    assert len(seen) == 3


def test_time_limit_raises_and_tells_the_block_to_stop():
    seen = {}

    def hang(cancel):
        seen["cancel"] = cancel
        cancel.wait(30)  # returns as soon as the time limit sets the event
        seen["stopped"] = cancel.is_set()

    start = time.monotonic()
    with pytest.raises(BlockTimeoutError, match="0.2 s"):
        call_with_time_limit(hang, 0.2)
    assert time.monotonic() - start < 5
    assert seen["cancel"].is_set()
    assert call_with_time_limit(lambda x, cancel: x + 1, 5, 41) == 42
    with pytest.raises(ZeroDivisionError):
        call_with_time_limit(lambda cancel: 1 / 0, 5)
    assert threading.active_count() < 50


def test_window_sizes():
    assert parse_max_in_flight("2x", 8) == 16
    assert parse_max_in_flight("2x", 0) == 2
    assert parse_max_in_flight(5, 8) == 5
    with pytest.raises(ValueError):
        parse_max_in_flight(0, 8)


def span_collections(dask_scheduler) -> int:
    spans = dask_scheduler.extensions["spans"].spans.values()
    return max(len((s.metadata or {}).get("collections", [])) for s in spans)


def cached_keys(dask_scheduler=None) -> int:
    from dask.utils import key_split

    return key_split.cache_info().currsize


def test_scheduler_span_metadata_stays_small(client):
    """distributed keeps one metadata entry per submission forever; the loop compacts it."""
    submit_bounded(client, square, range(60), key=lambda i: f"compact-{i}", max_in_flight=2, trim_every=10)
    assert client.run_on_scheduler(span_collections) <= 12


def test_scheduler_key_cache_is_trimmed(client):
    """key_split's memo keeps every task key (~300 B each, up to 100,000); the loop empties it."""
    submit_bounded(client, square, range(300), key=lambda i: f"untrimmed-{i}", max_in_flight=4, trim_every=0)
    assert client.run_on_scheduler(cached_keys) >= 300  # without trimming, every key stays
    assert sum(client.run(cached_keys).values()) >= 300  # on the workers too
    submit_bounded(client, square, range(300), key=lambda i: f"trimmed-{i}", max_in_flight=4, trim_every=50)
    assert client.run_on_scheduler(cached_keys) < 100
    assert all(n < 100 for n in client.run(cached_keys).values())


def test_trim_scheduler_memory_reports_what_it_dropped(client):
    submit_bounded(client, square, range(20), key=lambda i: f"report-{i}", max_in_flight=2, trim_every=0)
    dropped = client.run_on_scheduler(trim_scheduler_memory)
    assert dropped["cached_keys"] >= 20 and dropped["span_entries"] >= 1
    assert client.run_on_scheduler(cached_keys) == 0


def fail_if_group_holds_three(group: tuple[int, ...]) -> int:
    if 3 in group:
        raise ValueError("three")
    return sum(group)


def test_failed_task_can_be_replaced_by_its_parts(client):
    """on_failed may return items to run instead: a failed group reruns one by one, only (3,) fails."""
    done: list[tuple[int, ...]] = []
    stats = submit_bounded(
        client, fail_if_group_holds_three, [(0, 1, 2), (3, 4, 5), (6,)], key=lambda g: f"group-{g}",
        max_in_flight=2, retries=0, on_done=lambda item, result: done.append(item),
        on_failed=lambda f: [(i,) for i in f.item] if len(f.item) > 1 else None,
    )
    assert sorted(done) == [(0, 1, 2), (4,), (5,), (6,)]
    assert [f.item for f in stats.failures] == [(3,)]
    assert stats.submitted == 6 and stats.finished == 4
