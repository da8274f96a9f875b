"""gunpowder 1.5's own graph test cases (tests/cases/graph.py, random_location_graph.py), ported by the
import swap, with gunpowder's expectations."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg import (
    Batch,
    BatchFilter,
    BatchProvider,
    BatchRequest,
    Coordinate,
    Edge,
    Graph,
    GraphKey,
    GraphSpec,
    Node,
    Roi,
    build,
)


class ExampleGraphSource(BatchProvider):
    def __init__(self, graph_key):
        self.graph_key = graph_key
        nodes = [
            Node(id=1, location=np.array([1, 1, 1], dtype=float)),
            Node(id=2, location=np.array([500, 500, 500], dtype=float)),
            Node(id=3, location=np.array([550, 550, 550], dtype=float)),
        ]
        self.spec_ = GraphSpec(roi=Roi(Coordinate([-500, -500, -500]), Coordinate([1500, 1500, 1500])))
        self.graph = Graph(nodes, [Edge(1, 2), Edge(2, 3)], self.spec_)

    def setup(self):
        self.provides(self.graph_key, self.spec_)

    def provide(self, request):
        batch = Batch()
        batch[self.graph_key] = self.graph.crop(request[self.graph_key].roi)
        return batch


class GrowFilter(BatchFilter):
    def prepare(self, request):
        grow = Coordinate([50, 50, 50])
        for key, spec in request.items():
            spec.roi = spec.roi.grow(grow, grow)
            request[key] = spec
        return request

    def process(self, batch, request):
        for key, spec in request.items():
            batch[key] = batch[key].crop(spec.roi).trim(spec.roi)
        return batch


def _matches(graph, expected):
    seen = sorted(graph.nodes, key=lambda v: tuple(v.location))
    expected = sorted(expected, key=lambda e: e[1])
    assert sorted(-1 if v.original_id is None else v.original_id for v in seen) == sorted(
        -1 if temporary else i for i, _, temporary in expected
    )
    for (_, location, _), actual in zip(expected, seen):
        assert np.allclose(location, actual.location)


def test_output():
    graph_key = GraphKey("GPCASE_TEST_GRAPH")
    pipeline = ExampleGraphSource(graph_key) + GrowFilter()
    with build(pipeline):
        batch = pipeline.request_batch(BatchRequest({graph_key: GraphSpec(roi=Roi((0, 0, 0), (50, 50, 50)))}))
        _matches(batch[graph_key], [(1, (1, 1, 1), False), (2, (50, 50, 50), True)])
        batch = pipeline.request_batch(BatchRequest({graph_key: GraphSpec(roi=Roi((25, 25, 25), (500, 500, 500)))}))
        _matches(batch[graph_key], [(1, (25, 25, 25), True), (2, (500, 500, 500), False), (3, (525, 525, 525), True)])


def nodes():
    return [Node(i, location=np.array([i, i, i])) for i in range(5)]


def edges():
    return [Edge(0, 1), Edge(1, 2), Edge(2, 3), Edge(3, 4), Edge(4, 0)]


def spec():
    return GraphSpec(roi=Roi(Coordinate([0, 0, 0]), Coordinate([5, 5, 5])), directed=True)


def test_neighbors():
    undirected_spec = spec()
    undirected_spec.directed = False
    directed = Graph(nodes(), edges(), spec())
    undirected = Graph(nodes(), edges(), undirected_spec)
    assert list(directed.neighbors(nodes()[0])) == list(undirected.neighbors(nodes()[0]))


def test_crop():
    g = Graph(nodes(), edges(), spec())
    sub_g = g.crop(Roi(Coordinate([1, 1, 1]), Coordinate([3, 3, 3])))
    assert g.spec.roi == spec().roi
    assert sub_g.spec.roi == Roi(Coordinate([1, 1, 1]), Coordinate([3, 3, 3]))
    sub_g.spec.directed = False
    assert g.spec.directed and not sub_g.spec.directed


def test_nodes():
    initial = {i: np.array([i, i, i], dtype=np.float32) for i in range(5)}
    replacement = {i: np.array([-i, -i, -i], dtype=np.float32) for i in range(5)}
    graph = Graph([Node(i, initial[i].copy()) for i in range(5)], edges(), spec())
    for node in graph.nodes:
        node.location = replacement[node.id]
    for node in graph.nodes:
        assert np.allclose(node.location, replacement[node.id])


class SourceGraphLocation(BatchProvider):
    def __init__(self, graph_key):
        self.graph_key = graph_key
        self.graph = Graph([Node(id=1, location=np.array([500, 500, 500]))], [], GraphSpec(roi=Roi((0, 0, 0), (1000, 1000, 1000))))

    def setup(self):
        self.provides(self.graph_key, self.graph.spec)

    def provide(self, request):
        batch = Batch()
        roi = request[self.graph_key].roi
        batch[self.graph_key] = self.graph.crop(roi).trim(roi)
        return batch


class BatchTester(BatchFilter):
    def __init__(self, graph_key, roi_to_match, exact=True):
        self.graph_key = graph_key
        self.roi_to_match = roi_to_match
        self.exact = exact
        self.visited = False

    def process(self, batch, request):
        if not self.visited:  # RandomLocation's setup reads all nodes first
            self.visited = True
            return
        roi = batch[self.graph_key].spec.roi
        assert roi == self.roi_to_match if self.exact else self.roi_to_match.contains(roi)


def _one_node_every_time(request_roi, upstream_roi, exact):
    graph_key = GraphKey("GPCASE_RL_GRAPH")
    pipeline = SourceGraphLocation(graph_key) + BatchTester(graph_key, upstream_roi, exact) + gp.RandomLocation(ensure_nonempty=graph_key)
    with build(pipeline):
        for seed in range(50):
            batch = pipeline.request_batch(BatchRequest({graph_key: GraphSpec(roi=request_roi)}, random_seed=seed))
            assert len(list(batch[graph_key].nodes)) == 1


def test_random_location_dim_size_1():
    _one_node_every_time(Roi((0, 0, 0), (1, 100, 100)), Roi((500, 401, 401), (1, 200, 200)), exact=False)


def test_random_location_full_roi():
    _one_node_every_time(Roi((0, 0, 0), (1000, 1000, 1000)), Roi((0, 0, 0), (1000, 1000, 1000)), exact=False)


def test_random_location_roi_one_point():
    _one_node_every_time(Roi((0, 0, 0), (1, 1, 1)), Roi((500, 500, 500), (1, 1, 1)), exact=True)


def test_random_location_iso_roi():
    _one_node_every_time(Roi((0, 0, 0), (100, 100, 100)), Roi((401, 401, 401), (200, 200, 200)), exact=False)


class DummyDaisyGraphProvider:
    """gunpowder's stand-in for daisy.SharedGraphProvider (tests/cases/iterate_locations.py)."""

    def __init__(self, nodes, edges, directed=False):
        self.nodes = nodes
        self.edges = edges
        self.directed = directed
        self.position_attribute = "location"

    def __getitem__(self, roi):
        import networkx as nx

        graph = nx.DiGraph() if self.directed else nx.Graph()
        for node in self.nodes:
            if roi.contains(node.location):
                graph.add_node(node.id, location=node.location)
        for edge in self.edges:
            if edge.u in graph.nodes:
                graph.add_edge(edge.u, edge.v)
        return graph


