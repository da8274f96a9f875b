"""CREMI's segmentation scores: variation of information (split, merge) and adapted Rand error.

Every score is a function of the sparse contingency table of (segment id, ground-truth id, voxel
count) triples, a ``PairCounts``. Counting is separated from scoring so that a volume too large for
memory is scored exactly: ``daskseg.blockwise.evaluate`` counts pairs block by block, sums the
tables (``sum_pair_counts``), and scores the sum with the very functions used here.

    split, merge = voi(seg, gt)
    error = adapted_rand(seg, gt)
    scores = cremi_scores(seg, gt)            # voi_split, voi_merge, voi, adapted_rand
    scores = scores_from_counts(count_pairs(seg, gt))   # the same numbers, from a table

Definitions (CREMI's, cremi_python ``cremi/evaluation``):

- **VOI**: ``split = H(seg | gt)``, ``merge = H(gt | seg)`` in bits, over the voxels whose ground
  truth is not background (0). This is ``skimage.metrics.variation_of_information(gt, seg)`` of
  the voxels with ``gt != 0`` (which returns ``[split, merge]``).
- **Adapted Rand error**: ``1 - 2 p r / (p + r)`` with, over ordered voxel pairs (self-pairs
  included) inside ground-truth objects, ``p = sum_AB / sum_B`` and ``r = sum_AB / sum_A``::

      sum_A  = Σ_j (voxels of object j)²                            (j ≠ 0; any segment, 0 included)
      sum_B  = Σ_i (voxels of segment i inside objects)²  + c / n   (i ≠ 0)
      sum_AB = Σ_ij (voxels of segment i in object j)²    + c / n   (i ≠ 0, j ≠ 0)

  where ``c`` is the number of voxels inside objects whose segment is 0 ("unsegmented") and ``n``
  the number of voxels evaluated, **background included** (all voxels, or those inside the mask).
  The ``c / n`` term is cremi_python's exactly: unsegmented voxels add almost nothing to either sum
  (where counting each as its own segment would add ``c``), so labelling voxels 0 is scored
  nearly as if they belonged to no pair, yet still lowers the recall.

How this differs from ``skimage.metrics.adapted_rand_error(gt, seg)`` (SNEMI3D's script in
scikit-image): scikit-image counts unordered pairs of *distinct* voxels (each sum of squares minus
the voxel count, so self-pairs are left out) and treats segment 0 as an ordinary segment. Self-pairs
matter less as objects grow: on random labels of 32×64×64 and 64³ voxels the two differ by 7e-5 to
4e-4. Segment 0 matters more: 1e-3 when 5% of random voxels are 0, and where 0 marks boundaries
between objects scikit-image sees one segment touching them all (merges) while CREMI sees
unsegmented voxels (64³ voxels, 64 cubic objects, a 4-voxel slab of 0: CREMI 0.062, scikit-image
0.165). Smallest case: ``gt=[1,1,2,2], seg=[1,1,1,1]`` is 1/3 for CREMI and 1/2 for scikit-image
(tests/segment/test_evaluate.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..errors import SegmentError

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairCounts:
    """A sparse contingency table: ``count[k]`` voxels have segment ``seg[k]`` and object ``gt[k]``.

    Ids are ``uint64`` (signed labels are reinterpreted, which keeps the partition and label 0),
    counts ``int64``; the pairs are unique and sorted by ``(seg, gt)``, so equal tables have equal
    arrays. Make one with ``count_pairs`` or ``sum_pair_counts``.
    """

    seg: np.ndarray
    gt: np.ndarray
    count: np.ndarray

    @property
    def num_voxels(self) -> int:
        """The voxels counted (background and segment 0 included)."""
        return int(self.count.sum())

    def __len__(self) -> int:
        return int(self.count.size)

    def arrays(self) -> dict[str, np.ndarray]:
        """The three columns by name (for ``np.savez``)."""
        return {"seg": self.seg, "gt": self.gt, "count": self.count}

    @classmethod
    def empty(cls) -> PairCounts:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64))


def _labels(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool:
        return a.astype(np.uint64)
    if not np.issubdtype(a.dtype, np.integer):
        raise SegmentError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return a.astype(np.uint64, copy=False) if a.dtype.itemsize == 8 else a.astype(np.int64).astype(np.uint64)


def _ids(ids: Sequence[int]) -> np.ndarray:
    """Label ids as the table holds them (uint64; negative ids wrapped as ``_labels`` does)."""
    return np.array([int(i) % 2**64 for i in ids], np.uint64)


def _sum_pairs(seg: np.ndarray, gt: np.ndarray, count: np.ndarray) -> PairCounts:
    """Sum the counts of equal ``(seg, gt)`` pairs; the result sorted by ``(seg, gt)``."""
    if seg.size == 0:
        return PairCounts.empty()
    order = np.lexsort((gt, seg))
    seg, gt, count = seg[order], gt[order], count[order]
    starts = np.flatnonzero(np.r_[True, (seg[1:] != seg[:-1]) | (gt[1:] != gt[:-1])])
    return PairCounts(seg[starts], gt[starts], np.add.reduceat(count, starts).astype(np.int64, copy=False))


def count_pairs(seg: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> PairCounts:
    """The contingency table of ``seg`` against ``gt`` (voxels where ``mask`` is nonzero, if given).

    Args:
        seg (np.ndarray): segment ids (any integer dtype or bool).
        gt (np.ndarray): ground-truth ids, the same shape; 0 is background (kept in the table:
            the scores leave it out, but the adapted Rand error needs its voxel count).
        mask (np.ndarray, optional): the same shape; only voxels where it is nonzero are counted.

    Raises:
        SegmentError: shapes differ or labels are not integers.
    """
    seg_a, gt_a = np.asarray(seg), np.asarray(gt)
    if seg_a.shape != gt_a.shape:
        raise SegmentError(f"segmentation of shape {seg_a.shape} and ground truth of shape {gt_a.shape} differ")
    s, g = _labels(seg_a, "segmentation").ravel(), _labels(gt_a, "ground truth").ravel()
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != seg_a.shape:
            raise SegmentError(f"mask of shape {m.shape} and segmentation of shape {seg_a.shape} differ")
        keep = m.ravel() != 0
        s, g = s[keep], g[keep]
    if s.size == 0:
        return PairCounts.empty()
    # runs of equal pairs along the fastest axis first: labels come in runs, so far fewer to sort
    starts = np.flatnonzero(np.r_[True, (s[1:] != s[:-1]) | (g[1:] != g[:-1])])
    runs = np.diff(np.r_[starts, s.size]).astype(np.int64)
    return _sum_pairs(s[starts], g[starts], runs)


def sum_pair_counts(tables: Iterable[PairCounts]) -> PairCounts:
    """The sum of several contingency tables (e.g. of blocks that tile a volume)."""
    tables = list(tables)
    if not tables:
        return PairCounts.empty()
    return _sum_pairs(
        np.concatenate([t.seg for t in tables]),
        np.concatenate([t.gt for t in tables]),
        np.concatenate([t.count for t in tables]),
    )


def contingency_table(seg: np.ndarray, gt: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Voxel counts ``table[i, j]`` of segment ``seg_ids[i]`` overlapping object ``gt_ids[j]``.

    Ids of any size (uint64 included) are compacted first, so the table is only as large as the
    number of labels present.
    """
    counts = count_pairs(seg, gt)
    seg_ids, rows = np.unique(counts.seg, return_inverse=True)
    gt_ids, cols = np.unique(counts.gt, return_inverse=True)
    table = sparse.csr_matrix((counts.count, (rows.ravel(), cols.ravel())), shape=(len(seg_ids), len(gt_ids)))
    return table, seg_ids, gt_ids


