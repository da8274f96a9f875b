"""Render the training log (``Train``'s CSV of iteration, loss, time) as a PNG of the loss curve."""

from __future__ import annotations

import csv
import logging
import os

import numpy as np

from ..errors import LossLogError

logger = logging.getLogger(__name__)


def read_log(csv_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The numeric columns of a training log CSV as float arrays (``iteration``, ``loss``, ``time_s``, ...).

    Raises:
        LossLogError: naming the file and, for a value that is not a number, its line and column.
    """
    path = os.fspath(csv_path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as e:
        raise LossLogError(f"training log {path} is not a readable CSV file: {e}") from None
    if not columns or not rows:
        raise LossLogError(f"training log {path} has no rows (written by training: {{basename}}_log.csv)")
    missing = [c for c in ("iteration", "loss") if c not in columns]
    if missing:
        raise LossLogError(f"training log {path} lacks the columns {missing} (it has {columns}); give the CSV "
                           f"training writes ({{basename}}_log.csv)")
    log = {}
    for name in columns:
        try:
            log[name] = np.array([float(row[name]) for row in rows])
        except (TypeError, ValueError):
            if name not in ("iteration", "loss"):  # another column: left out
                continue
            line, row = next((i, r) for i, r in enumerate(rows, start=2) if not _is_number(r[name]))
            raise LossLogError(f"training log {path}, line {line}: {name} is {row[name]!r}, not a number") from None
    return log


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


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
