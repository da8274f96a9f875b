"""Graph, Node, Edge, GraphSpec, GraphKey: gunpowder's crop (dangling nodes), trim, shift, merge."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import SpecError


def chain(directed=None) -> gp.Graph:
    """1 -- 2 -- 3 on the diagonal of a 10 x 10 ROI."""
    nodes = [gp.Node(i, np.array(loc, dtype=float)) for i, loc in ((1, (1, 1)), (2, (5, 5)), (3, (9, 9)))]
    return gp.Graph(nodes, [gp.Edge(1, 2), gp.Edge(2, 3)], gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10)), directed=directed))


def test_graph_key_is_unique_and_registered():
    assert gp.GraphKey("GT_GRAPH") is gp.GraphKey("GT_GRAPH")
    assert gp.GraphKeys.GT_GRAPH == gp.GraphKey("GT_GRAPH")
    assert gp.GraphKey("A") != gp.ArrayKey("A")
    assert pickle.loads(pickle.dumps(gp.GraphKey("GT_GRAPH"))) is gp.GraphKey("GT_GRAPH")


def test_nodes_are_views_and_locations_take_the_spec_dtype():
    g = chain()
    assert all(n.location.dtype == np.float32 for n in g.nodes)
    node = g.node(2)
    node.location += 1  # changes the graph, as in gunpowder
    assert np.array_equal(g.node(2).location, [6, 6])
    node.radius = 3.0
    assert g.node(2).attrs["radius"] == 3.0 and g.node(2).radius == 3.0
    assert not node.temporary and node.original_id == 2
    with pytest.raises(SpecError, match="numpy array"):
        node.location = (1, 2)


def test_crop_keeps_edges_leaving_the_roi_and_their_outside_ends():
    g = chain()
    cropped = g.crop(gp.Roi((0, 0), (3, 3)))
    # node 1 is inside; edge (1, 2) leaves the ROI, so 2 stays as a dangling node; 3 and (2, 3) go
    assert sorted(n.id for n in cropped.nodes) == [1, 2]
    assert [(e.u, e.v) for e in cropped.edges] == [(1, 2)]
    assert cropped.spec.roi == gp.Roi((0, 0), (3, 3))
    assert g.num_vertices() == 3 and g.spec.roi == gp.Roi((0, 0), (10, 10))  # a copy
    # a ROI with no node inside keeps nothing
    assert chain().crop(gp.Roi((6, 0), (2, 2))).num_vertices() == 0


def test_trim_replaces_dangling_nodes_at_the_boundary():
    trimmed = chain().trim(gp.Roi((0, 0), (3, 3)))
    nodes = {n.id: n for n in trimmed.nodes}
    assert sorted(nodes) == [1, 3]  # the new node gets the next free id after the kept ones (1, 2)
    new = nodes[3]
    assert new.temporary
    # the edge from (1, 1) to (5, 5) leaves [0, 3) at (3, 3); the new node lies just inside
    assert np.allclose(new.location, (3, 3)) and all(new.location < 3)
    assert [(e.u, e.v) for e in trimmed.edges] == [(1, 3)]


def test_shift_moves_every_node():
    g = chain()
    g.shift(np.array([10, -1]))
    assert [tuple(n.location) for n in g.nodes] == [(11, 0), (15, 4), (19, 8)]


def test_merge_replaces_the_inner_roi_with_the_other_graph():
    g = chain()
    inner = gp.Graph([gp.Node(7, np.array([4.0, 4.0]))], [], gp.GraphSpec(roi=gp.Roi((3, 3), (4, 4))))
    merged = g.merge(inner, copy=True)
    # node 2 at (5, 5) lies in [3, 7) and is replaced by node 7; its edges go with it
    assert sorted(n.id for n in merged.nodes) == [1, 3, 7]
    assert merged.num_edges() == 0 and merged.spec.roi == g.spec.roi
    assert g.num_vertices() == 3  # copy=True left it alone
    # the smaller graph on the left: the larger ROI still wins, the inner graph's nodes still replace
    assert sorted(n.id for n in inner.merge(g.copy()).nodes) == [1, 2, 3]
    with pytest.raises(SpecError, match="neither contains"):
        g.merge(gp.Graph([], [], gp.GraphSpec(roi=gp.Roi((8, 8), (5, 5)))))


def test_directedness_neighbors_and_components():
    assert chain().directed  # gunpowder's default: a DiGraph
    g = chain(directed=False)
    assert not g.directed
    assert sorted(n.id for n in g.neighbors(g.node(2))) == [1, 3]
    g.add_node(gp.Node(9, np.array([0.0, 9.0])))
    g.relabel_connected_components()
    assert g.node(1).component == g.node(3).component != g.node(9).component


def test_remove_node_retaining_connectivity():
    g = chain()
    g.remove_node(g.node(2), retain_connectivity=True)
    assert [(e.u, e.v) for e in g.edges] == [(1, 3)]


def test_networkx_round_trip_and_copies():
    g = chain()
    nx_graph = g.to_nx_graph()
    assert sorted(nx_graph.nodes) == [1, 2, 3]
    back = gp.Graph.from_nx_graph(nx_graph, gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10))))
    assert back.spec.directed is True and back.num_edges() == 2
    for other in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        other.node(1).location += 5
        assert np.array_equal(g.node(1).location, [1, 1])


def test_graph_spec():
    spec = gp.GraphSpec(roi=gp.Roi((0, 0), (4, 4)), directed=True)
    other = spec.update_with(gp.GraphSpec(roi=gp.Roi((2, 2), (4, 4))))
    assert other.roi == gp.Roi((0, 0), (6, 6)) and other.directed is True
    assert spec.copy() == spec and spec.copy().roi is not spec.roi
    assert not spec.nonspatial
