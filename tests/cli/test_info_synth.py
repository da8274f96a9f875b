"""`daskseg synth` writes readable samples; `daskseg info` describes them; bad paths give clear errors."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from daskseg.cli import main
from daskseg.io import open_dataset


def test_synth_then_info(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["synth", str(tmp_path), "--shape", "6,48,48", "--names", "A,B", "--format", "hdf"])
    assert result.exit_code == 0, result.output
    paths = result.output.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["sample_A.hdf", "sample_B.hdf"]
    a = open_dataset(paths[0], "volumes/raw").read()
    b = open_dataset(paths[1], "volumes/raw").read()
    assert a.shape == (6, 48, 48) and not np.array_equal(a, b)  # seeds differ per sample

    info = runner.invoke(main, ["info", f"{paths[0]}/volumes/labels/neuron_ids"])
    assert info.exit_code == 0, info.output
    assert "voxel size:  (40, 4, 4)" in info.output and "uint64" in info.output
    listing = runner.invoke(main, ["info", paths[0]])
    assert set(listing.output.split()) == {"volumes/raw", "volumes/labels/neuron_ids"}


def test_info_on_zarr_shows_images_levels_labels_and_redirects(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["synth", str(tmp_path), "--shape", "4,32,32", "--names", "A", "--preset", "easy"])
    assert result.exit_code == 0, result.output
    sample = f"{tmp_path}/sample_A.zarr"
    listing = runner.invoke(main, ["info", sample]).output.splitlines()
    assert listing == ["volumes/labels/neuron_ids -> volumes/raw/labels/neuron_ids", "volumes/raw",
                       "volumes/raw/labels/neuron_ids"]
    raw = runner.invoke(main, ["info", f"{sample}/volumes/raw"]).output
    assert f"array:       {sample}/volumes/raw/s0" in raw and "OME-Zarr:    image volumes/raw (1 level(s))" in raw
    assert "s0: voxel size (40, 4, 4), offset (0, 0, 0)" in raw and "label:     volumes/raw/labels/neuron_ids" in raw
    labels = runner.invoke(main, ["info", f"{sample}/volumes/labels/neuron_ids"]).output
    assert "image-label volumes/raw/labels/neuron_ids" in labels and "uint64" in labels


def test_synth_rejects_a_bad_shape(tmp_path):
    result = CliRunner().invoke(main, ["synth", str(tmp_path), "--shape", "6,48"])
    assert result.exit_code != 0
    assert "three values" in result.output


def test_info_names_the_missing_dataset(tmp_path):
    runner = CliRunner()
    runner.invoke(main, ["synth", str(tmp_path), "--shape", "4,32,32", "--names", "A"])
    result = runner.invoke(main, ["info", f"{tmp_path}/sample_A.zarr/volumes/nope"])
    assert result.exit_code != 0
    assert result.exit_code == 1
    assert "DatasetError" in result.output and "volumes/nope" in result.output and "volumes/raw" in result.output
    assert "Traceback" not in result.output


def _tree_bytes(path):
    """Every file under ``path`` (or the file itself) with its bytes, to show nothing was touched."""
    import os

    if os.path.isfile(path):
        return {"": open(path, "rb").read()}
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            out[os.path.relpath(full, path)] = open(full, "rb").read()
    return out


def test_synth_refuses_existing_zarr_samples_and_touches_nothing(tmp_path):
    """Issue 11 item 3: a second `daskseg synth` into the same directory silently replaced the samples."""
    runner = CliRunner()
    first = runner.invoke(main, ["synth", str(tmp_path), "--shape", "4,32,32", "--names", "B"])
    assert first.exit_code == 0, first.output
    before = _tree_bytes(tmp_path / "sample_B.zarr")
    again = runner.invoke(main, ["synth", str(tmp_path), "--shape", "4,32,32", "--names", "A,B", "--seed", "7"])
    assert again.exit_code == 1
    assert "sample_B.zarr already exists" in again.output and "--overwrite" in again.output
    assert "Traceback" not in again.output and len(again.output.strip().splitlines()) == 1
    assert _tree_bytes(tmp_path / "sample_B.zarr") == before
    assert not (tmp_path / "sample_A.zarr").exists()  # refused before anything was written

    replaced = runner.invoke(main, ["synth", str(tmp_path), "--shape", "4,32,32", "--names", "B", "--seed", "7",
                                    "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert open_dataset(tmp_path / "sample_B.zarr", "volumes/raw").read().shape == (4, 32, 32)
    assert _tree_bytes(tmp_path / "sample_B.zarr") != before


def test_synth_refuses_an_existing_hdf_with_other_datasets(tmp_path):
    import h5py

    path = tmp_path / "sample_A.hdf"
    with h5py.File(path, "w") as f:
        f["volumes/raw"] = np.full((2, 3, 3), 9, np.uint8)
        f["mine/annotations"] = np.arange(5)
    before = path.read_bytes()
    result = CliRunner().invoke(main, ["synth", str(tmp_path), "--shape", "4,32,32", "--names", "A", "--format", "hdf"])
    assert result.exit_code == 1 and "sample_A.hdf already exists" in result.output
    assert path.read_bytes() == before
    # with --overwrite the sample's datasets are replaced, other datasets stay
    result = CliRunner().invoke(main, ["synth", str(tmp_path), "--shape", "4,32,32", "--names", "A", "--format", "hdf",
                                       "--overwrite"])
    assert result.exit_code == 0, result.output
    assert open_dataset(path, "volumes/raw").read().shape == (4, 32, 32)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["mine/annotations"][:], np.arange(5))
