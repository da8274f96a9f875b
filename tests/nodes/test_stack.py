"""Stack: shapes, distinct samples from distinct seeds, reproducibility, ROIs."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("ST_RAW")
LABELS = gp.ArrayKey("ST_LABELS")
VS = (40, 4, 4)


class RecordSeeds(gp.BatchFilter):
    """Passes batches through and remembers the seeds of the requests it received."""

    def __init__(self):
        self.seeds = []

    def prepare(self, request):
        self.seeds.append(request.random_seed)


def _pipeline(tmp_path, n, record=None):
    path = tmp_path / "st.zarr"
    write_array(path, "raw", np.full((4, 8, 8), 0.5, dtype=np.float32), VS)
    write_array(path, "labels", np.arange(4 * 8 * 8, dtype=np.uint64).reshape(4, 8, 8), VS)
    pipeline = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + gp.NoiseAugment(RAW, var=0.01)
    if record is not None:
        pipeline = pipeline + record
    return pipeline + gp.Stack(n)


def _request(seed=5):
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((40, 8, 8), (80, 16, 20)))
    request[LABELS] = gp.ArraySpec(roi=gp.Roi((40, 8, 8), (80, 16, 20)))
    return request


def test_shapes_rois_and_distinct_samples(tmp_path):
    record = RecordSeeds()
    pipeline = _pipeline(tmp_path, 3, record)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request())
    raw, labels = batch[RAW], batch[LABELS]
    assert raw.data.shape == (3, 2, 4, 5) and labels.data.shape == (3, 2, 4, 5)
    assert raw.spec.roi == labels.spec.roi == gp.Roi((40, 8, 8), (80, 16, 20))
    assert raw.data.dtype == np.float32 and labels.data.dtype == np.uint64
    assert len(set(record.seeds)) == 3 and 5 not in record.seeds
    # the noise differs between samples, the (deterministic) labels do not
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.array_equal(raw.data[i], raw.data[j])
        np.testing.assert_array_equal(labels.data[i], np.arange(256).reshape(4, 8, 8)[1:3, 2:6, 2:7])


def test_reproducible(tmp_path):
    pipeline = _pipeline(tmp_path, 2)
    with gp.build(pipeline):
        a = pipeline.request_batch(_request(seed=11))[RAW].data
        b = pipeline.request_batch(_request(seed=11))[RAW].data
        c = pipeline.request_batch(_request(seed=12))[RAW].data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_profiling_and_argument_check(tmp_path):
    pipeline = _pipeline(tmp_path, 2)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request())
    timings = batch.profiling_stats.timings
    assert ("Stack", "provide") in timings and len(timings[("NoiseAugment", "process")]) == 2
    with pytest.raises(ValueError, match="num_repetitions"):
        gp.Stack(0)
