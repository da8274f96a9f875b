"""The OME-Zarr 0.5 layout of Zarr datasets: image groups with levels, labels, redirects, old files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from ome_checks import check_output, validate_ome

from daskseg.errors import DatasetError
from daskseg.geometry import Roi
from daskseg.io import (
    add_level,
    add_redirect,
    create_dataset,
    list_datasets,
    open_dataset,
    read_image,
    resolve_array,
    set_attrs,
    write_array,
)


def test_a_dataset_is_an_image_group_with_its_level_inside(tmp_path):
    path = tmp_path / "o.zarr"
    data = np.arange(3 * 4 * 5 * 6, dtype=np.float32).reshape(3, 4, 5, 6)
    write_array(path, "volumes/pred_affs", data, (40, 4, 4), offset=(400, 80, 80))
    check_output(path, "volumes/pred_affs", (40, 4, 4), (400, 80, 80), channels=1, shape=(4, 5, 6))
    meta = json.loads((path / "volumes/pred_affs/s0/zarr.json").read_text())
    assert meta["dimension_names"] == ["c^", "z", "y", "x"]
    assert meta["attributes"]["dimension_units"] == [None, "40 nm", "4 nm", "4 nm"]
    axes = json.loads((path / "volumes/pred_affs/zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]["axes"]
    assert axes == [{"name": "c^"}] + [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"]
    # the parent group describes nothing (no multiscales over siblings)
    assert "ome" not in json.loads((path / "volumes/zarr.json").read_text()).get("attributes", {})
    ds = open_dataset(path, "volumes/pred_affs")
    np.testing.assert_array_equal(ds.read(Roi((440, 84, 80), (40, 8, 8))), data[:, 1:2, 1:3, 0:2])
    # the level array opens too, with the same geometry
    level = open_dataset(path, "volumes/pred_affs/s0")
    assert level.roi == ds.roi and level.voxel_size == ds.voxel_size


def test_2d_data_without_channels(tmp_path):
    write_array(tmp_path / "o.zarr", "img", np.zeros((5, 6), np.uint16), (2, 3), offset=(4, 6))
    check_output(tmp_path / "o.zarr", "img", (2, 3), (4, 6), shape=(5, 6))


def test_a_label_under_an_image_is_listed_and_a_redirect_opens_it(tmp_path):
    path = tmp_path / "s.zarr"
    write_array(path, "volumes/raw", np.zeros((4, 5, 6), np.uint8), (40, 4, 4))
    ids = np.arange(4 * 5 * 6, dtype=np.uint64).reshape(4, 5, 6)
    write_array(path, "volumes/raw/labels/ids", ids, (40, 4, 4), label=True)
    add_redirect(path, "volumes/labels/ids", "volumes/raw/labels/ids")
    check_output(path, "volumes/raw/labels/ids", (40, 4, 4), (0, 0, 0), label=True)
    image = validate_ome(path, "volumes/raw")
    assert image.labels is not None and image.labels.label_paths == ["ids"]
    label_attrs = json.loads((path / "volumes/raw/labels/ids/zarr.json").read_text())["attributes"]["ome"]
    assert label_attrs["image-label"]["source"] == {"image": "../../"}
    np.testing.assert_array_equal(open_dataset(path, "volumes/labels/ids").read(), ids)
    assert resolve_array(path, "volumes/labels/ids") == "volumes/raw/labels/ids/s0"
    assert list_datasets(path) == ["volumes/raw", "volumes/raw/labels/ids"]
    assert list_datasets(path, redirects=True) == ["volumes/labels/ids", "volumes/raw", "volumes/raw/labels/ids"]
    # rewriting the label keeps it listed once
    write_array(path, "volumes/raw/labels/ids", ids, (40, 4, 4), label=True)
    assert validate_ome(path, "volumes/raw").labels.label_paths == ["ids"]


def test_a_standalone_label_image(tmp_path):
    create_dataset(tmp_path / "seg.zarr", "volumes/seg", Roi((8, 8, 8), (16, 16, 16)), (4, 4, 4), np.uint64,
                   label=True)
    check_output(tmp_path / "seg.zarr", "volumes/seg", (4, 4, 4), (8, 8, 8), label=True, shape=(4, 4, 4))
    assert "source" not in json.loads((tmp_path / "seg.zarr/volumes/seg/zarr.json").read_text())[
        "attributes"]["ome"]["image-label"]


def test_add_level_makes_a_valid_pyramid(tmp_path):
    path = tmp_path / "o.zarr"
    data = np.arange(2 * 4 * 8 * 8, dtype=np.float32).reshape(2, 4, 8, 8)
    write_array(path, "affs", data, (40, 4, 4), offset=(80, 16, 16))
    assert add_level(path, "affs", (80, 8, 8)) == "affs/s1"
    s1 = open_dataset(path, "affs/s1", mode="r+")
    assert s1.voxel_size == (80, 8, 8) and s1.roi == Roi((80, 16, 16), (160, 32, 32)) and s1.channel_shape == (2,)
    s1.write(s1.roi, data[:, ::2, ::2, ::2])
    check_output(path, "affs", (40, 4, 4), (80, 16, 16), channels=1)
    assert [lv.path for lv in read_image(path, "affs").levels] == ["s0", "s1"]
    # the group's name still opens level 0
    assert open_dataset(path, "affs").voxel_size == (40, 4, 4)
    # a level of the same voxel size replaces the old one
    add_level(path, "affs", (80, 8, 8))
    assert [lv.path for lv in read_image(path, "affs").levels] == ["s0", "s1"]
    with pytest.raises(DatasetError, match="not a multiple"):
        add_level(path, "affs", (60, 8, 8))
    with pytest.raises(DatasetError, match="not an OME-Zarr image"):
        add_level(path, "affs/s0", (80, 8, 8))


def test_old_layout_is_still_read_and_replaced_cleanly(tmp_path):
    """Files written before the image groups: a plain array with funlib attributes, and the OME
    ``multiscales`` on the parent group describing it."""
    path = tmp_path / "old.zarr"
    root = zarr.open_group(str(path), mode="w")
    volumes = root.create_group("volumes")
    arr = volumes.create_array("pred", shape=(2, 3, 4), dtype="float32")
    arr[...] = 1.0
    volumes.attrs.put({"ome": {"version": "0.5", "multiscales": [{
        "name": "pred", "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
        "datasets": [{"path": "pred", "coordinateTransformations": [
            {"type": "scale", "scale": [40.0, 4.0, 4.0]}, {"type": "translation", "translation": [40.0, 8.0, 8.0]}]}],
    }]}})
    ds = open_dataset(path, "volumes/pred")
    assert ds.array_name == "volumes/pred" and ds.voxel_size == (40, 4, 4) and ds.roi.offset == (40, 8, 8)
    assert read_image(path, "volumes") is None  # multiscales over siblings are no image group
    assert list_datasets(path) == ["volumes/pred"]
    set_attrs(path, "volumes/pred", {"note": 1})
    assert dict(zarr.open_array(str(path / "volumes/pred")).attrs)["note"] == 1
    # writing the new layout at the same name drops the parent's stale entry
    write_array(path, "volumes/pred", np.ones((2, 3, 4), np.float32), (40, 4, 4), offset=(40, 8, 8))
    assert "multiscales" not in dict(zarr.open_group(str(path / "volumes")).attrs)["ome"]
    check_output(path, "volumes/pred", (40, 4, 4), (40, 8, 8))


def test_set_attrs_on_an_image_writes_its_level_0(tmp_path):
    write_array(tmp_path / "o.zarr", "raw", np.zeros((2, 2), np.uint8), (1, 1))
    set_attrs(tmp_path / "o.zarr", "raw", {"value_range": [0.0, 1.0]})
    assert dict(zarr.open_array(str(tmp_path / "o.zarr/raw/s0")).attrs)["value_range"] == [0.0, 1.0]


def test_redirect_cycles_are_refused(tmp_path):
    add_redirect(tmp_path / "c.zarr", "a", "b")
    add_redirect(tmp_path / "c.zarr", "b", "a")
    with pytest.raises(DatasetError, match="cycle"):
        open_dataset(tmp_path / "c.zarr", "a")
