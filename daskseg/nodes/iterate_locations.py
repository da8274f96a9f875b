"""``IterateLocations``: importable for ported scripts; it iterates over graph nodes, and daskseg
has no graphs yet."""

from __future__ import annotations


class IterateLocations:
    """gunpowder's node that centres batches on the nodes of a graph. daskseg has no graphs yet:
    constructing it raises ``NotImplementedError``; give the node locations to
    :class:`SpecifiedLocation` instead."""

    def __init__(self, graph, roi=None, node_id=None, choose_randomly=False):
        raise NotImplementedError(
            "IterateLocations needs graphs, which daskseg does not have yet; pass the node locations to "
            "SpecifiedLocation(locations, choose_randomly=...) instead"
        )
