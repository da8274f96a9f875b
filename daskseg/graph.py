"""Graphs in world units: ``GraphKey``, ``GraphSpec``, ``Node``, ``Edge`` and ``Graph`` (gunpowder's).

A :class:`Graph` is a networkx graph whose nodes carry a ``location`` (a numpy array in world
units, ``GraphSpec.dtype``, float32 by default) and any other attributes, plus a
:class:`GraphSpec` saying which ROI it represents. As in gunpowder, the :class:`Node` objects a
graph hands out (``graph.nodes``, ``graph.node(id)``) are views of the graph's own attribute
dicts: ``node.location += offset`` or ``node.location = ...`` changes the graph.

Cropping follows gunpowder: a cropped graph keeps the nodes inside the ROI, every edge with at
least one end inside, and the outside ends of those edges ("dangling" nodes); :meth:`Graph.trim`
replaces dangling nodes by temporary nodes where their edge leaves the ROI.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from .errors import SpecError
from .geometry import Roi, as_roi
from .keys import DataKey

logger = logging.getLogger(__name__)


class GraphKey(DataKey):
    """A name for a graph in a batch; the same name always gives the same key.

    After ``GraphKey("CENTERS")``, ``GraphKeys.CENTERS`` is that key.
    """

    @classmethod
    def namespace(cls) -> type:
        return GraphKeys


class GraphKeys:
    """gunpowder's namespace of every :class:`GraphKey` made so far."""


@dataclass
class GraphSpec:
    """What is known about a graph: the ROI it covers (world units), whether it is directed, and the
    dtype of its node locations.

    Args:
        roi (:class:`Roi`, optional): the region the graph represents.
        directed (``bool``, optional): whether edges are directed (None: not known / either).
        dtype: dtype of the node locations, float32 by default.
        placeholder (``bool``): in a request, pass the ROI upstream without delivering the graph.
    """

    roi: Roi | None = None
    directed: bool | None = None
    dtype: Any = np.float32
    placeholder: bool = False

    #: graphs are always spatial (for code that asks every spec ``spec.nonspatial``)
    nonspatial = False

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "roi" and value is not None:
            value = as_roi(value)
        object.__setattr__(self, name, value)

    def copy(self) -> GraphSpec:
        out = copy.copy(self)
        if self.roi is not None:
            out.roi = self.roi.copy()
        return out

    def update_with(self, other: GraphSpec) -> GraphSpec:
        """A copy with the ROIs united and ``other``'s directedness, dtype and placeholder flag where set."""
        out = self.copy()
        if out.roi is not None and other.roi is not None:
            out.roi = out.roi.union(other.roi)
        elif other.roi is not None:
            out.roi = other.roi.copy()
        if other.directed is not None:
            out.directed = other.directed
        if other.dtype is not None:
            out.dtype = other.dtype
        out.placeholder = other.placeholder
        return out

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, GraphSpec)
            and self.roi == other.roi
            and self.directed == other.directed
            and np.dtype(self.dtype) == np.dtype(other.dtype)
            and self.placeholder == other.placeholder
        )

    def __repr__(self) -> str:
        return f"ROI: {self.roi}, dtype: {np.dtype(self.dtype)}, directed: {self.directed}, placeholder: {self.placeholder}"


