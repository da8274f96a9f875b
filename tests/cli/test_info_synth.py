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
