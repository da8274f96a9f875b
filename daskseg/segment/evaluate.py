"""CREMI's segmentation scores: variation of information (split, merge) and adapted Rand error.

Both come from the sparse contingency table of (segment, ground-truth object) voxel counts. As in
CREMI, ground-truth voxels labelled 0 are ignored by default.

    split, merge = voi(seg, gt)
    error = adapted_rand(seg, gt)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from .errors import SegmentError

logger = logging.getLogger(__name__)


def _pair(seg: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seg, gt = np.asarray(seg), np.asarray(gt)
    if seg.shape != gt.shape:
        raise SegmentError(f"segmentation of shape {seg.shape} and ground truth of shape {gt.shape} differ")
    for name, a in (("segmentation", seg), ("ground truth", gt)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise SegmentError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return seg.ravel(), gt.ravel()


def contingency_table(seg: np.ndarray, gt: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Voxel counts ``table[i, j]`` of segment ``seg_ids[i]`` overlapping object ``gt_ids[j]``.

    Ids of any size (uint64 included) are compacted first, so the table is only as large as the
    number of labels present.
    """
    seg, gt = _pair(seg, gt)
    seg_ids, seg_index = np.unique(seg, return_inverse=True)
    gt_ids, gt_index = np.unique(gt, return_inverse=True)
    table = sparse.coo_matrix(
        (np.ones(seg.size, np.int64), (seg_index.ravel(), gt_index.ravel())), shape=(len(seg_ids), len(gt_ids))
    ).tocsr()
    table.sum_duplicates()
    return table, seg_ids, gt_ids


def _keep(seg: np.ndarray, gt: np.ndarray, ignore_seg: Sequence[int], ignore_gt: Sequence[int]):
    seg, gt = _pair(seg, gt)
    keep = ~np.isin(gt, np.asarray(ignore_gt, dtype=gt.dtype)) if len(ignore_gt) else np.ones(gt.shape, bool)
    if len(ignore_seg):
        keep &= ~np.isin(seg, np.asarray(ignore_seg, dtype=seg.dtype))
    if not keep.any():
        raise SegmentError(
            f"nothing to evaluate: every voxel is ignored (ground-truth ids {list(ignore_gt)}, "
            f"segment ids {list(ignore_seg)})"
        )
    return seg[keep], gt[keep]


def voi(
    seg: np.ndarray,
    gt: np.ndarray,
    *,
    ignore_seg: Sequence[int] = (),
    ignore_gt: Sequence[int] = (0,),
) -> tuple[float, float]:
    """Variation of information ``(split, merge)`` in bits: ``H(seg | gt)`` and ``H(gt | seg)``.

    ``split`` grows when ground-truth objects are cut into several segments, ``merge`` when a
    segment covers several objects; their sum is the VOI. Voxels whose ground truth is in
    ``ignore_gt`` (or segment in ``ignore_seg``) are left out, as in CREMI.
    """
    seg, gt = _keep(seg, gt, ignore_seg, ignore_gt)
    table, _, _ = contingency_table(seg, gt)
    n = float(seg.size)
    coo = table.tocoo()
    p_ij = coo.data / n
    p_seg = np.asarray(table.sum(axis=1)).ravel() / n
    p_gt = np.asarray(table.sum(axis=0)).ravel() / n
    # H(seg|gt) = -sum p_ij log(p_ij / p_j), H(gt|seg) = -sum p_ij log(p_ij / p_i)
    split = -np.sum(p_ij * np.log2(p_ij / p_gt[coo.col]))
    merge = -np.sum(p_ij * np.log2(p_ij / p_seg[coo.row]))
    return max(0.0, float(split)), max(0.0, float(merge))


def adapted_rand(seg: np.ndarray, gt: np.ndarray) -> float:
    """Adapted Rand error (1 − Rand F-score over voxel pairs), CREMI's definition.

    Ground-truth background (0) is ignored; segment 0 inside objects counts as unsegmented,
    each such voxel its own segment. (cremi_python adds their count divided by the volume size
    instead, a quirk; with no segment 0 inside objects the two agree.)
    """
    seg, gt = _pair(seg, gt)
    inside = gt != 0
    if not inside.any():
        raise SegmentError("nothing to evaluate: the ground truth is all background (0)")
    seg, gt = seg[inside], gt[inside]
    table, seg_ids, _ = contingency_table(seg, gt)
    sum_gt = float(np.sum(np.asarray(table.sum(axis=0), dtype=np.float64) ** 2))
    unsegmented = 0.0
    if seg_ids[0] == 0:
        unsegmented = float(table[0].sum())
        table = table[1:]
    sum_seg = float(np.sum(np.asarray(table.sum(axis=1), dtype=np.float64) ** 2)) + unsegmented
    sum_both = float(np.sum(table.data.astype(np.float64) ** 2)) + unsegmented
    precision = sum_both / sum_seg
    recall = sum_both / sum_gt
    return float(1.0 - 2.0 * precision * recall / (precision + recall))


def cremi_scores(seg: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """CREMI's numbers for one volume: ``voi_split``, ``voi_merge``, ``voi``, ``adapted_rand``."""
    split, merge = voi(seg, gt)
    return {"voi_split": split, "voi_merge": merge, "voi": split + merge, "adapted_rand": adapted_rand(seg, gt)}
