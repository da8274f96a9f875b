"""CsvPointsSource: points from a CSV file, header skipped, scaled, by ROI."""

from __future__ import annotations

import pytest

import daskseg as gp
from daskseg.errors import DatasetError

POINTS = gp.GraphKey("CSV_POINTS")


def test_points_are_read_scaled_and_selected_by_roi(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("z,y,x,name\n1.5,2,3,a\n4,5,6.5,b\n0,0,0,c\n")
    source = gp.CsvPointsSource(path, POINTS, spatial_cols=[0, 1, 2], scale=2, id_col=3)
    with gp.build(source):
        # bounding box of the scaled points (0..8, 0..10, 0..13), whole units, end exclusive
        assert source.spec[POINTS].roi == gp.Roi((0, 0, 0), (9, 11, 14))
        graph = source.request_batch(gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((1, 1, 1), (8, 8, 8)))}))[POINTS]
    assert {n.id: tuple(n.location) for n in graph.nodes} == {"a": (3, 4, 6)}
    assert graph.num_edges() == 0


def test_rows_are_ids_and_columns_pick_the_axes(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("9 1 2\n9 3 4\n")
    spec = gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10)))
    source = gp.CsvPointsSource(path, POINTS, spatial_cols=[2, 1], points_spec=spec, delimiter=" ")
    with gp.build(source):
        graph = source.request_batch(gp.BatchRequest({}, {POINTS: gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10)))}))[POINTS]
    assert {n.id: tuple(n.location) for n in graph.nodes} == {0: (2, 1), 1: (4, 3)}


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="missing.csv"):
        with gp.build(gp.CsvPointsSource(tmp_path / "missing.csv", POINTS, [0])):
            pass
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3\n")
    with pytest.raises(DatasetError, match="spatial_cols"):
        with gp.build(gp.CsvPointsSource(bad, POINTS, [0, 1])):
            pass
