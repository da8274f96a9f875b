"""Snapshot: which batches are saved, where, with what placement; additional requests stay upstream."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import zarr
from ome_checks import check_output

import daskseg as gp
from daskseg.errors import DatasetError, SpecError
from daskseg.io import open_dataset

RAW = gp.ArrayKey("RAW")
LABELS = gp.ArrayKey("LABELS")


class Train(gp.BatchFilter):
    """Stand-in for a training node: sets iteration (1, 2, ...) and a loss on each batch."""

    def __init__(self):
        self.iteration = 0

    def process(self, batch, request):
        self.iteration += 1
        batch.iteration = self.iteration
        batch.loss = 0.5 / self.iteration


def _source(small_sample):
    path, _, _ = small_sample
    cls = gp.ZarrSource if str(path).endswith(".zarr") else gp.Hdf5Source
    return cls(path, {RAW: "volumes/raw", LABELS: "volumes/labels/neuron_ids"})


def _request(roi):
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=roi)
    return request


@pytest.mark.parametrize("extension", ["hdf", "zarr"])
def test_every_nth_batch_is_saved_in_place_with_the_additional_arrays(tmp_path, small_sample, extension):
    _, raw, labels = small_sample
    roi = gp.Roi((480, 60, 48), (120, 40, 44))
    additional = gp.BatchRequest()
    additional[LABELS] = gp.ArraySpec(roi=roi.grow((0, 8, 8), (0, 8, 8)))
    snapshot = gp.Snapshot(
        {RAW: "/volumes/raw", LABELS: "/volumes/labels/neuron_ids"},
        output_dir=tmp_path / "snapshots",
        output_filename="batch_{iteration}." + extension,
        every=2,
        additional_request=additional,
        compression_type="gzip",
    )
    pipeline = _source(small_sample) + snapshot
    with gp.build(pipeline):
        batches = [pipeline.request_batch(_request(roi)) for _ in range(5)]
    assert all(list(b) == [RAW] for b in batches)  # LABELS was asked upstream only for the snapshot
    saved = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert saved == sorted(f"batch_{i}.{extension}" for i in (1, 3, 5))  # batches seen, counted from 1
    path = tmp_path / "snapshots" / f"batch_3.{extension}"
    raw_ds = open_dataset(path, "volumes/raw")
    labels_ds = open_dataset(path, "volumes/labels/neuron_ids")
    assert raw_ds.roi == roi and raw_ds.voxel_size == gp.Coordinate((40, 4, 4))
    assert labels_ds.roi == roi.grow((0, 8, 8), (0, 8, 8))
    # the sample's offset is (400, 40, 40): roi begins at voxel (2, 5, 2)
    np.testing.assert_array_equal(raw_ds.read(), raw[2:5, 5:15, 2:13])
    np.testing.assert_array_equal(labels_ds.read(), labels[2:5, 3:17, 0:15])
    assert labels_ds.dtype == labels.dtype
    if extension == "zarr":  # one OME-Zarr image per array; the labels an image-label
        check_output(path, "volumes/raw", (40, 4, 4), roi.offset, shape=(3, 10, 11))
        check_output(path, "volumes/labels/neuron_ids", (40, 4, 4), labels_ds.roi.offset, label=True)


def test_file_names_ids_iterations_loss_and_value_range(tmp_path, small_sample):
    _, raw, _ = small_sample
    roi = gp.Roi((400, 40, 40), (80, 20, 20))
    pipeline = _source(small_sample) + Train() + gp.Snapshot(
        {RAW: "raw"},
        output_dir=tmp_path,
        output_filename="{id}_{iteration}.hdf",
        store_value_range=True,
        dataset_dtypes={RAW: np.float32},
    )
    with gp.build(pipeline):
        batches = [pipeline.request_batch(_request(roi)) for _ in range(2)]
    for i, batch in enumerate(batches, start=1):
        path = tmp_path / f"{batch.id:08d}_{i}.hdf"
        with h5py.File(path, "r") as f:
            assert f.attrs["iteration"] == i and f.attrs["loss"] == pytest.approx(0.5 / i)
            ds = f["raw"]
            assert ds.dtype == np.float32
            expected = raw[0:2, 0:5, 0:5]
            assert list(ds.attrs["value_range"]) == [expected.min(), expected.max()]
            assert ds.compression is None


def test_zarr_snapshot_default_name_and_viewer_metadata(tmp_path, small_sample):
    pipeline = _source(small_sample) + gp.Snapshot({RAW: "volumes/raw"}, output_dir=tmp_path)
    roi = gp.Roi((440, 48, 52), (40, 8, 12))
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(roi))
    path = tmp_path / f"{batch.id:08d}.zarr"
    group = zarr.open_group(path / "volumes" / "raw", mode="r")
    transforms = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    assert transforms[1]["translation"] == [440.0, 48.0, 52.0]
    check_output(path, "volumes/raw", (40, 4, 4), (440, 48, 52), shape=(1, 2, 3))


def test_additional_request_of_unknown_key_fails_at_build(tmp_path, small_sample):
    additional = gp.BatchRequest()
    additional[gp.ArrayKey("PRED_AFFS")] = gp.ArraySpec(roi=gp.Roi((400, 40, 40), (40, 4, 4)))
    pipeline = _source(small_sample) + gp.Snapshot({RAW: "raw"}, output_dir=tmp_path, additional_request=additional)
    with pytest.raises(SpecError, match="PRED_AFFS"):
        with gp.build(pipeline):
            pass


def test_bad_file_name_templates_fail_at_construction():
    with pytest.raises(SpecError, match="only use the fields"):
        gp.Snapshot({RAW: "raw"}, output_filename="{batch}.hdf")
    with pytest.raises(DatasetError, match="cannot tell the format"):
        gp.Snapshot({RAW: "raw"}, output_filename="{id}.tif")


@pytest.mark.parametrize("extension", [".zarr", ".hdf"])
def test_graphs_are_saved_as_ids_locations_and_edges(tmp_path, extension):
    points = gp.GraphKey("SNAPSHOT_POINTS")
    nodes = [gp.Node(4, np.array([1.0, 2.0])), gp.Node(7, np.array([3.5, 4.0]))]
    graph = gp.Graph(nodes, [gp.Edge(4, 7)], gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10))))
    pipeline = gp.GPGraphSource(points, graph) + gp.Snapshot(
        {points: "graphs/points"}, output_dir=tmp_path, output_filename="{id}" + extension
    )
    request = gp.BatchRequest({}, {points: gp.GraphSpec(roi=gp.Roi((0, 0), (10, 10)))})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    path = tmp_path / (str(batch.id).zfill(8) + extension)
    if extension == ".zarr":
        root = zarr.open_group(str(path), mode="r")
        read = {k: np.asarray(root[f"graphs/points-{k}"][...]) for k in ("ids", "locations", "edges")}
        attrs = dict(root["graphs/points-locations"].attrs)
    else:
        with h5py.File(path, "r") as f:
            read = {k: f[f"graphs/points-{k}"][...] for k in ("ids", "locations", "edges")}
            attrs = dict(f["graphs/points-locations"].attrs)
    assert list(read["ids"]) == [4, 7]
    assert np.array_equal(read["locations"], [[1, 2], [3.5, 4]])
    assert np.array_equal(read["edges"], [[4, 7]])
    assert list(attrs["roi_offset"]) == [0, 0] and list(attrs["roi_shape"]) == [10, 10]
