"""Stage 1 of ``segment``: fragments per block, with ids unique across the volume by construction."""

from __future__ import annotations

import numpy as np

from ...errors import BlockCancelledError
from ...io import Dataset
from ...segment import connected_components, mutex_watershed, relabel_consecutive, watershed_fragments
from ..grid import Block
from .affinities import read_affinities
from .layout import SegmentLayout


def fragments_block(
    block: Block,
    layout: SegmentLayout,
    affs: Dataset,
    scale: float,
    out: Dataset,
    mask: Dataset | None,
    method: str,
    parameters: dict,
    *,
    cancel=None,
) -> dict:
    """Fragments of one block: a watershed (or, for ``method='mws'``, a mutex watershed on every
    channel) on the affinities read with context, or connected components of the block alone
    (``method='cc'``); cropped to the write ROI, numbered ``first_id + 1 ...`` and written as
    uint64. Voxels outside ``mask`` get 0."""
    read_roi = block.read_roi.intersect(affs.roi)
    vs = layout.voxel_size
    if method == "mws":
        labels = mutex_watershed(read_affinities(affs, read_roi, scale), **parameters)
    elif method == "cc":
        data = read_affinities(affs, read_roi, scale, layout.channels)
        labels = connected_components(data, parameters["threshold"], layout.neighborhood)
    else:
        data = read_affinities(affs, read_roi, scale, layout.channels)
        labels = watershed_fragments(data, neighborhood=layout.neighborhood, voxel_size=tuple(vs), **parameters)
    begin = (block.write_roi.begin - read_roi.begin) / vs
    crop = tuple(slice(b, b + s) for b, s in zip(begin, block.write_roi.shape / vs))
    labels = labels[crop]
    if mask is not None:
        labels = np.where(mask.read(block.write_roi) != 0, labels, 0)
    labels = relabel_consecutive(labels)
    n = int(labels.max()) if labels.size else 0
    first = np.uint64(layout.first_id(layout.grid().flat_index(block.index)))
    labels = np.where(labels > 0, labels + first, np.uint64(0))
    if cancel is not None and cancel.is_set():
        raise BlockCancelledError(f"fragments of block {block.index} were stopped (time limit) before writing")
    out.write(block.write_roi, labels)
    return {"fragments": n}

