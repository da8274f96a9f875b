"""plot_loss renders the Train log as a PNG."""

from __future__ import annotations

import pytest

from daskseg.jax.loss_plot import plot_loss, read_log


def test_plot_loss_writes_png(tmp_path):
    csv_path = tmp_path / "m_log.csv"
    rows = ["iteration,loss,time_s,timestamp"] + [f"{i},{1.0 / i:.6f},0.1,{1000 + i}" for i in range(1, 201)]
    csv_path.write_text("\n".join(rows) + "\n")
    log = read_log(csv_path)
    assert log["iteration"][-1] == 200 and log["loss"][0] == 1.0
    png = plot_loss(csv_path, tmp_path / "plots" / "loss.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_loss_rejects_empty_log(tmp_path):
    csv_path = tmp_path / "empty.csv"
    csv_path.write_text("iteration,loss,time_s,timestamp\n")
    with pytest.raises(ValueError, match="no rows"):
        plot_loss(csv_path, tmp_path / "x.png")
