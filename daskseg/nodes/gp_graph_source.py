"""``GPGraphSource``: provide an in-memory :class:`Graph` under one graph key."""

from __future__ import annotations

from typing import cast

from ..batch import Batch, BatchRequest
from ..errors import ArgumentError
from ..geometry import Roi
from ..graph import Graph, GraphKey
from ..pipeline import BatchProvider


class GPGraphSource(BatchProvider):
    """Provide ``graph`` (gunpowder's ``gunpowder.nodes.gp_graph_source.GraphSource``, exported as
    ``GPGraphSource``): its spec is the graph's, and a request gets the graph cropped and trimmed to
    the requested ROI (edges leaving the ROI end in temporary nodes on its boundary).

    Args:

        key (:class:`GraphKey`): the key to provide the graph under.

        graph (:class:`Graph`): the graph.
    """

    thread_safe = True

    def __init__(self, key: GraphKey, graph: Graph):
        if not isinstance(key, GraphKey) or not isinstance(graph, Graph):
            raise ArgumentError(f"GPGraphSource takes a GraphKey and a Graph, got {key!r} and {type(graph).__name__}")
        self.key = key
        self.graph = graph

    def setup(self) -> None:
        self.provides(self.key, self.graph.spec.copy())

    def provide(self, request: BatchRequest) -> Batch:
        roi = cast(Roi, request[self.key].roi)  # requests for spatial data have a ROI (checked upstream of here)
        batch = Batch()
        batch[self.key] = self.graph.crop(roi).trim(roi)
        return batch
