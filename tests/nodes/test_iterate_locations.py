"""IterateLocations: batches centred on a graph's nodes in order, graphs in the request's coordinates."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import ArgumentError, SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("IL_RAW")
POINTS = gp.GraphKey("IL_POINTS")
NODE_ID = gp.ArrayKey("IL_NODE_ID")


def _pipeline(tmp_path, locations, **kwargs):
    path = tmp_path / "il.zarr"
    write_array(path, "raw", np.arange(100, dtype=np.uint8).reshape(10, 10), (2, 2))  # ROI [0, 20)^2
    nodes = [gp.Node(i, np.array(loc, dtype=float)) for i, loc in locations.items()]
    graph = gp.GPGraphSource(POINTS, gp.Graph(nodes, [], gp.GraphSpec(roi=gp.Roi((0, 0), (40, 40)))))
    iterate = gp.IterateLocations(POINTS, **kwargs)
    return (gp.ZarrSource(path, {RAW: "raw"}), graph) + gp.MergeProvider() + iterate, iterate


def _request(with_graph=True):
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))})
    if with_graph:
        request[POINTS] = gp.GraphSpec(roi=gp.Roi((0, 0), (4, 4)))
    request[NODE_ID] = gp.ArraySpec(nonspatial=True)
    return request


def test_batches_are_centred_on_the_nodes_in_order(tmp_path):
    # node 20 lies outside the raw data and is skipped
    pipeline, iterate = _pipeline(tmp_path, {10: (4.5, 4.7), 20: (30, 30), 30: (11, 9)}, node_id=NODE_ID)
    with gp.build(pipeline):
        first = pipeline.request_batch(_request())
        assert not iterate.visited_all
        second = pipeline.request_batch(_request())
        assert iterate.visited_all
        third = pipeline.request_batch(_request(with_graph=False))
    # (4.5, 4.7) -> (4, 4): the request's centre (2, 2) moves there -> voxels [1, 3)^2
    np.testing.assert_array_equal(first[RAW].data, [[11, 12], [21, 22]])
    assert first[RAW].spec.roi == gp.Roi((0, 0), (4, 4))
    assert list(first[NODE_ID].data) == [10]
    # the node, in the request's coordinates: shifted back by (2, 2)
    (node,) = first[POINTS].nodes
    assert np.allclose(node.location, (2.5, 2.7))
    assert first[POINTS].spec.roi == gp.Roi((0, 0), (4, 4))
    # (11, 9): shift (9, 7) rounds to (8, 8) -> voxels [4, 6)^2; node 10 is outside this batch
    np.testing.assert_array_equal(second[RAW].data, [[44, 45], [54, 55]])
    assert list(second[NODE_ID].data) == [30] and [n.id for n in second[POINTS].nodes] == [30]
    # the list loops
    assert list(third[NODE_ID].data) == [10]


def test_roi_limits_the_nodes_and_arguments_are_checked(tmp_path):
    pipeline, iterate = _pipeline(tmp_path, {10: (4.5, 4.7), 30: (11, 9)}, roi=gp.Roi((8, 8), (10, 10)))
    with gp.build(pipeline):
        assert [n.id for n in iterate.nodes] == [30]
    empty, _ = _pipeline(tmp_path, {10: (4.5, 4.7)}, roi=gp.Roi((30, 30), (5, 5)))
    with pytest.raises(SpecError, match="no nodes"):
        with gp.build(empty):
            pass
    with pytest.raises(ArgumentError, match="GraphKey"):
        gp.IterateLocations(RAW)
