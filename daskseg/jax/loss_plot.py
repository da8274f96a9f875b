"""Render the training log (``Train``'s CSV of iteration, loss, time) as a PNG of the loss curve."""

from __future__ import annotations

import csv
import logging
import os

import numpy as np

logger = logging.getLogger(__name__)


def read_log(csv_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a training log CSV as float arrays (``iteration``, ``loss``, ``time_s``, ...)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"training log {os.fspath(csv_path)!r} has no rows")
    if "iteration" not in rows[0] or "loss" not in rows[0]:
        raise ValueError(f"training log {os.fspath(csv_path)!r} lacks 'iteration'/'loss' columns: {sorted(rows[0])}")
    return {name: np.array([float(r[name]) for r in rows]) for name in rows[0]}


def plot_loss(csv_path: str | os.PathLike, png_path: str | os.PathLike, smooth: int | None = None) -> str:
    """Plot loss against iteration (raw and a running mean) from ``csv_path`` into ``png_path``; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    log = read_log(csv_path)
    it, loss = log["iteration"], log["loss"]
    window = smooth if smooth is not None else max(1, len(loss) // 50)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(it, loss, lw=0.8, alpha=0.5 if window > 1 else 1.0, label="loss")
    if window > 1 and len(loss) >= window:
        mean = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(it[window - 1 :], mean, lw=1.5, label=f"running mean ({window})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    if np.all(loss > 0) and loss.max() / max(loss.min(), 1e-12) > 20:
        ax.set_yscale("log")
    title = os.path.basename(os.fspath(csv_path))
    if "time_s" in log and len(log["time_s"]):
        title += f" (median {np.median(log['time_s']):.3g} s/iteration)"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = os.fspath(png_path)
    directory = os.path.dirname(out)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    logger.info("wrote loss plot %s (%d points)", out, len(loss))
    return out
