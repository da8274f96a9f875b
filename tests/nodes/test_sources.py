"""ZarrSource and Hdf5Source: exact reads, metadata conventions and readable errors."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import zarr

import daskseg as gp
from daskseg.errors import DatasetError, RequestError, SpecError
from daskseg.io import write_array

RAW, LABELS, AFFS = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS"), gp.ArrayKey("AFFINITIES")
VS = gp.Coordinate((40, 4, 4))
OFFSET = gp.Coordinate((400, 40, 40))


def source_for(path, datasets, **kwargs):
    cls = gp.ZarrSource if str(path).endswith(".zarr") else gp.Hdf5Source
    return cls(path, datasets, **kwargs)


def read(source, key, roi):
    with gp.build(source):
        return source.request_batch(gp.BatchRequest({key: gp.ArraySpec(roi=roi)}))[key]


def test_source_provides_roi_voxel_size_dtype(small_sample):
    path, raw, labels = small_sample
    source = source_for(path, {RAW: "volumes/raw", LABELS: "volumes/labels/neuron_ids"})
    with gp.build(source):
        spec = source.spec
    assert spec[RAW].roi == gp.Roi(OFFSET, gp.Coordinate(raw.shape) * VS)
    assert spec[RAW].voxel_size == VS and spec[LABELS].voxel_size == VS
    assert spec[RAW].dtype == np.uint8 and spec[LABELS].dtype == np.uint64
    assert spec[RAW].interpolatable is True and spec[LABELS].interpolatable is False


@pytest.mark.parametrize(
    "begin_vx, shape_vx",
    [((0, 0, 0), (10, 40, 40)), ((3, 7, 11), (2, 5, 9)), ((9, 39, 39), (1, 1, 1)), ((4, 0, 20), (6, 40, 1))],
)
def test_source_reads_exactly_the_requested_region(small_sample, begin_vx, shape_vx):
    path, raw, labels = small_sample
    source = source_for(path, {RAW: "volumes/raw", LABELS: "volumes/labels/neuron_ids"})
    roi = gp.Roi(OFFSET + gp.Coordinate(begin_vx) * VS, gp.Coordinate(shape_vx) * VS)
    with gp.build(source):
        batch = source.request_batch(
            gp.BatchRequest({RAW: gp.ArraySpec(roi=roi), LABELS: gp.ArraySpec(roi=roi)})
        )
    sl = tuple(slice(b, b + s) for b, s in zip(begin_vx, shape_vx))
    for key, data in ((RAW, raw), (LABELS, labels)):
        assert batch[key].spec.roi == roi
        assert batch[key].data.dtype == data.dtype
        np.testing.assert_array_equal(batch[key].data, data[sl])


def test_source_reads_channel_dims_whole(tmp_path):
    affs = np.random.default_rng(0).random((3, 4, 6, 6)).astype(np.float32)
    for path in (tmp_path / "c.zarr", tmp_path / "c.hdf"):
        write_array(path, "affs", affs, VS, offset=(0, 0, 0))
        roi = gp.Roi((40, 8, 4), (80, 12, 8))
        array = read(source_for(path, {AFFS: "affs"}), AFFS, roi)
        assert array.data.shape == (3, 2, 3, 2)
        np.testing.assert_array_equal(array.data, affs[:, 1:3, 2:5, 1:3])


def test_request_outside_the_dataset_is_a_request_error(small_sample):
    path, raw, _ = small_sample
    source = source_for(path, {RAW: "volumes/raw"})
    roi = gp.Roi(OFFSET - VS, VS * 3)
    with gp.build(source):
        with pytest.raises(RequestError, match="RAW") as e:
            source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))
    assert str(roi) in str(e.value)


# --- metadata conventions --------------------------------------------------------------------------


def _plain_zarr(path, name, data, attrs=None):
    group = zarr.open_group(path, mode="a")
    array = group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=(2, 4, 4))
    array[...] = data
    if attrs:
        array.attrs.update(attrs)
    return group


def _plain_hdf(path, name, data, attrs=None):
    with h5py.File(path, "a") as f:
        ds = f.create_dataset(name, data=data)
        ds.attrs.update(attrs or {})


DATA = (np.arange(4 * 8 * 8) % 256).astype(np.uint8).reshape(4, 8, 8)


@pytest.mark.parametrize("suffix", ["zarr", "hdf"])
def test_funlib_resolution_and_offset_attrs(tmp_path, suffix):
    path = tmp_path / f"funlib.{suffix}"
    writer = _plain_zarr if suffix == "zarr" else _plain_hdf
    writer(path, "volumes/raw", DATA, {"resolution": [40, 4, 4], "offset": [80, 16, 8]})
    source = source_for(path, {RAW: "volumes/raw"})
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((80, 16, 8), (160, 32, 32))
        assert source.spec[RAW].voxel_size == (40, 4, 4)
        batch = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((120, 24, 24), (80, 8, 12)))}))
    np.testing.assert_array_equal(batch[RAW].data, DATA[1:3, 2:4, 4:7])


def test_funlib_voxel_size_attr_and_missing_offset_means_origin(tmp_path):
    path = tmp_path / "vs.zarr"
    _plain_zarr(path, "raw", DATA, {"voxel_size": [8, 2, 2]})
    source = gp.ZarrSource(path, {RAW: "raw"})
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((0, 0, 0), (32, 16, 16))


@pytest.mark.parametrize("nested_in_ome", [True, False])  # OME-Zarr 0.5 ("ome" key) and 0.4 (top level)
def test_ome_zarr_multiscales_only(tmp_path, nested_in_ome):
    path = tmp_path / "ome.zarr"
    group = _plain_zarr(path, "s0", DATA)
    multiscales = [
        {
            "axes": [
                {"name": "z", "type": "space", "unit": "nanometer"},
                {"name": "y", "type": "space", "unit": "nanometer"},
                {"name": "x", "type": "space", "unit": "nanometer"},
            ],
            "datasets": [
                {
                    "path": "s0",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [40.0, 4.0, 4.0]},
                        {"type": "translation", "translation": [40.0, 8.0, 12.0]},
                    ],
                }
            ],
        }
    ]
    attrs = {"ome": {"version": "0.5", "multiscales": multiscales}} if nested_in_ome else {"multiscales": multiscales}
    group.attrs.update(attrs)
    source = gp.ZarrSource(path, {RAW: "s0"})
    with gp.build(source):
        assert source.spec[RAW].voxel_size == (40, 4, 4)
        assert source.spec[RAW].roi == gp.Roi((40, 8, 12), (160, 32, 32))
        batch = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((80, 8, 12), (40, 4, 8)))}))
    np.testing.assert_array_equal(batch[RAW].data, DATA[1:2, 0:1, 0:2])


@pytest.mark.parametrize("suffix", ["zarr", "hdf"])
def test_no_metadata_means_voxel_size_one_with_a_warning_unless_array_specs_give_it(tmp_path, suffix, caplog):
    path = tmp_path / f"bare.{suffix}"
    (_plain_zarr if suffix == "zarr" else _plain_hdf)(path, "volumes/raw", DATA)
    source = source_for(path, {RAW: "volumes/raw"})
    with caplog.at_level(logging.WARNING):
        with gp.build(source):  # as gunpowder: voxel size 1 per axis, and a warning naming the dataset
            assert source.spec[RAW].voxel_size == (1, 1, 1)
            assert source.spec[RAW].roi == gp.Roi((0, 0, 0), DATA.shape)
            batch = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((1, 2, 3), (1, 1, 1)))}))
    assert batch[RAW].data.item() == DATA[1, 2, 3]
    assert any("no voxel size" in r.getMessage() and "volumes/raw" in r.getMessage() for r in caplog.records)
    source = source_for(path, {RAW: "volumes/raw"}, array_specs={RAW: gp.ArraySpec(voxel_size=(40, 4, 4))})
    with gp.build(source):
        assert source.spec[RAW].roi == gp.Roi((0, 0, 0), (160, 32, 32))
        batch = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((40, 4, 4), (40, 4, 4)))}))
    assert batch[RAW].data.item() == DATA[1, 1, 1]


def test_array_specs_override_stored_metadata(small_sample):
    path, raw, _ = small_sample
    smaller = gp.Roi(OFFSET + VS * (2, 4, 4), VS * (4, 8, 8))
    source = source_for(path, {RAW: "volumes/raw"}, array_specs={RAW: gp.ArraySpec(roi=smaller, interpolatable=False)})
    with gp.build(source):
        assert source.spec[RAW].roi == smaller and source.spec[RAW].interpolatable is False
        with pytest.raises(RequestError, match="outside"):
            source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi(OFFSET, VS))}))
        batch = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=smaller)}))
    np.testing.assert_array_equal(batch[RAW].data, raw[2:6, 4:12, 4:12])


def test_array_specs_inconsistent_with_the_data_raise(small_sample):
    path, _, _ = small_sample
    with pytest.raises(SpecError, match="RAW.*float32.*uint8"):
        with gp.build(source_for(path, {RAW: "volumes/raw"}, array_specs={RAW: gp.ArraySpec(dtype=np.float32)})):
            pass
    outside = gp.Roi((0, 0, 0), VS * 4)
    with pytest.raises(SpecError, match="outside"):
        with gp.build(source_for(path, {RAW: "volumes/raw"}, array_specs={RAW: gp.ArraySpec(roi=outside)})):
            pass


# --- missing files and datasets ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["zarr", "hdf"])
def test_missing_file_error_names_the_path(tmp_path, suffix):
    path = tmp_path / f"missing.{suffix}"
    with pytest.raises(DatasetError) as e:
        with gp.build(source_for(path, {RAW: "volumes/raw"})):
            pass
    assert str(path) in str(e.value)


def test_missing_dataset_error_names_the_path_and_lists_datasets(small_sample):
    path, _, _ = small_sample
    with pytest.raises(DatasetError) as e:
        with gp.build(source_for(path, {RAW: "volumes/raws"})):
            pass
    message = str(e.value)
    assert str(path) in message and "volumes/raws" in message
    assert "volumes/raw" in message.replace("volumes/raws", "") and "volumes/labels/neuron_ids" in message


def test_channels_last_is_refused():
    with pytest.raises(SpecError, match="channels_first"):
        gp.ZarrSource("x.zarr", {RAW: "raw"}, channels_first=False)


def test_sources_close_their_files_on_teardown(tmp_path):
    path = tmp_path / "s.hdf"
    write_array(path, "raw", DATA, VS)
    source = gp.Hdf5Source(path, {RAW: "raw"})
    with gp.build(source):
        read_roi = gp.Roi((0, 0, 0), VS)
        source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=read_roi)}))
    # after teardown the file can be opened for writing again
    with h5py.File(path, "r+") as f:
        f["raw"][0, 0, 0] = 7
