"""The tutorial's training pipeline up to RandomProvider, on three small synthetic samples.

    tuple(gp.Hdf5Source(...) + gp.Normalize(raw) + gp.RandomLocation() for s in 'ABC') + gp.RandomProvider()
"""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

VOXEL_SIZE = gp.Coordinate((40, 4, 4))
SAMPLE_SHAPE = (10, 48, 48)
INPUT_SHAPE = (8, 36, 36)  # the tutorial's (84, 268, 268), scaled down
OUTPUT_SHAPE = (4, 20, 20)  # the tutorial's (56, 56, 56), scaled down


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Three CREMI-like samples: random uint8 raw and uint64 label stripes unique per sample."""
    root = tmp_path_factory.mktemp("cremi")
    out = {}
    for i, s in enumerate("ABC"):
        rng = np.random.default_rng(i)
        raw = rng.integers(0, 256, SAMPLE_SHAPE, dtype=np.uint8)
        labels = (np.arange(SAMPLE_SHAPE[2]) // 6 + 1 + 100 * i).astype(np.uint64)
        labels = np.broadcast_to(labels, SAMPLE_SHAPE).copy()
        path = root / f"sample_{s}_padded_20160501.hdf"
        offset = VOXEL_SIZE * (i, 2 * i, 0)  # the samples need not start at the origin
        write_array(path, "volumes/raw", raw, VOXEL_SIZE, offset=offset)
        write_array(path, "volumes/labels/neuron_ids", labels, VOXEL_SIZE, offset=offset)
        out[s] = (path, raw, labels)
    return out


def training_sources(samples, raw, gt_labels):
    return tuple(
        gp.Hdf5Source(
            samples[s][0],
            datasets={raw: "volumes/raw", gt_labels: "volumes/labels/neuron_ids"},
        )
        + gp.Normalize(raw)
        + gp.RandomLocation()
        for s in ["A", "B", "C"]
    ) + gp.RandomProvider()


def locate(block: np.ndarray, volume: np.ndarray) -> list[tuple[int, ...]]:
    """All voxel offsets at which ``block`` occurs in ``volume``."""
    first = block[(0,) * block.ndim]
    hits = []
    for start in np.argwhere(volume == first):
        if any(s + b > v for s, b, v in zip(start, block.shape, volume.shape)):
            continue
        window = volume[tuple(slice(s, s + b) for s, b in zip(start, block.shape))]
        if np.array_equal(window, block):
            hits.append(tuple(int(v) for v in start))
    return hits


def make_request(raw, gt_labels, seed=None):
    request = gp.BatchRequest(random_seed=seed)
    request.add(raw, gp.Coordinate(INPUT_SHAPE) * VOXEL_SIZE)
    request.add(gt_labels, gp.Coordinate(OUTPUT_SHAPE) * VOXEL_SIZE)
    return request


def test_training_sources_deliver_normalized_batches_from_random_samples(samples):
    raw = gp.ArrayKey("RAW")
    gt_labels = gp.ArrayKey("LABELS")
    pipeline = training_sources(samples, raw, gt_labels)
    request = make_request(raw, gt_labels)
    context = (request[gt_labels].roi.begin - request[raw].roi.begin) / VOXEL_SIZE
    assert context == (2, 8, 8)

    used = set()
    with gp.build(pipeline):
        assert pipeline.spec[raw].dtype == np.float32 and pipeline.spec[raw].roi.unbounded
        for seed in range(12):
            request.random_seed = seed
            batch = pipeline.request_batch(request)
            assert set(batch) == {raw, gt_labels}
            assert batch[raw].spec.roi == request[raw].roi and batch[gt_labels].spec.roi == request[gt_labels].roi
            assert batch[raw].data.shape == INPUT_SHAPE and batch[gt_labels].data.shape == OUTPUT_SHAPE
            assert batch[raw].data.dtype == np.float32 and batch[gt_labels].data.dtype == np.uint64
            assert batch[raw].spec.voxel_size == VOXEL_SIZE
            assert 0.0 <= batch[raw].data.min() and batch[raw].data.max() <= 1.0

            # find where the batch came from: raw * 255 is the uint8 source data somewhere
            as_uint8 = np.rint(batch[raw].data * 255).astype(np.uint8)
            np.testing.assert_allclose(as_uint8 / np.float32(255), batch[raw].data, rtol=1e-6)
            found = [(s, at) for s in "ABC" for at in locate(as_uint8, samples[s][1])]
            assert len(found) == 1, f"batch {seed} matches {found}"
            s, at = found[0]
            used.add(s)
            # labels come from the same sample, at the output's place inside the input
            lab_at = tuple(a + c for a, c in zip(at, context))
            expected = samples[s][2][tuple(slice(a, a + o) for a, o in zip(lab_at, OUTPUT_SHAPE))]
            np.testing.assert_array_equal(batch[gt_labels].data, expected)
    assert used == {"A", "B", "C"}


def test_training_sources_are_reproducible_with_a_request_seed(samples):
    raw = gp.ArrayKey("RAW")
    gt_labels = gp.ArrayKey("LABELS")
    pipeline = training_sources(samples, raw, gt_labels)
    with gp.build(pipeline):
        first = [pipeline.request_batch(make_request(raw, gt_labels, seed)) for seed in (1, 2, 3)]
        second = [pipeline.request_batch(make_request(raw, gt_labels, seed)) for seed in (1, 2, 3)]
    for a, b in zip(first, second):
        for key in (raw, gt_labels):
            np.testing.assert_array_equal(a[key].data, b[key].data)
    assert not np.array_equal(first[0][raw].data, first[1][raw].data)


def test_training_sources_with_snapshot_and_profiling_stats(samples, tmp_path, caplog):
    """The tutorial's pipeline ends in Snapshot and PrintProfilingStats; the snapshots hold the batches."""
    raw = gp.ArrayKey("RAW")
    gt_labels = gp.ArrayKey("LABELS")
    pipeline = (
        training_sources(samples, raw, gt_labels)
        + gp.Snapshot(
            {raw: "/volumes/raw", gt_labels: "/volumes/labels/neuron_ids"},
            output_dir=str(tmp_path / "snapshots"),
            output_filename="batch_{iteration}.hdf",
            every=2,
            compression_type="gzip",
        )
        + gp.PrintProfilingStats(every=2)
    )
    batches = []
    with caplog.at_level("INFO"):
        with gp.build(pipeline):
            for i in range(4):
                batches.append(pipeline.request_batch(make_request(raw, gt_labels, seed=100 + i)))
    # every 2nd batch, starting with the first: batches 1 and 3 (no Train node sets an iteration)
    written = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert written == ["batch_1.hdf", "batch_3.hdf"]
    for count, batch in ((1, batches[0]), (3, batches[2])):
        path = tmp_path / "snapshots" / f"batch_{count}.hdf"
        source = gp.Hdf5Source(path, {raw: "volumes/raw", gt_labels: "volumes/labels/neuron_ids"})
        with gp.build(source):
            assert source.spec[raw].roi == batch[raw].spec.roi
            assert source.spec[gt_labels].roi == batch[gt_labels].spec.roi
            back = source.request_batch(
                gp.BatchRequest({k: gp.ArraySpec(roi=batch[k].spec.roi) for k in (raw, gt_labels)})
            )
        np.testing.assert_array_equal(back[raw].data, batch[raw].data)
        np.testing.assert_array_equal(back[gt_labels].data, batch[gt_labels].data)
    log = caplog.text
    for name in ("Hdf5Source", "Normalize", "RandomLocation"):
        assert name in log, f"{name} missing from the profiling table"


