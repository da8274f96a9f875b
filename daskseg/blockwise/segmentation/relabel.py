"""Stage 4 of ``segment``: every fragment replaced by its segment, block by block."""

from __future__ import annotations

import numpy as np

from ...errors import BlockCancelledError
from ...io import Dataset
from ..grid import Block
from .agglomerate import MergeMaps
from .consecutive import consecutive_ids
from .layout import SegmentLayout


def relabel_block(
    block: Block, layout: SegmentLayout, fragments: Dataset, out: Dataset, t: int, consecutive: bool = False, *,
    cancel=None
) -> dict:
    """Write the segmentation of one block for threshold index ``t``: each fragment's root after
    all levels of the reduction tree (the smallest fragment id of its segment; 0 stays 0), or with
    ``consecutive`` that root's rank 1..n among all roots (``consecutive.py``)."""
    labels = fragments.read(block.write_roi)
    ids, inverse = np.unique(labels, return_inverse=True)
    nonzero = ids != 0
    segments = np.zeros(len(ids), np.uint64)
    segments[nonzero] = MergeMaps(layout).roots(ids[nonzero], t, layout.top_level)
    if consecutive and nonzero.any():
        roots, back = np.unique(segments[nonzero], return_inverse=True)
        segments[nonzero] = consecutive_ids(roots, layout, t)[back.ravel()]
    result = segments[inverse.ravel()].reshape(labels.shape)
    if cancel is not None and cancel.is_set():
        raise BlockCancelledError(f"relabelling of block {block.index} was stopped (time limit) before writing")
    out.write(block.write_roi, result)
    return {"segments": len(np.unique(segments[nonzero]))}
