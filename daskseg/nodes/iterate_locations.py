"""``IterateLocations``: centre each batch on the next (or a random) node of a graph."""

from __future__ import annotations

import logging
import threading

import numpy as np

from ..array import Array, ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..geometry import Coordinate, Roi
from ..graph import GraphKey, GraphSpec
from .specified_location import SpecifiedLocation

logger = logging.getLogger(__name__)


class IterateLocations(SpecifiedLocation):
    """Iterates over the nodes in a graph and centers batches at their locations. The iteration is
    thread safe.

    All nodes of ``graph`` (in ``roi``) are read once in ``setup``. Each request's total ROI is
    centred on the next node (its location rounded down to whole world units; the shift rounded to
    the nearest multiple of the voxel sizes), as :class:`SpecifiedLocation` does with a list of
    locations: a node whose shifted request does not fit upstream is skipped with a warning, and the
    list loops when exhausted (``visited_all`` is then True). Graphs in the request are delivered in
    the request's coordinates. Unlike gunpowder, where all instances in a process share one index,
    the index belongs to the node (and to each copy a PreCache worker sets up).

    Args:

        graph (:class:`GraphKey`): Key of graph to read nodes from.

        roi (:class:`Roi`, optional): Roi within which to read and iterate over nodes. Defaults to
            None, which queries the whole Roi of the upstream graph source.

        node_id (:class:`ArrayKey`, optional): Nonspatial array key in which to store the id of the
            "current" node in graph. Default is None, in which case no attribute is stored and there
            is no way to tell which node is being considered.

        choose_randomly (``bool``): If true, choose nodes randomly with replacement (from this node's
            random stream). Default is false, which loops over the list.
    """

    thread_safe = True

    def __init__(
        self,
        graph: GraphKey,
        roi: Roi | None = None,
        node_id: ArrayKey | None = None,
        choose_randomly: bool = False,
    ):
        if not isinstance(graph, GraphKey):
            raise ArgumentError(f"IterateLocations: graph must be a GraphKey, got {graph!r}")
        if node_id is not None and not isinstance(node_id, ArrayKey):
            raise ArgumentError(f"IterateLocations: node_id must be an ArrayKey, got {node_id!r}")
        self.graph = graph
        self.roi = roi
        self.node_id = node_id
        self.choose_randomly = choose_randomly
        self.extra_data = None
        self.jitter = None
        self.attempt_factor = 5
        self.nodes: list = []
        self.coordinates: list[Coordinate] = []
        self.visited_all = False
        self.loc_i = -1
        self._lock = threading.Lock()

    def setup(self) -> None:
        upstream = self.get_upstream_provider()
        if self.graph not in upstream.spec:
            raise SpecError(f"IterateLocations: upstream provider does not have graph {self.graph}: {sorted(upstream.spec)}")
        query = upstream.spec[self.graph].roi
        if self.roi is not None:
            query = self.roi if query is None else query.intersect(self.roi)
        logger.info("IterateLocations: requesting all %s nodes in %s", self.graph, query)
        graph = upstream.request_batch(BatchRequest({}, {self.graph: GraphSpec(roi=query)}, random_seed=0))[self.graph]
        self.nodes = list(graph.nodes)
        if not self.nodes:
            raise SpecError(f"IterateLocations: graph {self.graph} has no nodes to iterate over in {query}")
        self.coordinates = [Coordinate(np.floor(np.asarray(n.location)).astype(int)) for n in self.nodes]
        self.loc_i = -1
        self.visited_all = False
        super().setup()
        if self.node_id is not None:
            self.provides(self.node_id, ArraySpec(nonspatial=True))

    def _next_index(self, rng) -> int:
        index = super()._next_index(rng)
        if not self.choose_randomly and index == len(self.coordinates) - 1:
            logger.info("IterateLocations: after this request, all nodes have been visited")
            self.visited_all = True
        return index

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        out = super().process(batch, request)
        if self.node_id is not None and self.node_id in request and isinstance(request.plan, tuple):
            node = self.nodes[request.plan[0]]
            out[self.node_id] = Array(np.array([node.id]), ArraySpec(nonspatial=True))
        return out