def test_testing_pipeline_scans_and_writes_the_normalized_sample(samples, tmp_path):
    """The tutorial's testing pipeline without the network: source + Normalize + Hdf5Write + Scan."""
    raw = gp.ArrayKey("RAW")
    path, raw_data, _ = samples["B"]
    source = gp.Hdf5Source(path, datasets={raw: "volumes/raw"})
    with gp.build(source):
        raw_roi = source.spec[raw].roi

    request = gp.BatchRequest()
    request.add(raw, gp.Coordinate((4, 20, 20)) * VOXEL_SIZE)
    pipeline = (
        source
        + gp.Normalize(raw)
        + gp.Hdf5Write(
            {raw: "/volumes/raw"},
            output_dir=str(tmp_path),
            output_filename="predictions_sample_B.hdf",
            compression_type="gzip",
        )
        + gp.PrintProfilingStats(every=10)
        + gp.Scan(reference=request)
    )
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest())
    assert len(batch) == 0

    written = gp.Hdf5Source(tmp_path / "predictions_sample_B.hdf", {raw: "volumes/raw"})
    with gp.build(written):
        assert written.spec[raw].roi == raw_roi and written.spec[raw].dtype == np.float32
        data = written.request_batch(gp.BatchRequest({raw: gp.ArraySpec(roi=raw_roi)}))[raw].data
    np.testing.assert_allclose(data, raw_data / 255, rtol=1e-6)
