"""ZarrWrite: Zarr-specific metadata, compression, round trip and concurrent writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("ZW_RAW")


@pytest.fixture
def source(tmp_path):
    raw = np.random.default_rng(1).integers(0, 255, size=(7, 30, 26), dtype=np.uint8)
    path = tmp_path / "in.hdf"
    write_array(path, "volumes/raw", raw, (40, 4, 4), offset=(80, 8, 12))
    return gp.Hdf5Source(path, {RAW: "volumes/raw"}), raw


def test_metadata_lets_zarr_source_and_viewers_place_the_data(tmp_path, source):
    src, raw = source
    pipeline = src + gp.ZarrWrite({RAW: "/volumes/raw"}, output_dir=tmp_path, compression_type="gzip")
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((80, 8, 12), (280, 120, 104)))
    with gp.build(pipeline):
        pipeline.request_batch(request)
    out = tmp_path / "output.zarr"  # gunpowder's default name
    attrs = zarr.open_array(out / "volumes" / "raw", mode="r").attrs
    assert list(attrs["voxel_size"]) == [40, 4, 4] and list(attrs["offset"]) == [80, 8, 12]
    group = json.loads((out / "volumes" / "zarr.json").read_text())["attributes"]["ome"]
    transforms = group["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    assert transforms[0]["scale"] == [40.0, 4.0, 4.0] and transforms[1]["translation"] == [80.0, 8.0, 12.0]
    codecs = json.loads((out / "volumes" / "raw" / "zarr.json").read_text())["codecs"]
    assert any(c["name"] == "gzip" for c in codecs)
    back = gp.ZarrSource(out, {RAW: "volumes/raw"})
    with gp.build(back):
        assert back.spec[RAW].roi == gp.Roi((80, 8, 12), (280, 120, 104))
        np.testing.assert_array_equal(back.request_batch(request)[RAW].data, raw)


def test_concurrent_scan_workers_write_the_same_file(tmp_path, source):
    src, raw = source
    reference = gp.BatchRequest()
    reference.add(RAW, (120, 32, 28))  # 3 x 8 x 7 voxels: chunks overlap at the volume's far ends
    results = []
    for workers in (1, 4):
        out = tmp_path / f"w{workers}"
        pipeline = src + gp.ZarrWrite({RAW: "raw"}, output_dir=out) + gp.Scan(reference, num_workers=workers)
        with gp.build(pipeline):
            pipeline.request_batch(gp.BatchRequest())
        results.append(zarr.open_array(out / "output.zarr" / "raw", mode="r")[:])
    np.testing.assert_array_equal(results[0], raw)
    np.testing.assert_array_equal(results[1], raw)
