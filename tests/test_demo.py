"""`daskseg demo` end to end at toy size: every stage runs and the report holds sane numbers."""

from __future__ import annotations

import json
import os

import pytest

from daskseg.demo import DemoSettings, run_demo


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
    assert numbers["network_segmentation"]["voi"] >= 0.0
