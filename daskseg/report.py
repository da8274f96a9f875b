"""How good are predicted affinities? Scores against ground truth, a raw-intensity baseline, figures.

Used by ``daskseg demo`` (and usable on any prediction): affinity accuracy/precision/recall/F1,
the same for the best single threshold on raw intensities (the baseline a network must beat),
and a PNG of one section with raw, ground-truth and predicted affinities side by side.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from .nodes.add_affinities import seg_to_affgraph

logger = logging.getLogger(__name__)

NEAREST_NEIGHBORHOOD = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))


def binary_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of boolean ``predicted`` against boolean ``truth``, and
    ``boundary_f1``: the F1 of the minority class that matters, the cut edges (``False``), and
    ``macro_f1``, the mean of both (a degenerate "everything connected" answer scores ~0.5)."""
    predicted = np.asarray(predicted, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted shape {predicted.shape} differs from ground truth shape {truth.shape}")
    tp = float(np.count_nonzero(predicted & truth))
    fp = float(np.count_nonzero(predicted & ~truth))
    fn = float(np.count_nonzero(~predicted & truth))
    n = float(truth.size)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    tn = n - tp - fp - fn
    boundary_f1 = 2 * tn / (2 * tn + fp + fn) if tn + fp + fn else 0.0
    return {
        "accuracy": (n - fp - fn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "boundary_f1": boundary_f1,
        "macro_f1": (f1 + boundary_f1) / 2,
    }


def gt_affinities(labels: np.ndarray, neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD) -> np.ndarray:
    """Boolean ground-truth affinities ``(len(neighborhood), *labels.shape)`` of a label volume."""
    return seg_to_affgraph(labels, np.asarray(neighborhood))


def raw_affinities(raw: np.ndarray, neighborhood: Sequence[Sequence[int]] = NEAREST_NEIGHBORHOOD) -> np.ndarray:
    """A no-learning affinity estimate: the darker of the two voxels' intensities, in [0, 1].

    Membranes are dark in EM, so an edge touching a dark voxel is likely a boundary.
    """
    raw = raw.astype(np.float32) / (255.0 if raw.dtype == np.uint8 else max(float(raw.max()), 1.0))
    out = np.zeros((len(neighborhood),) + raw.shape, dtype=np.float32)
    for c, offset in enumerate(neighborhood):
        shifted = np.full_like(raw, 0.0)
        src = tuple(slice(max(0, o), s + min(0, o)) for o, s in zip(offset, raw.shape))
        dst = tuple(slice(max(0, -o), s + min(0, -o)) for o, s in zip(offset, raw.shape))
        # shifted[p] = raw[p + offset] where that neighbour exists
        shifted[dst] = raw[src]
        out[c] = np.minimum(raw, shifted)
    return out


def best_threshold_scores(
    scores: np.ndarray, truth: np.ndarray, thresholds: Sequence[float] | None = None, criterion: str = "macro_f1"
) -> tuple[float, dict]:
    """The threshold on ``scores`` with the highest ``criterion`` against ``truth``, and its scores
    (an oracle choice, so the baseline gets its best chance)."""
    grid: Sequence[float] = np.linspace(0.05, 0.95, 19).tolist() if thresholds is None else thresholds
    best_t: float | None = None
    best: dict | None = None
    for t in grid:
        s = binary_scores(scores > t, truth)
        if best is None or s[criterion] > best[criterion]:
            best_t, best = float(t), s
    if best_t is None or best is None:
        raise ValueError("best_threshold_scores: no thresholds to try")
    return best_t, best


def plot_section(
    raw: np.ndarray,
    gt_affs: np.ndarray,
    pred_affs: np.ndarray,
    png_path: str | os.PathLike,
    z: int | None = None,
    title: str = "",
    labels: np.ndarray | None = None,
    segmentation: np.ndarray | None = None,
) -> str:
    """Save a PNG of section ``z`` (default: the middle): raw | ground-truth affinities | predicted,
    then, when given, the ground-truth ``labels`` and the ``segmentation`` (random colours per id, 0 black).

    Affinities are shown as RGB, one colour per neighbour direction (z, y, x).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = raw.shape[0] // 2 if z is None else z

    def rgb(affs: np.ndarray) -> np.ndarray:
        return np.clip(np.moveaxis(affs[:3, z].astype(np.float32), 0, -1), 0, 1)

    def colours(ids: np.ndarray) -> np.ndarray:
        _, index = np.unique(ids[z], return_inverse=True)
        palette = np.random.default_rng(0).random((int(index.max()) + 1, 3)) * 0.8 + 0.2
        image = palette[index.reshape(ids[z].shape)]
        image[ids[z] == 0] = 0
        return image

    images = [raw[z], rgb(gt_affs), rgb(pred_affs)]
    names = ["raw", "ground-truth affinities", "predicted affinities"]
    for ids, name in ((labels, "ground truth"), (segmentation, "segmentation")):
        if ids is not None:
            images.append(colours(np.asarray(ids)))
            names.append(name)
    fig, axes = plt.subplots(1, len(images), figsize=(5 * len(images), 5.4))
    for ax, image, name in zip(axes, images, names):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
    return str(png_path)
