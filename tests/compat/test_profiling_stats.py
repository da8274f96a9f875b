"""ProfilingStats answers gunpowder's queries: timing summaries per node and method, span."""

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array
from daskseg.profiling import ProfilingStats, Timing

RAW = gp.ArrayKey("PS_RAW")


def _timing(node, method, seconds):
    t = Timing(node, method)
    t.elapsed = seconds
    return t


def test_timing_summary_statistics_by_hand():
    stats = ProfilingStats()
    for s in (1.0, 2.0, 6.0):
        stats.add(_timing("Normalize", "process", s))
    other = ProfilingStats()
    other.add(_timing("Normalize", "process", 3.0))
    stats.merge_with(other)
    summary = stats.get_timing_summary("Normalize", "process")
    assert (summary.counts(), summary.min(), summary.max(), summary.mean(), summary.median()) == (4, 1.0, 6.0, 3.0, 2.5)
    assert set(stats.get_timing_summaries()) == {("Normalize", "process")}
    with pytest.raises(RuntimeError, match="No timing summary for node Crop"):
        stats.get_timing_summary("Crop", "process")
    t = Timing("Node")
    assert t.elapsed() == 0.0 and t.get_node_name() == "Node" and t.get_method_name() is None


def test_a_pipelines_batch_carries_summaries_and_a_span(tmp_path):
    path = tmp_path / "ps.zarr"
    write_array(path, "raw", np.zeros((4, 4), np.float32), (1, 1))
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.Normalize(RAW, factor=1.0)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (2, 2)))}))
    stats = batch.profiling_stats
    summary = stats.get_timing_summary("Normalize", "process")
    assert summary.counts() == 1 and summary.min() >= 0.0
    first, last = stats.span()
    assert first is not None and last >= first and stats.span_time() == last - first
