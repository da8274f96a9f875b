"""`daskseg view`: each layer with the right type, voxel size and offset, served by a real neuroglancer
server on 127.0.0.1 (its state and the volume info it answers, not a browser), napari's layer
arguments, and the command running until Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import urllib.request
import zlib

import numpy as np
import pytest
from dask_fixtures import free_port

from daskseg.errors import DatasetError, ViewerError
from daskseg.io import read_image, set_attrs, write_array
from daskseg.view import layer_specs
from daskseg.view.napari_viewer import napari_layer, open_napari

neuroglancer = pytest.importorskip("neuroglancer")

VS = (40, 4, 4)


@pytest.fixture
def outputs(tmp_path):
    """Raw (HDF5, as CREMI's), affinities and a segmentation at an offset, ground truth at another
    voxel size."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (6, 20, 24), dtype=np.uint8)
    affs = rng.random((3, 4, 10, 12)).astype(np.float32)
    seg = rng.integers(1, 5, (4, 10, 12)).astype(np.uint64)
    gt = rng.integers(0, 3, (3, 5, 6)).astype(np.uint32)
    write_array(tmp_path / "sample.hdf", "volumes/raw", raw, VS, offset=(0, 0, 0))
    write_array(tmp_path / "pred.zarr", "volumes/pred_affs", affs, VS, offset=(80, 16, 24))
    write_array(tmp_path / "seg.zarr", "volumes/segmentation", seg, VS, offset=(80, 16, 24))
    write_array(tmp_path / "gt.zarr", "volumes/labels/neuron_ids", gt, (80, 16, 16), offset=(0, 0, 0))
    paths = [
        f"{tmp_path}/sample.hdf/volumes/raw",
        f"{tmp_path}/pred.zarr/volumes/pred_affs",
        f"{tmp_path}/seg.zarr/volumes/segmentation",
        f"{tmp_path}/gt.zarr/volumes/labels/neuron_ids",
    ]
    return paths, {"raw": raw, "pred_affs": affs, "segmentation": seg, "neuron_ids": gt}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


@pytest.fixture
def served(outputs):
    from daskseg.view.ng import open_viewer

    paths, arrays = outputs
    viewer = open_viewer(layer_specs(paths))
    yield viewer, arrays
    neuroglancer.stop()


def test_layer_kinds_follow_metadata_and_dtype(tmp_path, outputs):
    paths, _ = outputs
    write_array(tmp_path / "x.zarr", "u16", np.zeros((2, 3, 4), np.uint16), VS)
    write_array(tmp_path / "x.zarr", "marked", np.zeros((2, 3, 4), np.uint8), VS)
    set_attrs(tmp_path / "x.zarr", "marked", {"image-label": {"version": "0.5"}})
    specs = layer_specs([*paths, f"{tmp_path}/x.zarr/u16", f"{tmp_path}/x.zarr/marked"])
    kinds = {s.name: s.kind for s in specs}
    assert kinds == {
        "raw": "intensities",
        "pred_affs": "channels",
        "segmentation": "labels",
        "neuron_ids": "labels",
        "u16": "intensities",
        "marked": "labels",
    }
    # a kind given for a path wins over the one found
    (spec,) = layer_specs([f"{tmp_path}/x.zarr/u16"], kinds={f"{tmp_path}/x.zarr/u16": "labels"})
    assert spec.kind == "labels"
    # a container stands for all its datasets
    assert [s.name for s in layer_specs([f"{tmp_path}/x.zarr"])] == ["marked", "u16"]


def test_served_state_has_each_layer_with_its_type_voxel_size_and_offset(served):
    viewer, arrays = served
    state = viewer.state.to_json()
    assert state["dimensions"] == {"z": [4e-08, "m"], "y": [4e-09, "m"], "x": [4e-09, "m"]}
    assert state["displayDimensions"] == ["x", "y", "z"]  # the xy panel shows an EM section
    layers = {layer["name"]: layer for layer in state["layers"]}
    assert {n: layer["type"] for n, layer in layers.items()} == {
        "raw": "image",
        "pred_affs": "image",
        "segmentation": "segmentation",
        "neuron_ids": "segmentation",
    }
    assert "emitRGB" in layers["pred_affs"]["shader"] and "range=[0, 1]" in layers["pred_affs"]["shader"]
    assert "emitGrayscale" in layers["raw"]["shader"] and "range=[0, 255]" in layers["raw"]["shader"]
    # the centre of the union of the layers' ROIs ((0, 0, 0) to (240, 80, 96)), in display voxels
    assert state["position"] == [3.0, 10.0, 12.0]
    base = str(viewer).split("/v/")[0]
    expected = {  # name: (coordinate space, voxel offset, volume type)
        "raw": ({"z": [4e-08, "m"], "y": [4e-09, "m"], "x": [4e-09, "m"]}, [0, 0, 0], "image"),
        "pred_affs": (
            {"c^": [1.0, ""], "z": [4e-08, "m"], "y": [4e-09, "m"], "x": [4e-09, "m"]},
            [0, 2, 4, 6],
            "image",
        ),
        "segmentation": ({"z": [4e-08, "m"], "y": [4e-09, "m"], "x": [4e-09, "m"]}, [2, 4, 6], "segmentation"),
        "neuron_ids": ({"z": [8e-08, "m"], "y": [1.6e-08, "m"], "x": [1.6e-08, "m"]}, [0, 0, 0], "segmentation"),
    }
    for name, (space, offset, volume_type) in expected.items():
        (source,) = layers[name]["source"]
        key = source["url"].removeprefix("python://volume/")
        info = json.loads(fetch(f"{base}/neuroglancer/info/{key}"))
        assert info["coordinateSpace"] == space, name
        assert [int(v) for v in info["voxelOffset"]] == offset, name
        assert info["volumeType"] == volume_type, name
        # the data served at full resolution is the dataset's
        shape = info["shape"]
        rank = len(shape)
        url = (
            f"{base}/neuroglancer/npz/{key}/{','.join(['1'] * rank)}/{','.join(['0'] * rank)}/"
            f"{','.join(str(s) for s in shape)}"
        )
        served_data = np.load(io.BytesIO(zlib.decompress(fetch(url))))
        np.testing.assert_array_equal(served_data, arrays[name])


def test_napari_layers_place_voxels_where_daskseg_says(outputs):
    paths, _ = outputs
    args = {s.name: napari_layer(s) for s in layer_specs(paths)}
    method, raw = args["raw"]
    assert method == "add_image" and raw["scale"] == [40, 4, 4] and raw["translate"] == [20, 2, 2]
    assert raw["contrast_limits"] == [0, 255]
    method, affs = args["pred_affs"]
    assert method == "add_image" and affs["channel_axis"] == 0 and affs["translate"] == [100, 18, 26]
    assert affs["name"] == ["pred_affs[0]", "pred_affs[1]", "pred_affs[2]"]
    method, seg = args["segmentation"]
    assert method == "add_labels" and seg["scale"] == [40, 4, 4] and seg["translate"] == [100, 18, 26]
    method, gt = args["neuron_ids"]
    assert method == "add_labels" and gt["scale"] == [80, 16, 16] and gt["translate"] == [40, 8, 8]


def test_napari_missing_is_one_clear_error(outputs):
    try:
        import napari  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("napari is installed here")
    with pytest.raises(ViewerError, match=r"napari is not installed: pip install 'napari\[all\]'"):
        open_napari(layer_specs(outputs[0][:1]), run=False)


def test_the_napari_flag_without_napari_is_one_line(outputs):
    from click.testing import CliRunner

    from daskseg.cli import main

    try:
        import napari  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("napari is installed here")
    result = CliRunner().invoke(main, ["view", outputs[0][0], "--napari"])
    assert result.exit_code == 1
    assert "Error: ViewerError: napari is not installed" in result.output and "Traceback" not in result.output


def test_bad_paths_are_named(tmp_path, outputs):
    with pytest.raises(DatasetError, match="no array 'volumes/missing'"):
        layer_specs([f"{tmp_path}/pred.zarr/volumes/missing"])
    with pytest.raises(ViewerError, match="nothing to show at .*none.zarr.*does not exist"):
        layer_specs([f"{tmp_path}/none.zarr"])
    write_array(tmp_path / "x.zarr", "two_d", np.zeros((3, 4), np.uint8), (4, 4))
    with pytest.raises(ViewerError, match="2 spatial dimensions"):
        layer_specs([outputs[0][0], f"{tmp_path}/x.zarr/two_d"])
    with pytest.raises(ViewerError, match="nothing to show"):
        layer_specs([])


@pytest.mark.slow
def test_the_command_prints_the_url_serves_it_and_stops_on_ctrl_c(outputs):
    bind = "127.0.0.2"  # not the default: --bind takes effect (any 127.x address is loopback on Linux)
    paths, _ = outputs
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from daskseg.cli import main; main()",
            "view",
            *paths[1:3],
            "--port",
            str(port),
            "--bind",
            bind,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith(f"http://{bind}:{port}/v/"), (url, process.stderr.read() if process.poll() else "")
        assert b"neuroglancer" in fetch(url).lower()
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "pred_affs: channels, voxel size (40, 4, 4), offset (80, 16, 24)" in err
    assert "segmentation: labels" in err and "stopped" in err


def test_zoomed_out_views_are_served_from_the_pyramid_levels(tmp_path):
    from daskseg.blockwise.pyramid import plan_pyramid
    from daskseg.io import open_dataset
    from daskseg.pyramid import downsample_mean, downsample_mode
    from daskseg.view.ng import open_viewer

    raw = np.zeros((4, 16, 16), np.uint8)
    raw[:, 1::2, :] = 1
    raw[:, :, 1::2] = 1  # groups of 2x2: 0 1 1 1 -> mean 0.75: rounded 1 by the level, 0 by truncation
    labels = np.full((4, 16, 16), 5, np.uint64)
    labels[:, ::2, ::2] = 7  # the voxel striding keeps is the minority: the mode is 5
    affs = np.random.default_rng(1).random((3, 4, 16, 16)).astype(np.float32)
    write_array(tmp_path / "a.zarr", "raw", raw, VS, chunk_shape=(2, 4, 4))
    write_array(tmp_path / "a.zarr", "ids", labels, VS, chunk_shape=(2, 4, 4), label=True)
    write_array(tmp_path / "a.zarr", "affs", affs, VS, offset=(0, 4, 4), chunk_shape=(2, 4, 4))
    for name, max_levels in (("raw", 1), ("ids", None), ("affs", 1)):
        tasks, _ = plan_pyramid(f"{tmp_path}/a.zarr/{name}", max_levels=max_levels)
        for task in tasks:  # the levels, written in this process
            for block in task.grid:
                task.function(block, *task.args)
    s1 = {name: open_dataset(tmp_path / "a.zarr", f"{name}/s1").read() for name in ("raw", "ids")}
    assert s1["raw"].min() == 1 and (s1["ids"] == 5).all()
    viewer = open_viewer(layer_specs([f"{tmp_path}/a.zarr/{n}" for n in ("raw", "ids", "affs")]))
    try:
        base = str(viewer).split("/v/")[0]
        keys = {
            layer["name"]: layer["source"][0]["url"].removeprefix("python://volume/")
            for layer in viewer.state.to_json()["layers"]
        }

        def served(name, factor):
            info = json.loads(fetch(f"{base}/neuroglancer/info/{keys[name]}"))
            shape = [-(-n // f) for n, f in zip(info["shape"], factor)]
            url = (
                f"{base}/neuroglancer/npz/{keys[name]}/{','.join(map(str, factor))}/"
                f"{','.join(['0'] * len(shape))}/{','.join(map(str, shape))}"
            )
            return info, np.load(io.BytesIO(zlib.decompress(fetch(url))))

        # factor 1,2,2 is level s1 itself: means rounded, labels by their mode
        np.testing.assert_array_equal(served("raw", (1, 2, 2))[1], s1["raw"])
        np.testing.assert_array_equal(served("ids", (1, 2, 2))[1], s1["ids"])
        # 1,4,4 of raw: s1 (its only level) halved again, by the mean
        np.testing.assert_array_equal(served("raw", (1, 4, 4))[1], downsample_mean(s1["raw"], (1, 2, 2)))
        # every level of ids: neuroglancer may zoom out 8 times further than the coarsest
        ids_levels = read_image(tmp_path / "a.zarr", "ids").levels
        coarsest = np.prod(np.array(ids_levels[-1].voxel_size) // np.array(VS))
        info, two = served("ids", (2, 16, 16))
        assert info["maxDownsampling"] == coarsest * 8
        np.testing.assert_array_equal(two, downsample_mode(labels, (2, 16, 16)))
        # affs at offset (0, 4, 4): s1 lies on the world grid of 8 nm, not on level 0's voxels, so
        # level 0 is downsampled on the fly as neuroglancer does it
        _, affs_down = served("affs", (1, 1, 2, 2))
        np.testing.assert_array_equal(affs_down, neuroglancer.downsample.downsample_with_averaging(affs, (1, 1, 2, 2)))
    finally:
        neuroglancer.stop()
