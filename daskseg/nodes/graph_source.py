"""``GraphSource``: provide a graph read from a graph provider (daisy's) or held in a networkx graph."""

from __future__ import annotations

import logging
from typing import Any, cast

import networkx as nx
import numpy as np

from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..geometry import Roi
from ..graph import Graph, GraphKey, GraphSpec
from ..pipeline import BatchProvider

logger = logging.getLogger(__name__)


class NetworkxGraphProvider:
    """A graph provider over an in-memory networkx graph, with the interface of daisy's
    ``SharedGraphProvider`` that :class:`GraphSource` reads: ``provider[roi]`` is the subgraph of
    the nodes whose position lies in ``roi`` (and the edges among them), ``directed`` and
    ``position_attribute``.

    Args:
        graph (``networkx.Graph``): nodes carry their position (world units) in one attribute, or
            one attribute per axis.
        position_attribute (``str`` or ``list`` of ``str``): the name of that attribute, or the names
            per axis (e.g. ``['z', 'y', 'x']``).
    """

    def __init__(self, graph: nx.Graph, position_attribute: str | list[str] = "location"):
        self.graph = graph
        self.position_attribute = position_attribute
        self.directed = graph.is_directed()

    def position(self, data: dict) -> np.ndarray | None:
        attr = self.position_attribute
        if isinstance(attr, list):
            return np.array([data[a] for a in attr], dtype=np.float64) if attr[0] in data else None
        return np.asarray(data[attr], dtype=np.float64) if attr in data else None

    def dims(self) -> int | None:
        for _, data in self.graph.nodes(data=True):
            pos = self.position(data)
            if pos is not None:
                return len(pos)
        return None

    def __getitem__(self, roi: Roi) -> nx.Graph:
        inside = [n for n, data in self.graph.nodes(data=True) if (p := self.position(data)) is not None and roi.contains(p)]
        return self.graph.subgraph(inside).copy()


class GraphSource(BatchProvider):
    """Provide a graph read from a graph provider, as gunpowder's ``GraphSource``.

    A request for a ROI gets the nodes inside it, with their attributes and ``location`` (from the
    provider's ``position_attribute``), and only the edges with both ends in the ROI: edges that
    cross the boundary are not included. Nodes without a position are dropped.

    Args:

        graph_provider (daisy ``SharedGraphProvider``, ``networkx.Graph`` or :class:`NetworkxGraphProvider`):

            Where the graph is read from: a daisy graph provider (MongoDB, files, ...), or a networkx
            graph whose nodes carry a ``location`` attribute (wrap it in a
            :class:`NetworkxGraphProvider` to name another position attribute).

        graph (:class:`GraphKey`):

            The key of the graph to create.

        graph_spec (:class:`GraphSpec`, optional):

            An optional :class:`GraphSpec` containing a roi and optionally whether the graph is
            directed. The default is an unbounded ROI and the provider's directedness.
    """

    thread_safe = True

    def __init__(self, graph_provider: Any, graph: GraphKey, graph_spec: GraphSpec | None = None):
        if not isinstance(graph, GraphKey):
            raise ArgumentError(f"GraphSource: graph must be a GraphKey, got {graph!r}")
        if isinstance(graph_provider, nx.Graph):
            graph_provider = NetworkxGraphProvider(graph_provider)
        missing = [a for a in ("__getitem__", "directed", "position_attribute") if not hasattr(graph_provider, a)]
        if missing:
            raise ArgumentError(
                f"GraphSource: {type(graph_provider).__name__} is not a graph provider (it lacks {missing}); "
                "give a daisy graph provider or a networkx graph"
            )
        self.graph_provider = graph_provider
        self.graph = graph
        self.graph_spec = graph_spec

    def setup(self) -> None:
        directed = self.graph_provider.directed
        roi = None
        if self.graph_spec is not None:
            roi = self.graph_spec.roi
            if self.graph_spec.directed is not None and self.graph_spec.directed != directed:
                raise SpecError(
                    f"GraphSource: graph_spec says directed={self.graph_spec.directed}, but the provider's "
                    f"graph has directed={directed}"
                )
        if roi is None and hasattr(self.graph_provider, "dims"):
            dims = self.graph_provider.dims()
            if dims is not None:  # unbounded, as gunpowder, but with the number of dimensions known
                roi = Roi((None,) * dims, (None,) * dims)
        self.provides(self.graph, GraphSpec(roi=roi, directed=directed))

    def provide(self, request: BatchRequest) -> Batch:
        roi = cast(Roi, request[self.graph].roi).copy()  # requests for spatial data have a ROI
        batch = Batch()
        batch[self.graph] = self.read(roi)
        return batch

    def read(self, roi: Roi) -> Graph:
        """The graph in ``roi``: nodes inside with their locations, edges with both ends inside."""
        source = self.graph_provider[roi]
        position = getattr(self.graph_provider, "position", None)
        attr = self.graph_provider.position_attribute
        out = nx.DiGraph() if source.is_directed() else nx.Graph()
        for node, data in source.nodes(data=True):
            if position is not None:
                location = position(data)
            elif isinstance(attr, list):
                location = np.array([data[a] for a in attr]) if attr[0] in data else None
            else:
                location = np.asarray(data[attr]) if attr in data else None
            if location is None:
                continue  # an end of an edge leaving the ROI, as daisy returns it
            attrs = dict(data)
            attrs["id"] = node
            attrs["location"] = np.asarray(location, dtype=np.float32)
            out.add_node(node, **attrs)
        out.add_edges_from((u, v, dict(d)) for u, v, d in source.edges(data=True) if u in out and v in out)
        logger.debug("GraphSource: %d nodes, %d edges in %s", out.number_of_nodes(), out.number_of_edges(), roi)
        return Graph.from_nx_graph(out, GraphSpec(roi=roi, directed=source.is_directed()))