def test_iterate_locations_output():
    graph_key = GraphKey("GPCASE_IL_GRAPH")
    node_key = gp.ArrayKey("GPCASE_IL_NODE_ID")
    source = gp.GraphSource(DummyDaisyGraphProvider(nodes(), edges(), directed=True), graph_key, spec())
    pipeline = source + gp.IterateLocations(graph_key, node_id=node_key)
    request = BatchRequest({graph_key: GraphSpec(roi=Roi((0, 0, 0), (1, 1, 1))), node_key: gp.ArraySpec(nonspatial=True)})
    node_ids = []
    with build(pipeline):
        for _ in range(5):
            batch = pipeline.request_batch(request)
            node_ids.extend(batch[node_key].data)
            graph = batch[graph_key]
            assert graph.num_vertices() == 1
            # locations are shifted to lie in the requested ROI, so at (0, 0, 0)
            assert np.allclose(next(graph.nodes).location, (0, 0, 0))
    assert node_ids == [0, 1, 2, 3, 4]


class PointTestSource3D(BatchProvider):
    """gunpowder's source of tests/cases/elastic_augment_points.py: six points, each inside a 5-voxel
    cube of labels with its id, on stripes of label 100."""

    def __init__(self, points_key, labels_key):
        self.points_key = points_key
        self.labels_key = labels_key

    def setup(self):
        self.points = [Node(i, np.array([0, 10 * i, 0])) for i in range(6)]
        self.provides(self.points_key, GraphSpec(roi=Roi((-100, -100, -100), (200, 200, 200))))
        self.provides(
            self.labels_key,
            gp.ArraySpec(roi=Roi((-100, -100, -100), (200, 200, 200)), voxel_size=Coordinate((4, 1, 1)), interpolatable=False),
        )

    def point_to_voxel(self, array_roi, location):
        location = location / self.spec[self.labels_key].voxel_size
        location -= array_roi.begin / self.spec[self.labels_key].voxel_size
        return tuple(slice(int(v - 2), int(v + 3)) for v in location)

    def provide(self, request):
        batch = Batch()
        roi_points = request[self.points_key].roi
        roi_array = request[self.labels_key].roi
        data = np.zeros((roi_array // self.spec[self.labels_key].voxel_size).shape, dtype=np.uint32)
        data[:, ::2] = 100
        for node in self.points:
            data[self.point_to_voxel(roi_array, node.location)] = node.id
        spec = self.spec[self.labels_key].copy()
        spec.roi = roi_array
        batch.arrays[self.labels_key] = gp.Array(data, spec=spec)
        points = [node for node in self.points if roi_points.contains(node.location)]
        batch.graphs[self.points_key] = Graph(points, [], GraphSpec(roi=roi_points))
        return batch


def test_elastic_augment_points_3d_basics(tmp_path):
    import math

    labels_key, points_key, raster_key = gp.ArrayKey("GPCASE_EA_LABELS"), GraphKey("GPCASE_EA_POINTS"), gp.ArrayKey("GPCASE_EA_RASTER")
    pipeline = (
        PointTestSource3D(points_key, labels_key)
        + gp.ElasticAugment([10, 10, 10], [0.1, 0.1, 0.1], [0, 2.0 * math.pi])
        + gp.RasterizeGraph(points_key, raster_key, settings=gp.RasterizationSettings(radius=2, mode="peak"))
        + gp.Snapshot(
            {labels_key: "volumes/labels", raster_key: "volumes/raster"},
            dataset_dtypes={raster_key: np.float32},
            output_dir=tmp_path,
            output_filename="elastic_augment_test{id}-{iteration}.hdf",
        )
    )
    for seed in range(5):
        with build(pipeline):
            request_roi = Roi((-20, -20, -20), (40, 40, 40))
            request = BatchRequest(random_seed=seed)
            request[labels_key] = gp.ArraySpec(roi=request_roi)
            request[points_key] = GraphSpec(roi=request_roi)
            request[raster_key] = gp.ArraySpec(roi=request_roi)
            batch = pipeline.request_batch(request)
            labels = batch[labels_key]
            points = batch[points_key]
            # the point at (0, 0, 0) should not have moved
            assert points.contains(0)
            labels_data_roi = (labels.spec.roi - labels.spec.roi.begin) / labels.spec.voxel_size
            # points should have moved together with the voxels
            for point in points.nodes:
                loc = (point.location - labels.spec.roi.begin) / labels.spec.voxel_size
                loc = Coordinate(int(round(x)) for x in loc)
                if labels_data_roi.contains(loc):
                    assert labels.data[loc] == point.id
    assert len(list(tmp_path.glob("elastic_augment_test*.hdf"))) == 5


def test_gpgraph_source_4d_without_a_roi():
    points = GraphKey("GPCASE_GPGS_POINTS")
    locations = [(0, 0, 0, 0), (5, 10, 10, 10), (10, 50, 50, 50), (15, 90, 90, 90)]
    source = gp.GPGraphSource(points, Graph([Node(i, np.array(loc)) for i, loc in enumerate(locations)], [], GraphSpec()))
    request = BatchRequest()
    request[points] = GraphSpec(Roi(offset=(5, 30, 30, 30), shape=Coordinate((10, 40, 40, 40))))
    with build(source):
        assert len(list(source.request_batch(request)[points].nodes)) == 1


def test_graph_source_output():
    graph_key = GraphKey("GPCASE_GS_GRAPH")
    source = gp.GraphSource(DummyDaisyGraphProvider(nodes(), edges(), directed=True), graph_key, spec())
    with build(source):
        graph = source.request_batch(BatchRequest({graph_key: GraphSpec(roi=Roi((0, 0, 0), (5, 5, 5)))}))[graph_key]
        assert [v.id for v in graph.nodes] == [0, 1, 2, 3, 4]
        graph = source.request_batch(BatchRequest({graph_key: GraphSpec(roi=Roi((2, 2, 2), (3, 3, 3)))}))[graph_key]
        assert [v.id for v in graph.nodes] == [2, 3, 4]
        assert all(np.allclose(v.location, (v.id,) * 3) for v in graph.nodes)


def test_csv_points_source_2d(tmp_path):
    fake_points = np.random.default_rng(12345).integers(0, 100, size=(2, 2))
    path = tmp_path / "shift_test.csv"
    path.write_text("".join(f"{p[0]}\t{p[1]}\n" for p in fake_points))
    points_key = GraphKey("GPCASE_CSV_POINTS")
    source = gp.CsvPointsSource(
        path, points_key, spatial_cols=[0, 1], delimiter="\t",
        points_spec=GraphSpec(roi=Roi(shape=Coordinate((100, 100)), offset=(0, 0))),
    )
    request = BatchRequest()
    request.add(points_key, Coordinate((100, 100)))
    with build(source) as b:
        batch = b.request_batch(request)
    assert sorted(list(n.location) for n in batch[points_key].nodes) == sorted(list(p) for p in fake_points)


def test_csv_points_source_3d(tmp_path):
    import csv

    fake_points = np.random.default_rng(12345).integers(0, 100, size=(3, 3)).astype(float)
    path = tmp_path / "shift_test.csv"
    with open(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=["x", "y", "z", "id"])
        writer.writeheader()
        for i, point in enumerate(fake_points):
            writer.writerow({"x": point[0], "y": point[1], "z": point[2], "id": i})
    points_key = GraphKey("GPCASE_CSV_POINTS")
    # gunpowder's case gives a 2D points_spec for 3D points, which only its dimension-blind ROI
    # checks accept; here the spec is 3D
    source = gp.CsvPointsSource(
        path, points_key, spatial_cols=[0, 2, 1], delimiter=",", id_col=3,
        points_spec=GraphSpec(roi=Roi(shape=Coordinate((200, 200, 200)), offset=(0, 0, 0))), scale=2,
    )
    request = BatchRequest()
    request.add(points_key, Coordinate((200, 200, 200)))
    with build(source) as b:
        batch = b.request_batch(request)
    nodes_out = list(batch[points_key].nodes)
    assert len(nodes_out) == 3
    for node in nodes_out:
        orig = fake_points[int(node.id)]
        assert list(node.location) == list(orig[[0, 2, 1]] * 2)


def test_rasterize_graph_colors():
    graph = Graph(
        [
            Node(id=1, location=np.array((0.5, 0.5)), attrs={"color": 2}),
            Node(id=2, location=np.array((0.5, 4.5)), attrs={"color": 2}),
            Node(id=3, location=np.array((4.5, 0.5)), attrs={"color": 3}),
            Node(id=4, location=np.array((4.5, 4.5)), attrs={"color": 3}),
        ],
        [Edge(1, 2, attrs={"color": 2}), Edge(3, 4, attrs={"color": 3})],
        GraphSpec(roi=Roi((0, 0), (5, 5))),
    )
    graph_key, array_key = GraphKey("GPCASE_RG_G"), gp.ArrayKey("GPCASE_RG_A")
    pipeline = gp.GPGraphSource(graph_key, graph) + gp.RasterizeGraph(
        graph_key,
        array_key,
        gp.ArraySpec(roi=Roi((0, 0), (5, 5)), voxel_size=Coordinate(1, 1), dtype=np.uint8),
        settings=gp.RasterizationSettings(1, color_attr="color"),
    )
    with build(pipeline):
        request = BatchRequest()
        request[array_key] = gp.ArraySpec(Roi((0, 0), (5, 5)))
        rasterized = pipeline.request_batch(request)[array_key].data
    assert rasterized[0, 0] == 2 and rasterized[0, :].sum() == 10
    assert rasterized[4, 0] == 3 and rasterized[4, :].sum() == 15


def _rasterize_3d(settings, roi):
    graph_key, array_key, rasterized_key = GraphKey("GPCASE_R3_G"), gp.ArrayKey("GPCASE_R3_A"), gp.ArrayKey("GPCASE_R3_R")
    corners = [(z, y, x) for z in (-200, 199) for y in (-200, 199) for x in (-200, 199)]
    locations = corners + [(0, 0, 0), (-1, -1, -1)]
    graph = Graph(
        [Node(id=i, location=np.array(loc)) for i, loc in enumerate(locations, start=1)],
        [],
        GraphSpec(roi=Roi((-100, -100, -100), (300, 300, 300))),
    )
    array = gp.Array(np.ones((10, 100, 100)), gp.ArraySpec(roi=Roi((-200, -200, -200), (400, 400, 400)), voxel_size=(40, 4, 4)))
    pipeline = (
        (gp.GPGraphSource(graph_key, graph), gp.GPArraySource(array_key, array))
        + gp.MergeProvider()
        + gp.RasterizeGraph(graph_key, rasterized_key, gp.ArraySpec(voxel_size=(40, 4, 4)), settings)
    )
    with build(pipeline):
        request = BatchRequest()
        request[graph_key] = GraphSpec(roi=roi)
        request[array_key] = gp.ArraySpec(roi=roi)
        request[rasterized_key] = gp.ArraySpec(roi=roi)
        return pipeline.request_batch(request)[rasterized_key].data, array_key


def test_rasterize_graph_3d():
    roi = Roi((0, 0, 0), (200, 200, 200))
    r, _ = _rasterize_3d(None, roi)
    assert r[0, 0, 0] == 1 and r[2, 20, 20] == 0 and r[4, 49, 49] == 1
    r, _ = _rasterize_3d(gp.RasterizationSettings(radius=1, fg_value=0, bg_value=1), roi)
    assert r[0, 0, 0] == 0 and r[2, 20, 20] == 1 and r[4, 49, 49] == 0
    r, _ = _rasterize_3d(gp.RasterizationSettings(radius=40, inner_radius_fraction=0.25, fg_value=1, bg_value=0), roi)
    # hollow in the middle; the ball reaches 10 voxels in y and x, 1 in z
    assert r[0, 0, 0] == 0 and r[0, 10, 0] == 1 and r[0, 0, 10] == 1 and r[1, 0, 0] == 1
    assert r[2, 20, 20] == 0 and r[4, 49, 49] == 0
    r, _ = _rasterize_3d(gp.RasterizationSettings(radius=1, fg_value=0, bg_value=1, mask=gp.ArrayKey("GPCASE_R3_A")), roi)
    assert r[0, 0, 0] == 0 and r[2, 20, 20] == 1 and r[4, 49, 49] == 0
    small = Roi((0, 0, 0), (120, 80, 80))
    for inner in (None, 0.75):
        r, _ = _rasterize_3d(gp.RasterizationSettings(radius=(40, 40, 20), inner_radius_fraction=inner), small)
        assert r[0, 0, 0] == (0 if inner else 1)
        assert r[0, 10, 0] == 1 and r[0, 11, 0] == 0 and r[0, 0, 5] == 1 and r[0, 0, 6] == 0
        assert r[1, 0, 0] == 1 and r[2, 0, 0] == 0


def test_rasterize_graph_with_edge():
    graph_key, rasterized_key = GraphKey("GPCASE_RE_G"), gp.ArrayKey("GPCASE_RE_R")
    graph = Graph(
        [Node(id=1, location=np.array((0, 4, 4))), Node(id=2, location=np.array((9, 4, 4)))],
        [Edge(1, 2)],
        GraphSpec(roi=Roi((0, 0, 0), (10, 10, 10))),
    )
    pipeline = gp.GPGraphSource(graph_key, graph) + gp.RasterizeGraph(
        graph_key, rasterized_key, gp.ArraySpec(voxel_size=(1, 1, 1)), settings=gp.RasterizationSettings(0.5)
    )
    with build(pipeline):
        request = BatchRequest()
        request[graph_key] = GraphSpec(roi=Roi((0, 0, 0), (10, 10, 10)))
        request[rasterized_key] = gp.ArraySpec(roi=Roi((0, 0, 0), (10, 10, 10)))
        rasterized = pipeline.request_batch(request)[rasterized_key].data
    assert rasterized.sum() == 10


def _deform_source():
    """gunpowder's mock_3d_source (tests/cases/deform_augment.py): six nodes, each in a 3-voxel cube
    of its id in two label arrays of different voxel sizes."""

    def node_to_voxel(array_roi, voxel_size, location):
        location = location / voxel_size
        location -= array_roi.begin / voxel_size
        return tuple(slice(int(v - 1), int(v + 2)) for v in location)

    nodes_ = [Node(id=i, location=np.array([0, 10 * (i - 1) + 0.5, 0])) for i in range(1, 7)]
    g = Graph(nodes_, edges=[], spec=GraphSpec(roi=Roi((-100, -100, -100), (200, 200, 200))))
    sources = [gp.GPGraphSource(GraphKey("GPCASE_DA_G"), g)]
    for name, vs in (("GPCASE_DA_A1", (4, 1, 1)), ("GPCASE_DA_A2", (1, 2, 1))):
        spec_ = gp.ArraySpec(roi=Roi((-100, -100, -100), (200, 200, 200)), voxel_size=Coordinate(vs), interpolatable=False)
        data = np.zeros(spec_.roi.shape // spec_.voxel_size, dtype=np.uint32)
        for node in nodes_:
            data[node_to_voxel(spec_.roi, spec_.voxel_size, node.location)] = node.id
        sources.append(gp.GPArraySource(gp.ArrayKey(name), gp.Array(data, spec_)))
    return tuple(sources) + gp.MergeProvider()


# gunpowder's case grid, without the combinations it skips (rotation axes beyond the spatial dimensions)
_DEFORM_CASES = [
    (spatial_dims, rotation_axes)
    for spatial_dims in (2, 3)
    for rotation_axes in (None, (1, 0), (0, 2))
    if spatial_dims > max(rotation_axes or [0])
]


@pytest.mark.parametrize("rotate", [True, False])
@pytest.mark.parametrize(("spatial_dims", "rotation_axes"), _DEFORM_CASES)
def test_deform_augment_3d_basics(rotate, spatial_dims, rotation_axes):
    from scipy.ndimage import center_of_mass

    labels_key, labels2_key, graph_key = gp.ArrayKey("GPCASE_DA_A1"), gp.ArrayKey("GPCASE_DA_A2"), GraphKey("GPCASE_DA_G")
    pipeline = _deform_source() + gp.DeformAugment(
        [4] * spatial_dims, [1] * spatial_dims, graph_raster_voxel_size=[1] * spatial_dims, rotate=rotate,
        spatial_dims=spatial_dims, rotation_axes=rotation_axes,
    )
    for seed in range(5):
        with build(pipeline):
            request_roi = Roi((-20, -20, -20), (40, 40, 40))
            request = BatchRequest(random_seed=seed)
            request[labels_key] = gp.ArraySpec(roi=request_roi)
            request[labels2_key] = gp.ArraySpec(roi=request_roi / 2)
            request[graph_key] = GraphSpec(roi=request_roi)
            batch = pipeline.request_batch(request)
        labels, labels2, graph = batch[labels_key], batch[labels2_key], batch[graph_key]
        assert Node(id=1, location=np.array([0, 0, 0])) in list(graph.nodes)
        # the graph moved together with the voxels
        for node in graph.nodes:
            for array in (labels, labels2):
                if array.spec.roi.contains(node.location):
                    loc = np.array((node.location - array.spec.roi.begin) / array.spec.voxel_size)
                    com = center_of_mass(array.data == node.id)
                    if any(np.isnan(com)):
                        continue
                    assert np.linalg.norm(com - loc) < np.linalg.norm(array.spec.voxel_size) * 2, (com, loc)


def test_deform_augment_4d_basics():
    points = GraphKey("GPCASE_DA4_POINTS")
    locations = [(0, 0, 0, 0), (5, 10, 10, 10), (10, 50, 50, 50), (15, 90, 90, 90)]
    source = gp.GPGraphSource(points, Graph(nodes=[Node(i, np.array(loc)) for i, loc in enumerate(locations)], edges=[], spec=GraphSpec()))
    deform = gp.DeformAugment(
        control_point_spacing=Coordinate((5, 5, 5)), jitter_sigma=[0.1, 0.1, 0.1], scale_interval=[0.9, 1.1],
        rotate=True, subsample=4, spatial_dims=3, use_fast_points_transform=True,
    )
    pipeline = source + deform
    request = BatchRequest()
    request[points] = GraphSpec(Roi(offset=(5, 30, 30, 30), shape=Coordinate((15, 40, 40, 40))))
    with build(pipeline):
        # not enough deformation to remove node from center
        assert len(list(pipeline.request_batch(request)[points].nodes)) == 1
