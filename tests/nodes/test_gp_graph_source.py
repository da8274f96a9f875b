"""GPGraphSource and GPArraySource: in-memory graphs and arrays as sources."""

from __future__ import annotations

import numpy as np

import daskseg as gp

POINTS = gp.GraphKey("GPGS_POINTS")
RAW = gp.ArrayKey("GPGS_RAW")


def test_graph_is_cropped_and_trimmed_to_the_request():
    graph = gp.Graph(
        [gp.Node(1, np.array([2.0, 2.0])), gp.Node(2, np.array([2.0, 12.0]))],
        [gp.Edge(1, 2)],
        gp.GraphSpec(roi=gp.Roi((0, 0), (20, 20))),
    )
    source = gp.GPGraphSource(POINTS, graph)
    with gp.build(source):
        assert source.spec[POINTS].roi == gp.Roi((0, 0), (20, 20))
        out = source.request_batch(gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10)))}))[POINTS]
    nodes = {n.id: n for n in out.nodes}
    # the edge leaves [0, 10) at (2, 10): node 2 is replaced by a temporary node there
    assert sorted(nodes) == [1, 3] and nodes[3].temporary
    assert np.allclose(nodes[3].location, (2, 10), atol=1e-5) and nodes[3].location[1] < 10
    assert graph.num_vertices() == 2  # the source's graph is unchanged


def test_array_source_gives_copies_of_the_requested_part():
    data = np.arange(16, dtype=np.uint8).reshape(4, 4)
    array = gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)), voxel_size=(2, 2)))
    source = gp.GPArraySource(RAW, array)
    with gp.build(source):
        out = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((2, 4), (4, 4)))}))[RAW]
    assert np.array_equal(out.data, [[6, 7], [10, 11]])
    out.data[:] = 0
    assert data[1, 2] == 6
