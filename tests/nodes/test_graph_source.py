"""GraphSource over a networkx graph and over a daisy-style graph provider."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import ArgumentError, SpecError
from daskseg.nodes.graph_source import NetworkxGraphProvider

SKELETON = gp.GraphKey("GS_SKELETON")


def skeleton() -> nx.Graph:
    g = nx.Graph()
    for i, loc in enumerate([(5, 5, 5), (15, 5, 5), (25, 5, 5), (35, 5, 5)]):
        g.add_node(i, location=np.array(loc, dtype=float), radius=i)
    g.add_edges_from([(0, 1), (1, 2), (2, 3)])
    return g


def request(roi):
    return gp.BatchRequest({}, {SKELETON: gp.GraphSpec(roi=roi)})


def test_a_networkx_graph_is_read_by_roi_with_only_inner_edges():
    source = gp.GraphSource(skeleton(), SKELETON)
    with gp.build(source):
        assert source.spec[SKELETON].roi.unbounded and source.spec[SKELETON].directed is False
        graph = source.request_batch(request(gp.Roi((0, 0, 0), (20, 10, 10))))[SKELETON]
    # nodes 0 and 1 are inside [0, 20); the edge (1, 2) crosses the boundary and is left out
    assert sorted(n.id for n in graph.nodes) == [0, 1]
    assert [tuple(sorted(e)) for e in graph.edges] == [(0, 1)]
    assert graph.node(1).radius == 1 and graph.node(1).location.dtype == np.float32
    assert graph.spec.roi == gp.Roi((0, 0, 0), (20, 10, 10))


class DaisyLikeProvider:
    """What daskseg needs of daisy's SharedGraphProvider: [roi], directed, position_attribute."""

    directed = True
    position_attribute = ["z", "y", "x"]

    def __getitem__(self, roi):
        g = nx.DiGraph()
        g.add_node(1, z=1, y=2, x=3)
        g.add_node(2)  # daisy's end of an edge leaving the ROI: no position
        g.add_edge(1, 2)
        return g


def test_a_daisy_style_provider_with_per_axis_positions():
    spec = gp.GraphSpec(roi=gp.Roi((0, 0, 0), (10, 10, 10)))
    source = gp.GraphSource(DaisyLikeProvider(), SKELETON, spec)
    with gp.build(source):
        assert source.spec[SKELETON].directed is True
        graph = source.request_batch(request(gp.Roi((0, 0, 0), (10, 10, 10))))[SKELETON]
    assert [tuple(n.location) for n in graph.nodes] == [(1, 2, 3)] and graph.num_edges() == 0


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="graph provider"):
        gp.GraphSource(object(), SKELETON)
    with pytest.raises(ArgumentError, match="GraphKey"):
        gp.GraphSource(skeleton(), gp.ArrayKey("GS_NOT_A_GRAPH"))
    source = gp.GraphSource(skeleton(), SKELETON, gp.GraphSpec(directed=True))
    with pytest.raises(SpecError, match="directed"):
        with gp.build(source):
            pass


def test_another_position_attribute():
    g = nx.Graph()
    g.add_node(7, pos=(1.0, 1.0))
    source = gp.GraphSource(NetworkxGraphProvider(g, "pos"), SKELETON)
    with gp.build(source):
        graph = source.request_batch(request(gp.Roi((0, 0), (2, 2))))[SKELETON]
    assert [tuple(n.location) for n in graph.nodes] == [(1, 1)]
