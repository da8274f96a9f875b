"""Segmentation from affinities and its evaluation (numpy and scipy only).

``affinities_to_segmentation`` (watershed fragments, optionally merged by mean affinity),
``connected_components`` (the baseline), ``mutex_watershed`` (any neighbourhood, long-range too), and CREMI's ``voi`` and ``adapted_rand``.
"""

from ..errors import SegmentError
from .agglomeration import agglomerate, region_adjacency, relabel_consecutive
from .evaluate import adapted_rand, contingency_table, cremi_scores, voi
from .flood import seeded_watershed
from .graph import NEAREST_NEIGHBORHOOD
from .mutex import mutex_watershed
from .watershed import affinities_to_segmentation, connected_components, fill_unlabelled, watershed_fragments

__all__ = [
    "NEAREST_NEIGHBORHOOD",
    "adapted_rand",
    "affinities_to_segmentation",
    "agglomerate",
    "connected_components",
    "contingency_table",
    "cremi_scores",
    "fill_unlabelled",
    "mutex_watershed",
    "region_adjacency",
    "relabel_consecutive",
    "seeded_watershed",
    "SegmentError",
    "voi",
    "watershed_fragments",
]
