"""Hdf5Write: HDF5-specific attributes, compression, round trip and concurrent writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("HW_RAW")


@pytest.fixture
def source(tmp_path):
    raw = np.random.default_rng(2).integers(0, 255, size=(7, 30, 26), dtype=np.uint8)
    path = tmp_path / "in.zarr"
    write_array(path, "volumes/raw", raw, (40, 4, 4), offset=(80, 8, 12))
    return gp.ZarrSource(path, {RAW: "volumes/raw"}), raw


def test_gunpowder_attributes_compression_and_round_trip(tmp_path, source):
    src, raw = source
    pipeline = src + gp.Hdf5Write({RAW: "/volumes/raw"}, output_dir=tmp_path / "sub", compression_type="gzip")
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((80, 8, 12), (280, 120, 104)))
    with gp.build(pipeline):
        pipeline.request_batch(request)
    out = tmp_path / "sub" / "output.hdf"  # gunpowder's default name
    with h5py.File(out, "r") as f:
        ds = f["volumes/raw"]
        assert list(ds.attrs["resolution"]) == [40, 4, 4] and list(ds.attrs["offset"]) == [80, 8, 12]
        assert ds.compression == "gzip"
        np.testing.assert_array_equal(ds[:], raw)
    back = gp.Hdf5Source(out, {RAW: "volumes/raw"})
    with gp.build(back):
        assert back.spec[RAW].roi == gp.Roi((80, 8, 12), (280, 120, 104))


def test_uncompressed_by_default_and_integer_level_means_gzip(tmp_path, source):
    src, _ = source
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((80, 8, 12), (40, 4, 4)))
    for name, compression, expected in [("a.hdf", None, None), ("b.h5", 4, "gzip")]:
        pipeline = src + gp.Hdf5Write({RAW: "raw"}, output_dir=tmp_path, output_filename=name,
                                      compression_type=compression)
        with gp.build(pipeline):
            pipeline.request_batch(request)
        with h5py.File(tmp_path / name, "r") as f:
            assert f["raw"].compression == expected


def test_concurrent_scan_workers_write_the_same_file(tmp_path, source):
    src, raw = source
    reference = gp.BatchRequest()
    reference.add(RAW, (120, 32, 28))
    results = []
    for workers in (1, 4):
        out = tmp_path / f"w{workers}"
        pipeline = src + gp.Hdf5Write({RAW: "raw"}, output_dir=out) + gp.Scan(reference, num_workers=workers)
        with gp.build(pipeline):
            pipeline.request_batch(gp.BatchRequest())
        with h5py.File(out / "output.hdf", "r") as f:
            results.append(f["raw"][:])
    np.testing.assert_array_equal(results[0], raw)
    np.testing.assert_array_equal(results[1], raw)


def test_store_names_the_file(tmp_path):
    key = gp.ArrayKey("HW_STORE_RAW")
    src = tmp_path / "src.zarr"
    data = np.arange(16, dtype=np.uint8).reshape(4, 4)
    write_array(src, "raw", data, (1, 1))
    out = tmp_path / "written.hdf"
    pipeline = gp.ZarrSource(str(src), {key: "raw"}) + gp.Hdf5Write({key: "copy"}, store=str(out))
    with gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest({key: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 4)))}))
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["copy"][:], data)
