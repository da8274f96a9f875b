"""`daskseg demo` end to end at toy size: every stage runs and the report holds sane numbers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from daskseg.demo import DemoSettings, run_demo
from daskseg.io import open_dataset
from daskseg.segment import cremi_scores
from daskseg.segment.baseline import THRESHOLDS
from daskseg.synth import LABELS_DATASET, make_sample


@pytest.mark.slow
def test_demo_writes_a_complete_report(tmp_path):
    settings = DemoSettings(
        train_shape=(40, 160, 160), test_shape=(36, 168, 168), train_input=(28, 84, 84),
        predict_input=(28, 124, 124), num_fmaps=4, iterations=4, workers=1,
    )
    numbers = run_demo(tmp_path, settings)
    for name in ("report.md", "report.json", "loss.png", "section.png"):
        assert os.path.getsize(tmp_path / name) > 0
    with open(tmp_path / "report.json") as f:
        assert json.load(f)["iterations"] == 4
    assert numbers["prediction"]["blocks"] > 1  # predicted blockwise, not in one piece
    for key in ("network_affinities", "raw_threshold_affinities"):
        assert all(0.0 <= numbers[key][m] <= 1.0 for m in ("accuracy", "f1", "boundary_f1", "macro_f1"))
    # the segmentation is on disk, next to the prediction, and its blockwise scores are its scores
    seg_path = numbers["segmentation"]["output"]
    assert seg_path.startswith(str(tmp_path / "prediction.zarr")) and numbers["blockwise_vs_one_block"]["blocks"] == 8
    container, _, name = seg_path.partition(".zarr/")
    segmentation = open_dataset(container + ".zarr", name)
    labels = open_dataset(tmp_path / "data" / "test_sample.zarr", LABELS_DATASET).read(segmentation.roi)
    expected = cremi_scores(segmentation.read(), labels)
    for score in ("voi_split", "voi_merge", "adapted_rand"):
        assert numbers["network_segmentation"][score] == pytest.approx(expected[score], abs=1e-9)
    assert "network, blockwise" in (tmp_path / "report.md").read_text()
    # the data is cremi-like, and the classical baseline's segmentation is scored at its best threshold
    assert numbers["preset"] == "cremi-like"
    test_labels = open_dataset(tmp_path / "data" / "test_sample.zarr", LABELS_DATASET).read()
    np.testing.assert_array_equal(test_labels, make_sample(settings.test_shape, seed=100, preset="cremi-like")[1])
    baseline = numbers["baseline_segmentation"]
    assert baseline["threshold"] in THRESHOLDS and baseline["voi"] > 1.0
    assert "classical baseline" in (tmp_path / "report.md").read_text()