# --------------------------------------------------------------------------------------------
# scoring (shared by the in-memory and the blockwise evaluation)
# --------------------------------------------------------------------------------------------
def _marginal(ids: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The count of each entry's id, summed over the table (as float64), aligned with the entries."""
    _, inverse = np.unique(ids, return_inverse=True)
    inverse = inverse.ravel()
    return np.bincount(inverse, weights=count.astype(np.float64))[inverse]


def _sum_of_squares(ids: np.ndarray, count: np.ndarray) -> float:
    _, inverse = np.unique(ids, return_inverse=True)
    sizes = np.bincount(inverse.ravel(), weights=count.astype(np.float64))
    return float(sizes @ sizes)


def voi_from_counts(
    counts: PairCounts, *, ignore_seg: Sequence[int] = (), ignore_gt: Sequence[int] = (0,)
) -> tuple[float, float]:
    """VOI ``(split, merge)`` in bits from a contingency table; see ``voi``."""
    keep = np.ones(len(counts), bool)
    if len(ignore_gt):
        keep &= ~np.isin(counts.gt, _ids(ignore_gt))
    if len(ignore_seg):
        keep &= ~np.isin(counts.seg, _ids(ignore_seg))
    seg, gt, count = counts.seg[keep], counts.gt[keep], counts.count[keep]
    if count.size == 0:
        raise SegmentError(
            f"nothing to evaluate: every voxel is ignored (ground-truth ids {list(ignore_gt)}, "
            f"segment ids {list(ignore_seg)})"
        )
    c = count.astype(np.float64)
    n = float(c.sum())
    p_ij = c / n
    # H(seg|gt) = -Σ p_ij log(n_ij / n_j), H(gt|seg) = -Σ p_ij log(n_ij / n_i)
    split = -np.sum(p_ij * np.log2(c / _marginal(gt, count)))
    merge = -np.sum(p_ij * np.log2(c / _marginal(seg, count)))
    return max(0.0, float(split)), max(0.0, float(merge))


def adapted_rand_from_counts(counts: PairCounts) -> float:
    """CREMI's adapted Rand error from a contingency table; see ``adapted_rand`` and the module docstring."""
    return adapted_rand_stats(counts)[0]


def adapted_rand_stats(counts: PairCounts) -> tuple[float, float, float]:
    """``(error, precision, recall)`` of CREMI's adapted Rand from a contingency table.

    Raises:
        SegmentError: the ground truth is all background (0).
    """
    n = float(counts.num_voxels)
    inside = counts.gt != 0
    if not inside.any():
        raise SegmentError("nothing to evaluate: the ground truth is all background (0)")
    seg, gt, count = counts.seg[inside], counts.gt[inside], counts.count[inside]
    segmented = seg != 0
    unsegmented = float(count[~segmented].sum()) / n  # cremi_python's c / n
    c = count[segmented].astype(np.float64)
    sum_a = _sum_of_squares(gt, count)
    sum_b = _sum_of_squares(seg[segmented], count[segmented]) + unsegmented
    sum_ab = float(c @ c) + unsegmented
    precision = sum_ab / sum_b
    recall = sum_ab / sum_a
    return float(1.0 - 2.0 * precision * recall / (precision + recall)), precision, recall


def scores_from_counts(counts: PairCounts) -> dict[str, float]:
    """CREMI's numbers from a contingency table: ``voi_split``, ``voi_merge``, ``voi``, ``adapted_rand``."""
    split, merge = voi_from_counts(counts)
    return {"voi_split": split, "voi_merge": merge, "voi": split + merge, "adapted_rand": adapted_rand_from_counts(counts)}


# --------------------------------------------------------------------------------------------
# in memory
# --------------------------------------------------------------------------------------------
def voi(
    seg: np.ndarray,
    gt: np.ndarray,
    *,
    ignore_seg: Sequence[int] = (),
    ignore_gt: Sequence[int] = (0,),
    mask: np.ndarray | None = None,
) -> tuple[float, float]:
    """Variation of information ``(split, merge)`` in bits: ``H(seg | gt)`` and ``H(gt | seg)``.

    ``split`` grows when ground-truth objects are cut into several segments, ``merge`` when a
    segment covers several objects; their sum is the VOI. Voxels whose ground truth is in
    ``ignore_gt`` (or segment in ``ignore_seg``), or where ``mask`` is 0, are left out, as in CREMI.
    """
    return voi_from_counts(count_pairs(seg, gt, mask), ignore_seg=ignore_seg, ignore_gt=ignore_gt)


def adapted_rand(seg: np.ndarray, gt: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Adapted Rand error (1 − Rand F-score over voxel pairs), exactly cremi_python's ``adapted_rand``.

    Ground-truth background (0) is ignored; segment 0 inside objects is "unsegmented" and adds
    ``c / n`` to the pair sums (``c`` such voxels, ``n`` voxels in all, background included), as
    cremi_python does. Voxels where ``mask`` is 0 are left out (``n`` counts the others). See the
    module docstring for the formula and how it differs from ``skimage.metrics.adapted_rand_error``.
    """
    return adapted_rand_from_counts(count_pairs(seg, gt, mask))


def cremi_scores(seg: np.ndarray, gt: np.ndarray, *, mask: np.ndarray | None = None) -> dict[str, float]:
    """CREMI's numbers for one volume: ``voi_split``, ``voi_merge``, ``voi``, ``adapted_rand``."""
    return scores_from_counts(count_pairs(seg, gt, mask))
