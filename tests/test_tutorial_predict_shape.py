"""The tutorial's prediction pipeline, with a stand-in for Predict:

    source + Normalize-like prediction + Hdf5Write/ZarrWrite + PrintProfilingStats + Scan(reference=request)
    pipeline.request_batch(gp.BatchRequest())

The written predictions must reproduce the input exactly over the output ROI
``raw_roi.grow(-context, -context)``, also for a volume that is no multiple of the output size.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import open_dataset, write_array

VOXEL_SIZE = gp.Coordinate((40, 4, 4))
INPUT_SHAPE = (10, 24, 24)
OUTPUT_SHAPE = (6, 16, 16)


class StandInPredict(gp.BatchFilter):
    """Like the tutorial's Predict: needs ``raw`` with context around each output, provides ``pred``
    (3 channels, channel c = (c + 1) * raw / 255) for the ROI given in ``array_specs``."""

    def __init__(self, raw, pred, context, pred_roi):
        self.raw, self.pred, self.context, self.pred_roi = raw, pred, context, pred_roi

    def setup(self):
        spec = self.spec[self.raw].copy()
        spec.roi = self.pred_roi
        spec.dtype = np.dtype(np.float32)
        self.provides(self.pred, spec)

    def prepare(self, request):
        deps = gp.BatchRequest()
        half = self.context / 2
        deps[self.raw] = gp.ArraySpec(roi=request[self.pred].roi.grow(half, half))
        return deps

    def process(self, batch, request):
        roi = request[self.pred].roi
        raw = batch[self.raw].crop(roi).data.astype(np.float32) / 255.0
        spec = self.spec[self.pred].copy()
        spec.roi = roi
        out = gp.Batch()
        out[self.pred] = gp.Array(np.stack([raw * (c + 1) for c in range(3)]), spec)
        return out


@pytest.mark.parametrize("fmt", ["hdf", "zarr"])
@pytest.mark.parametrize("shape", [(20, 48, 48), (23, 61, 57)], ids=["multiple", "not-multiple"])
def test_prediction_pipeline_writes_the_whole_output_roi(tmp_path, fmt, shape, caplog):
    raw_data = np.random.default_rng(3).integers(0, 256, size=shape, dtype=np.uint8)
    sample = tmp_path / f"sample_A.{fmt}"
    write_array(sample, "volumes/raw", raw_data, VOXEL_SIZE, offset=(1000, 200, 120))

    raw = gp.ArrayKey("RAW")
    pred_affs = gp.ArrayKey("PRED_AFFS")
    input_size = gp.Coordinate(INPUT_SHAPE) * VOXEL_SIZE
    output_size = gp.Coordinate(OUTPUT_SHAPE) * VOXEL_SIZE
    context = input_size - output_size

    request = gp.BatchRequest()
    request.add(raw, input_size)
    request.add(pred_affs, output_size)

    source_cls, writer_cls = (gp.Hdf5Source, gp.Hdf5Write) if fmt == "hdf" else (gp.ZarrSource, gp.ZarrWrite)
    source = source_cls(sample, datasets={raw: "volumes/raw"})
    with gp.build(source):
        raw_roi = source.spec[raw].roi
    pred_roi = raw_roi.grow(-context, -context)

    pipeline = (
        source
        + StandInPredict(raw, pred_affs, context, pred_roi)
        + writer_cls(
            {raw: "/volumes/raw", pred_affs: "/volumes/pred_affs"},
            output_dir=tmp_path,
            output_filename=f"predictions_sample_A.{fmt}",
            compression_type="gzip",
        )
        + gp.PrintProfilingStats(every=10)
        + gp.Scan(reference=request)
    )
    with caplog.at_level(logging.INFO, logger="daskseg"), gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest())
    assert len(batch) == 0
    assert any("Profiling Stats" in r.getMessage() for r in caplog.records)

    out = tmp_path / f"predictions_sample_A.{fmt}"
    pred = open_dataset(out, "volumes/pred_affs")
    assert pred.roi == pred_roi and pred.voxel_size == VOXEL_SIZE and pred.shape[0] == 3
    c = context / VOXEL_SIZE  # voxels
    expected = raw_data[c[0] : shape[0] - c[0], c[1] : shape[1] - c[1], c[2] : shape[2] - c[2]] / np.float32(255)
    for channel in range(3):
        np.testing.assert_array_equal(pred.read()[channel], expected * (channel + 1))

    # raw is written wherever some chunk's input reached: the output ROI plus half the context
    raw_out = open_dataset(out, "volumes/raw")
    assert raw_out.roi == raw_roi
    seen = pred_roi.grow(context / 2, context / 2)
    np.testing.assert_array_equal(
        raw_out.read(seen),
        open_dataset(sample, "volumes/raw").read(seen),
    )
