"""RasterizeGraph: balls, anisotropic balls, tubes along edges, hollow spheres, peaks, masks, values."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import ArgumentError

POINTS = gp.GraphKey("RG_POINTS")
DRAWN = gp.ArrayKey("RG_DRAWN")
LABELS = gp.ArrayKey("RG_LABELS")


def source(nodes, edges=(), roi=gp.Roi((0, 0), (10, 10))):
    graph = gp.Graph(
        [gp.Node(i, np.array(loc, dtype=float), attrs=dict(attrs)) for i, loc, *attrs in nodes],
        [gp.Edge(u, v) for u, v in edges],
        gp.GraphSpec(roi=roi),
    )
    return gp.GPGraphSource(POINTS, graph)


def draw(pipeline, roi=gp.Roi((0, 0), (10, 10)), **extra):
    request = gp.BatchRequest({DRAWN: gp.ArraySpec(roi=roi)})
    for key, value in extra.items():
        request[gp.ArrayKey(key)] = value
    with gp.build(pipeline):
        return pipeline.request_batch(request)[DRAWN].data


def disc(shape, center, inside) -> np.ndarray:
    """Voxels (i, j) with inside(di, dj) true, di and dj their offsets from ``center``."""
    i, j = np.indices(shape)
    return inside(i - center[0], j - center[1])


def test_a_node_is_a_ball_of_the_radius():
    data = draw(source([(1, (5.5, 5.5))]) + gp.RasterizeGraph(POINTS, DRAWN))
    assert data.dtype == np.uint8
    assert np.array_equal(data, disc((10, 10), (5, 5), lambda a, b: a**2 + b**2 <= 1))


def test_balls_are_in_world_units_for_anisotropic_voxels():
    spec = gp.ArraySpec(voxel_size=(2, 1))
    settings = gp.RasterizationSettings(radius=2)
    pipeline = source([(1, (10.5, 5.5))], roi=gp.Roi((0, 0), (20, 10))) + gp.RasterizeGraph(POINTS, DRAWN, spec, settings)
    data = draw(pipeline, roi=gp.Roi((0, 0), (20, 10)))
    # voxel (5, 5); a voxel at (di, dj) is 2 di and dj world units away
    assert np.array_equal(data, disc((10, 10), (5, 5), lambda a, b: (2 * a) ** 2 + b**2 <= 4))


def test_edges_are_drawn_as_lines_even_where_they_leave_the_roi():
    settings = gp.RasterizationSettings(radius=0.5)  # the voxels on the line only
    graph_roi = gp.Roi((0, 0), (10, 40))
    pipeline = source([(1, (2.5, 2.5)), (2, (7.5, 2.5)), (3, (2.5, 30.5))], [(1, 2), (1, 3)], graph_roi)
    data = draw(pipeline + gp.RasterizeGraph(POINTS, DRAWN, settings=settings))
    expected = np.zeros((10, 10), dtype=np.uint8)
    expected[2:8, 2] = 1  # 1 -- 2
    expected[2, 2:] = 1  # 1 -- 3 leaves the requested ROI on the right
    assert np.array_equal(data, expected)
    no_edges = gp.RasterizationSettings(radius=0.5, edges=False)
    data = draw(source([(1, (2.5, 2.5)), (2, (7.5, 2.5))], [(1, 2)]) + gp.RasterizeGraph(POINTS, DRAWN, settings=no_edges))
    assert data.sum() == 2


def test_nodes_just_outside_the_request_still_show():
    settings = gp.RasterizationSettings(radius=2)
    pipeline = source([(1, (6.5, 5.5))]) + gp.RasterizeGraph(POINTS, DRAWN, settings=settings)
    data = draw(pipeline, roi=gp.Roi((0, 0), (5, 10)))
    full = disc((10, 10), (6, 5), lambda a, b: a**2 + b**2 <= 4)
    assert data[4, 5] == 1 and np.array_equal(data, full[:5])


def test_hollow_spheres():
    settings = gp.RasterizationSettings(radius=3, inner_radius_fraction=0.5)
    data = draw(source([(1, (5.5, 5.5))]) + gp.RasterizeGraph(POINTS, DRAWN, settings=settings))
    assert np.array_equal(data, disc((10, 10), (5, 5), lambda a, b: (a**2 + b**2 <= 9) & (a**2 + b**2 > 2.25)))


def test_peaks_are_normalised_gaussians():
    settings = gp.RasterizationSettings(radius=1, mode="peak")
    data = draw(source([(1, (5.5, 5.5))]) + gp.RasterizeGraph(POINTS, DRAWN, settings=settings))
    assert data.dtype == np.float32 and data[5, 5] == 1 and data.max() == 1
    # a Gaussian of sigma 1 voxel: one voxel off the peak is exp(-1/2) of it
    assert data[5, 6] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert data[4, 4] == pytest.approx(np.exp(-1.0), rel=1e-5)


def test_a_mask_keeps_each_ball_inside_its_object():
    labels = np.zeros((10, 10), dtype=np.uint64)
    labels[:, :5] = 1
    labels[:, 5:] = 2
    labels[8:, :] = 0
    mask = gp.GPArraySource(LABELS, gp.Array(labels, gp.ArraySpec(roi=gp.Roi((0, 0), (10, 10)), voxel_size=(1, 1))))
    settings = gp.RasterizationSettings(radius=2, mask=LABELS)
    points = source([(1, (3.5, 4.5)), (2, (9.5, 9.5))])  # in object 1 (next to 2), and in background
    data = draw((points, mask) + gp.MergeProvider() + gp.RasterizeGraph(POINTS, DRAWN, settings=settings))
    ball = disc((10, 10), (3, 4), lambda a, b: a**2 + b**2 <= 4)
    assert np.array_equal(data, (ball & (labels == 1)).astype(np.uint8))


def test_values_and_colours():
    settings = gp.RasterizationSettings(radius=1, fg_value=5, bg_value=7)
    data = draw(source([(1, (5.5, 5.5))]) + gp.RasterizeGraph(POINTS, DRAWN, settings=settings))
    ball = disc((10, 10), (5, 5), lambda a, b: a**2 + b**2 <= 1)
    assert np.array_equal(data, np.where(ball, 5, 7))
    coloured = gp.RasterizationSettings(radius=0.5, color_attr="component", edges=False)
    nodes = [(1, (1.5, 1.5), ("component", 3)), (2, (7.5, 7.5), ("component", 4)), (3, (4.5, 4.5))]
    data = draw(source(nodes) + gp.RasterizeGraph(POINTS, DRAWN, settings=coloured))
    assert data[1, 1] == 3 and data[7, 7] == 4 and data[4, 4] == 0 and np.count_nonzero(data) == 2


def test_spec_and_arguments():
    pipeline = source([(1, (5.5, 5.5))]) + gp.RasterizeGraph(POINTS, DRAWN, gp.ArraySpec(dtype=np.float32))
    with gp.build(pipeline):
        spec = pipeline.spec[DRAWN]
    assert spec.roi == gp.Roi((0, 0), (10, 10)) and spec.voxel_size == (1, 1) and spec.dtype == np.float32
    with pytest.raises(ArgumentError, match="inner_radius_fraction"):
        gp.RasterizationSettings(1, inner_radius_fraction=1.5)
    with pytest.raises(ArgumentError, match="mode"):
        gp.RasterizationSettings(1, mode="cube")
