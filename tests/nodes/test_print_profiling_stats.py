"""PrintProfilingStats: the table's numbers, and logging every N batches over a fresh window."""

from __future__ import annotations

import logging

import pytest

import daskseg as gp
from daskseg.nodes.print_profiling_stats import format_profiling_table
from daskseg.profiling import ProfilingStats, Timing

RAW = gp.ArrayKey("RAW")


def _timing(node, method, seconds):
    t = Timing(node, method)
    t.elapsed = seconds
    return t


def _row(table, node, method):
    for line in table.splitlines():
        fields = line.split()
        if fields[:2] == [node, method]:
            return fields
    raise AssertionError(f"no row for {node}.{method} in\n{table}")


def test_table_counts_means_totals_and_shares():
    stats = ProfilingStats()
    for seconds in (1.0, 3.0):
        stats.add(_timing("Source", "provide", seconds))
    stats.add(_timing("Normalize", "process", 4.0))
    stats.add(_timing("Normalize", "prepare", 0.0))
    table = format_profiling_table(stats, upstream_seconds=[2.5, 5.5])
    count, lo, hi, mean, median, total, share = _row(table, "Source", "provide")[2:]
    assert (int(count), float(lo), float(hi), float(mean), float(median)) == (2, 1.0, 3.0, 2.0, 2.0)
    assert float(total) == 4.0 and share == "50.0%"
    assert _row(table, "Normalize", "process")[-1] == "50.0%"
    assert _row(table, "Normalize", "prepare")[-1] == "0.0%"
    upstream = [line for line in table.splitlines() if line.startswith("TOTAL upstream")][0].split()
    assert upstream[3:] == ["2", "2.5000", "5.5000", "4.0000", "4.0000", "8.000"]


def test_logs_every_n_batches_about_the_batches_since_the_last_table(small_sample, caplog):
    path, _, _ = small_sample
    source = gp.ZarrSource(path, {RAW: "volumes/raw"}) if str(path).endswith(".zarr") else gp.Hdf5Source(
        path, {RAW: "volumes/raw"}
    )
    pipeline = source + gp.PrintProfilingStats(every=2)
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((400, 40, 40), (80, 20, 20)))
    with caplog.at_level(logging.INFO, logger="daskseg.nodes.print_profiling_stats"), gp.build(pipeline):
        for _ in range(5):
            pipeline.request_batch(request)
    tables = [r.getMessage() for r in caplog.records if "Profiling Stats" in r.getMessage()]
    assert len(tables) == 3  # after batches 2 and 4, and the unfinished window at teardown
    node = source.name()
    for table, count in zip(tables, ["2", "2", "1"]):
        assert _row(table, node, "provide")[2] == count  # counts per window, not accumulated
        assert _row(table, node, "provide")[-1] == "100.0%"


@pytest.mark.parametrize("every", [0, -3])
def test_every_below_one_logs_every_batch(every):
    assert gp.PrintProfilingStats(every=every).every == 1