class Node:
    """A node of a :class:`Graph`: an ``id``, a ``location`` (numpy array, world units), whether it is
    ``temporary`` (made by an operation such as :meth:`Graph.trim`, not in the source), and ``attrs``.

    Other attributes are reachable as ``node.attrs[name]`` or ``node.<name>``, as in gunpowder.

    Args:
        id (``int``): unique in its graph.
        location (``np.ndarray``): the position in world units.
        temporary (``bool``): whether the node was made by an operation, not read from a source.
        attrs (``dict``, optional): further attributes (colour, radius, ...).
    """

    __slots__ = ("_attrs",)

    def __init__(self, id: Any, location: np.ndarray, temporary: bool = False, attrs: dict[str, Any] | None = None):
        object.__setattr__(self, "_attrs", attrs if attrs is not None else {})
        self._attrs["id"] = id
        self.location = location
        self._attrs["temporary"] = bool(temporary)

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Node:
        """A node that is a view of ``attrs`` (which holds ``id`` and ``location``)."""
        node = cls.__new__(cls)
        object.__setattr__(node, "_attrs", attrs)
        attrs.setdefault("temporary", False)
        return node

    @property
    def attrs(self) -> dict[str, Any]:
        return self._attrs

    @property
    def all(self) -> dict[str, Any]:
        return self._attrs

    @property
    def id(self) -> Any:
        return self._attrs["id"]

    @property
    def location(self) -> np.ndarray:
        return self._attrs["location"]

    @location.setter
    def location(self, value) -> None:
        if not isinstance(value, np.ndarray):
            raise SpecError(f"a node's location must be a numpy array, got {type(value).__name__} ({value!r})")
        self._attrs["location"] = value

    @property
    def temporary(self) -> bool:
        return bool(self._attrs.get("temporary", False))

    @property
    def original_id(self) -> Any:
        return None if self.temporary else self.id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._attrs[name]
        except KeyError:
            raise AttributeError(f"node {self._attrs.get('id')} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "location":
            Node.location.fset(self, value)  # type: ignore[attr-defined]
        else:
            self._attrs[name] = value

    def __eq__(self, other) -> bool:
        return isinstance(other, Node) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Node({self.id}{', temporary' if self.temporary else ''}) at {self.location}"


class Edge:
    """An edge from node ``u`` to node ``v`` (ids), with optional ``attrs``."""

    __slots__ = ("_attrs", "_u", "_v")

    def __init__(self, u: Any, v: Any, attrs: dict[str, Any] | None = None):
        self._u = u
        self._v = v
        self._attrs = attrs if attrs is not None else {}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Edge:
        return cls(attrs["u"], attrs["v"], attrs)

    @property
    def u(self) -> Any:
        return self._u

    @property
    def v(self) -> Any:
        return self._v

    @property
    def attrs(self) -> dict[str, Any]:
        return self._attrs

    @property
    def all(self) -> dict[str, Any]:
        return self._attrs

    def __iter__(self) -> Iterator[Any]:
        return iter((self._u, self._v))

    def __eq__(self, other) -> bool:
        return isinstance(other, Edge) and self.u == other.u and self.v == other.v

    def __hash__(self) -> int:
        return hash((self.u, self.v))

    def directed_eq(self, other: Edge) -> bool:
        return self.u == other.u and self.v == other.v

    def undirected_eq(self, other: Edge) -> bool:
        return {self.u, self.v} == {other.u, other.v}

    def __repr__(self) -> str:
        return f"({self.u}, {self.v})"


class Graph:
    """Nodes and edges with a :class:`GraphSpec`, kept in a networkx graph.

    Args:
        nodes (iterable of :class:`Node`): the nodes; their locations are cast to ``spec.dtype``.
        edges (iterable of :class:`Edge`): the edges, between ids of ``nodes``.
        spec (:class:`GraphSpec`): the ROI the graph represents, and whether it is directed (a
            ``DiGraph`` is used if ``spec.directed`` is None, as gunpowder does).
    """

    def __init__(self, nodes: Iterable[Node], edges: Iterable[Edge], spec: GraphSpec):
        self.spec = spec
        self._graph: nx.Graph = nx.Graph() if spec.directed is False else nx.DiGraph()
        for node in nodes:
            self.add_node(node)
        for edge in edges:
            self.add_edge(edge)

    # --- access ------------------------------------------------------------------------------
    @property
    def directed(self) -> bool:
        return self.spec.directed if self.spec.directed is not None else self._graph.is_directed()

    @property
    def nodes(self) -> Iterator[Node]:
        """The nodes, as views of the graph's attributes (changing one changes the graph)."""
        for node_id, attrs in self._graph.nodes.items():
            attrs.setdefault("id", node_id)
            yield Node.from_attrs(attrs)

    @property
    def edges(self) -> Iterator[Edge]:
        for (u, v), attrs in self._graph.edges.items():
            yield Edge(u, v, attrs)

    def node(self, id: Any) -> Node:
        """The node with ``id``."""
        return Node.from_attrs(self._graph.nodes[id])

    def edge(self, id: tuple[Any, Any]) -> Edge:
        u, v = id
        return Edge(u, v, self._graph.edges[u, v])

    def contains(self, node_id: Any) -> bool:
        return node_id in self._graph.nodes

    def num_vertices(self) -> int:
        return self._graph.number_of_nodes()

    def num_edges(self) -> int:
        return self._graph.number_of_edges()

    def __len__(self) -> int:
        return self._graph.number_of_nodes()

    def neighbors(self, node: Node) -> Iterator[Node]:
        """Nodes sharing an edge with ``node`` (successors and predecessors if directed)."""
        ids = (
            itertools.chain(self._graph.successors(node.id), self._graph.predecessors(node.id))
            if self._graph.is_directed()
            else self._graph.neighbors(node.id)
        )
        for i in ids:
            yield self.node(i)

    def successors(self, node: Node) -> Iterator[Any]:
        g = self._graph
        return g.successors(node.id) if g.is_directed() else g.neighbors(node.id)

    def predecessors(self, node: Node) -> Iterator[Any]:
        g = self._graph
        return g.predecessors(node.id) if g.is_directed() else g.neighbors(node.id)

    def in_degree(self):
        return self._graph.in_degree()

    @property
    def connected_components(self) -> Iterator[set]:
        g = self._graph
        return nx.weakly_connected_components(g) if g.is_directed() else nx.connected_components(g)

    def relabel_connected_components(self) -> None:
        """Give each node a ``component`` attribute: the index of its (weakly) connected component."""
        for i, component in enumerate(self.connected_components):
            for node_id in component:
                self._graph.nodes[node_id]["component"] = i

    # --- changes -----------------------------------------------------------------------------
    def add_node(self, node: Node) -> None:
        """Add ``node`` (its attributes replace those of a node with the same id)."""
        attrs = dict(node.attrs)
        attrs["location"] = np.asarray(node.location).astype(self.spec.dtype)
        self._graph.add_node(node.id, **attrs)

    def remove_node(self, node: Node, retain_connectivity: bool = False) -> None:
        """Remove ``node``; with ``retain_connectivity``, connect each predecessor to each successor."""
        if retain_connectivity:
            preds = list(self.predecessors(node))
            succs = list(self.successors(node))
            for p in preds:
                for s in succs:
                    if p != s:
                        self._graph.add_edge(p, s)
        self._graph.remove_node(node.id)

    def add_edge(self, edge: Edge) -> None:
        self._graph.add_edge(edge.u, edge.v, **edge.attrs)

    def remove_edge(self, edge: Edge) -> None:
        self._graph.remove_edge(edge.u, edge.v)

    def shift(self, offset) -> None:
        """Move every node by ``offset`` (world units), in place."""
        offset = np.asarray(offset)
        for node in self.nodes:
            node.location = (node.location + offset).astype(self.spec.dtype)

    def relocate(self, roi: Roi | None, shift=None) -> Graph:
        """Deliver this graph, read ``shift`` (world units) away from where it was asked for, in the
        request's coordinates: nodes moved back by ``shift`` (when given) and the ROI set to ``roi``."""
        if shift is not None:
            self.shift(-np.asarray(shift, dtype=np.float64))
        self.spec.roi = roi
        return self

    def copy(self) -> Graph:
        return copy.deepcopy(self)

    # --- ROIs --------------------------------------------------------------------------------
    def _contained_ids(self, roi: Roi) -> set:
        return {i for i, attrs in self._graph.nodes.items() if roi.contains(attrs["location"])}

    def crop(self, roi: Roi) -> Graph:
        """A copy limited to ``roi``: the nodes inside, every edge with an end inside, and the outside
        ends of those edges ("dangling" nodes), as gunpowder. Its spec's ROI is ``roi``."""
        roi = as_roi(roi)
        inside = self._contained_ids(roi)
        kept_edges = [(u, v) for u, v in self._graph.edges if u in inside or v in inside]
        kept = inside | {n for e in kept_edges for n in e}
        sub = self._graph.__class__()
        sub.add_nodes_from((i, copy.deepcopy(self._graph.nodes[i])) for i in self._graph.nodes if i in kept)
        sub.add_edges_from((u, v, copy.deepcopy(self._graph.edges[u, v])) for u, v in kept_edges)
        spec = self.spec.copy()
        spec.roi = roi
        out = Graph.from_nx_graph(sub, spec)
        out.spec.directed = self.spec.directed
        return out

    def trim(self, roi: Roi) -> Graph:
        """A copy inside ``roi`` (with dangling nodes): each edge that leaves ``roi`` ends in a new,
        temporary node where it crosses the ROI's boundary; nodes outside are removed."""
        roi = as_roi(roi)
        out = self.crop(roi)
        inside = out._contained_ids(roi)
        ids = [i for i in out._graph.nodes if isinstance(i, (int, np.integer))]
        next_id = itertools.count(int(max(ids)) + 1 if ids else 0)
        outside = [i for i in out._graph.nodes if i not in inside]
        for o in outside:
            o_attrs = out._graph.nodes[o]
            for n in list(out.predecessors(out.node(o))) + list(out.successors(out.node(o))):
                if n not in inside:
                    continue
                crossing = _roi_intercept(out._graph.nodes[n]["location"], o_attrs["location"], roi, out.spec.dtype)
                if np.allclose(crossing, out._graph.nodes[n]["location"]):
                    continue
                attrs = copy.deepcopy(o_attrs)
                new_id = next(next_id)
                attrs.update(id=new_id, location=crossing, temporary=True)
                out._graph.add_node(new_id, **attrs)
                if out._graph.has_edge(n, o):
                    out._graph.add_edge(n, new_id, **copy.deepcopy(out._graph.edges[n, o]))
                if out._graph.is_directed() and out._graph.has_edge(o, n):
                    out._graph.add_edge(new_id, n, **copy.deepcopy(out._graph.edges[o, n]))
            out._graph.remove_node(o)
        return out

    def merge(self, other: Graph, copy_from_self: bool = False, copy: bool = False) -> Graph:
        """Combine two graphs one of whose ROIs contains the other's. The result has the larger ROI;
        inside the smaller ROI, ``other``'s nodes and edges replace ``self``'s (``self``'s win with
        ``copy_from_self``). The larger graph is changed in place unless ``copy``. gunpowder
        documents this but disables it (``NotImplementedError``); daskseg does what it documents.
        """
        mine, theirs = self.spec.roi, other.spec.roi
        if mine is None or theirs is None:
            raise SpecError(f"cannot merge graphs without ROIs ({mine} and {theirs})")
        if not (mine.contains(theirs) or theirs.contains(mine)):
            raise SpecError(f"cannot merge graphs with ROIs {mine} and {theirs}: neither contains the other")
        if not mine.contains(theirs):
            return other.merge(self, not copy_from_self, copy)
        merged = self.copy() if copy else self
        if copy_from_self:
            return merged
        for node_id in merged._contained_ids(theirs):
            merged._graph.remove_node(node_id)
        for node in other.nodes:
            merged.add_node(node)
        for edge in other.edges:
            merged.add_edge(edge)
        return merged

    # --- networkx ----------------------------------------------------------------------------
    def to_nx_graph(self) -> nx.Graph:
        """A copy of the underlying networkx graph."""
        return copy.deepcopy(self._graph)

    @classmethod
    def from_nx_graph(cls, graph: nx.Graph, spec: GraphSpec) -> Graph:
        """A graph over the networkx ``graph`` (not copied), whose nodes hold a ``location``."""
        if spec.directed is None:
            spec.directed = graph.is_directed()
        out = cls([], [], spec)
        out._graph = graph
        return out

    def __repr__(self) -> str:
        return f"Graph({self.num_vertices()} nodes, {self.num_edges()} edges, {self.spec})"


def _roi_intercept(inside: np.ndarray, outside: np.ndarray, roi: Roi, dtype) -> np.ndarray:
    """Where the segment from ``inside`` (in ``roi``) to ``outside`` leaves ``roi`` (just inside it)."""
    inside = np.asarray(inside, dtype=np.float64)
    delta = np.asarray(outside, dtype=np.float64) - inside
    s = 1.0
    for d, (b, e) in enumerate(zip(roi.begin, roi.end)):
        if delta[d] > 0 and e is not None:
            s = min(s, (e - inside[d]) / delta[d])
        elif delta[d] < 0 and b is not None:
            s = min(s, (b - inside[d]) / delta[d])
    point = inside + s * delta
    lower = np.array([-np.inf if b is None else b for b in roi.begin], dtype=np.float64)
    t = np.dtype(dtype).type
    # the largest value of the location dtype below the end: a ROI's end is not inside it
    upper = np.array([np.inf if e is None else np.nextafter(t(e), t(-np.inf)) for e in roi.end], dtype=np.float64)
    return np.clip(point, lower, upper).astype(dtype)
