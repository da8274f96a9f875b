"""Graphs through the provider protocol: provides/updates, request checks, delivery cropped to the request."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import RequestError

POINTS = gp.GraphKey("PIPELINE_POINTS")


class Points(gp.BatchProvider):
    """Three nodes on a line in [0, 100)^2, with edges 1-2-3."""

    def setup(self):
        self.provides(POINTS, gp.GraphSpec(roi=gp.Roi((0, 0), (100, 100)), directed=False))

    def provide(self, request):
        nodes = [gp.Node(i, np.array([10.0 * i, 10.0 * i])) for i in (1, 2, 3)]
        graph = gp.Graph(nodes, [gp.Edge(1, 2), gp.Edge(2, 3)], gp.GraphSpec(roi=gp.Roi((0, 0), (100, 100)), directed=False))
        batch = gp.Batch()
        batch[POINTS] = graph.crop(request[POINTS].roi)
        return batch


class AddOne(gp.BatchFilter):
    """Moves every node by one along the first axis."""

    def setup(self):
        self.updates(POINTS, self.spec[POINTS])

    def process(self, batch, request):
        batch[POINTS].shift((1, 0))


def test_a_graph_is_delivered_cropped_to_the_request():
    pipeline = Points() + AddOne()
    request = gp.BatchRequest()
    request[POINTS] = gp.GraphSpec(roi=gp.Roi((0, 0), (25, 25)))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    graph = batch[POINTS]
    assert graph.spec.roi == gp.Roi((0, 0), (25, 25))
    # nodes 1 and 2 are inside; 3 dangles on the edge (2, 3) that leaves the ROI
    assert {n.id: tuple(n.location) for n in graph.nodes} == {1: (11, 10), 2: (21, 20), 3: (31, 30)}
    assert pipeline.spec[POINTS].directed is False


def test_graph_requests_are_checked():
    pipeline = Points() + AddOne()
    with gp.build(pipeline):
        outside = gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((50, 50), (100, 100)))})
        with pytest.raises(RequestError, match="outside the provided ROI"):
            pipeline.request_batch(outside)
        directed = gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10)), directed=True)})
        with pytest.raises(RequestError, match="directed"):
            pipeline.request_batch(directed)


def test_pad_grows_a_graph_roi():
    pipeline = Points() + gp.Pad(POINTS, gp.Coordinate((20, 20)))
    request = gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((-20, -20), (40, 40)))})
    with gp.build(pipeline):
        assert pipeline.spec[POINTS].roi == gp.Roi((-20, -20), (140, 140))
        batch = pipeline.request_batch(request)
    assert batch[POINTS].spec.roi == gp.Roi((-20, -20), (40, 40))
    assert sorted(n.id for n in batch[POINTS].nodes) == [1, 2]  # 2 dangles
