"""Segmentation from affinities and its evaluation (numpy and scipy only).

``affinities_to_segmentation`` (watershed fragments, optionally merged by mean affinity),
``connected_components`` (the baseline), and CREMI's ``voi`` and ``adapted_rand``.
"""

from .errors import SegmentError
from .evaluate import adapted_rand, contingency_table, evaluate, voi
from .graph import NEAREST_NEIGHBORHOOD
from .watershed import (
    affinities_to_segmentation,
    agglomerate,
    connected_components,
    region_adjacency,
    relabel_consecutive,
    watershed_fragments,
)

__all__ = [
    "NEAREST_NEIGHBORHOOD",
    "SegmentError",
    "adapted_rand",
    "affinities_to_segmentation",
    "agglomerate",
    "connected_components",
    "contingency_table",
    "evaluate",
    "region_adjacency",
    "relabel_consecutive",
    "voi",
    "watershed_fragments",
]
