"""ZarrWrite: Zarr-specific metadata, compression, round trip and concurrent writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from ome_checks import check_output

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
    attrs = zarr.open_array(out / "volumes" / "raw" / "s0", mode="r").attrs
    assert list(attrs["voxel_size"]) == [40, 4, 4] and list(attrs["offset"]) == [80, 8, 12]
    group = json.loads((out / "volumes" / "raw" / "zarr.json").read_text())["attributes"]["ome"]
    transforms = group["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    assert transforms[0]["scale"] == [40.0, 4.0, 4.0] and transforms[1]["translation"] == [80.0, 8.0, 12.0]
    check_output(out, "volumes/raw", (40, 4, 4), (80, 8, 12), shape=(7, 30, 26))
    codecs = json.loads((out / "volumes" / "raw" / "s0" / "zarr.json").read_text())["codecs"]
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
        results.append(zarr.open_array(out / "output.zarr" / "raw" / "s0", mode="r")[:])
    np.testing.assert_array_equal(results[0], raw)
    np.testing.assert_array_equal(results[1], raw)


def test_store_names_the_container_as_gunpowder_does(tmp_path):
    key = gp.ArrayKey("ZW_STORE_RAW")
    src = tmp_path / "src.zarr"
    data = np.arange(16, dtype=np.uint8).reshape(4, 4)
    write_array(src, "raw", data, (2, 2))
    out = tmp_path / "sub" / "written.zarr"
    pipeline = gp.ZarrSource(store=str(src), datasets={key: "raw"}) + gp.ZarrWrite({key: "copy"}, store=out)
    with gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest({key: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))}))
    copy = gp.ZarrSource(filename=out, datasets={key: "copy"})
    with gp.build(copy):
        assert copy.spec[key].voxel_size == (2, 2)
        batch = copy.request_batch(gp.BatchRequest({key: gp.ArraySpec(roi=gp.Roi((0, 0), (8, 8)))}))
    np.testing.assert_array_equal(batch[key].data, data)
    with pytest.raises(ValueError, match="store must be a path"):
        gp.ZarrWrite({key: "copy"}, store={})
    with pytest.raises(AssertionError, match="exactly one"):
        gp.ZarrSource(store=str(src), filename=str(src), datasets={key: "raw"})


def test_labels_are_written_as_image_labels_and_affinities_with_a_channel_axis(tmp_path):
    """Integer arrays that are not interpolatable (ids) become OME-Zarr image-labels; arrays with a
    channel axis keep it as the ``c^`` axis neuroglancer shows as channels."""
    labels_key, affs_key = gp.ArrayKey("ZW_LABELS"), gp.ArrayKey("ZW_AFFS")
    ids = np.arange(4 * 6 * 6, dtype=np.uint64).reshape(4, 6, 6)
    affs = np.random.default_rng(2).random((3, 4, 6, 6)).astype(np.float32)
    write_array(tmp_path / "in.zarr", "ids", ids, (40, 4, 4), offset=(40, 8, 8))
    write_array(tmp_path / "in.zarr", "affs", affs, (40, 4, 4), offset=(40, 8, 8))
    pipeline = gp.ZarrSource(tmp_path / "in.zarr", {labels_key: "ids", affs_key: "affs"}) + gp.ZarrWrite(
        {labels_key: "volumes/labels", affs_key: "volumes/affs"}, output_dir=tmp_path
    )
    roi = gp.Roi((40, 8, 8), (160, 24, 24))
    with gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest({k: gp.ArraySpec(roi=roi) for k in (labels_key, affs_key)}))
    out = tmp_path / "output.zarr"
    check_output(out, "volumes/labels", (40, 4, 4), (40, 8, 8), label=True, shape=(4, 6, 6))
    check_output(out, "volumes/affs", (40, 4, 4), (40, 8, 8), channels=1, shape=(4, 6, 6))
