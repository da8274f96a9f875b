"""Label and intensity statistics (``daskseg info --stats``) on hand-made volumes with known answers."""

import numpy as np
import pytest
from click.testing import CliRunner

from daskseg.cli import main
from daskseg.errors import SegmentError
from daskseg.io import write_array
from daskseg.segment.stats import intensity_statistics, label_statistics

VS = (40, 4, 4)


def _squares() -> np.ndarray:
    """4 sections of 100 x 100: a 25 x 25 square (id 1), a 50 x 50 square (id 2), the rest id 3."""
    labels = np.full((4, 100, 100), 3, np.uint64)
    labels[:, 10:35, 10:35] = 1
    labels[:, 45:95, 45:95] = 2
    return labels


def _diameter(pixels: int) -> float:
    return 2 * np.sqrt(pixels * 16 / np.pi)  # nm, 4 x 4 nm pixels


def test_calibre_boundary_and_thin_fraction_by_hand():
    s = label_statistics(_squares(), VS)
    assert s["objects"] == 3 and s["sections"] == 4 and s["cross_sections"] == 12
    d1, d2, d3 = _diameter(625), _diameter(2500), _diameter(10000 - 625 - 2500)
    assert d1 == pytest.approx(112.84, abs=0.01) and d2 == pytest.approx(225.68, abs=0.01)
    p = s["diameter_percentiles_nm"]
    assert p[50.0] == pytest.approx(d2) and p[5.0] == pytest.approx(d1) and p[95.0] == pytest.approx(d3)
    assert s["mean_diameter_nm"] == pytest.approx((d1 + d2 + d3) / 3)
    # the squares' inner rims (96 and 196 pixels) and the pixels just outside them (100 and 200)
    assert s["boundary_fraction"] == pytest.approx((96 + 100 + 196 + 200) / 10000)
    # only the 25 x 25 square (113 nm) is thinner than 200 nm; at 250 nm the 50 x 50 one joins it
    assert s["thin_fraction"] == pytest.approx(625 / 10000)
    assert label_statistics(_squares(), VS, thin=250)["thin_fraction"] == pytest.approx(3125 / 10000)
    # the voxel size sets the scale: 8 nm pixels double the diameters
    assert label_statistics(_squares(), (40, 8, 8))["diameter_percentiles_nm"][50.0] == pytest.approx(2 * d2)


def test_background_is_left_out_and_sections_may_come_one_by_one():
    labels = _squares()
    labels[:, :, :5] = 0  # a background strip along one edge: no object, no boundary of its own
    s = label_statistics(iter(labels), VS)
    assert s["objects"] == 3 and s["cross_sections"] == 12
    labelled = 10000 - 500
    assert s["thin_fraction"] == pytest.approx(625 / labelled)
    # id 3's pixels next to the strip are on a boundary now; the strip's are not counted
    assert s["boundary_fraction"] == pytest.approx((96 + 100 + 196 + 200 + 100) / labelled)
    with pytest.raises(SegmentError, match="integer"):
        label_statistics(labels.astype(np.float32), VS)
    with pytest.raises(SegmentError, match="3-D"):
        label_statistics(labels[0], VS)


def test_intensity_statistics_by_hand():
    raw = np.zeros((3, 10, 10), np.uint8)
    raw[0, :, :5], raw[0, :, 5:] = 100, 200   # mean 150, std 50
    raw[1, :, :5], raw[1, :, 5:] = 110, 190   # mean 150, std 40
    raw[2] = 150                              # flat: a missing section
    s = intensity_statistics(raw)
    assert s["mean"] == pytest.approx(150) and s["section_mean_sd"] == pytest.approx(0)
    assert s["std"] == pytest.approx(np.std(raw.astype(float)))
    assert s["section_contrast_cv"] == pytest.approx(np.std([50, 40, 0]) / 30)
    assert s["flat_sections"] == [2]


def test_info_stats_prints_them(tmp_path):
    write_array(tmp_path / "s.zarr", "labels", _squares(), VS, chunk_shape=(1, 50, 50))
    raw = np.random.default_rng(0).integers(0, 255, (4, 20, 20), dtype=np.uint8)
    raw[2] = 128
    write_array(tmp_path / "s.zarr", "raw", raw, VS)
    runner = CliRunner()
    result = runner.invoke(main, ["info", "--stats", f"{tmp_path}/s.zarr/labels"])
    assert result.exit_code == 0, result.output
    assert "p5 113, p25 113, p50 226, p75 374, p95 374" in result.output
    assert "boundary fraction: 0.059" in result.output and "thinner than 200 nm: 0.062" in result.output
    assert "objects:           3 in 4 sections (12 cross-sections)" in result.output
    result = runner.invoke(main, ["info", "--stats", f"{tmp_path}/s.zarr"])
    assert result.exit_code == 0, result.output
    assert "p50 226" in result.output and "flat sections:     [2]" in result.output
    plain = runner.invoke(main, ["info", f"{tmp_path}/s.zarr/labels"])
    assert "calibre" not in plain.output
