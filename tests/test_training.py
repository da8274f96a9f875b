"""The training job: YAML checks, and `daskseg train` end to end (Dask workers make batches, JAX trains)."""

from __future__ import annotations

import os

import pytest
import yaml
from click.testing import CliRunner

from daskseg.cli import main
from daskseg.models.config import create_networks
from daskseg.synth import write_cremi_samples
from daskseg.training import TrainingConfigError, load_job, tutorial_augmentations


def write_yaml(path, doc) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    return str(path)


def test_load_job_resolves_paths_and_fills_tutorial_defaults(tmp_path):
    path = write_yaml(tmp_path / "train.yaml", {"samples": ["data/a.zarr"], "network": "nets/n.json",
                                                "augment": {"simple": None}})
    job = load_job(path)
    assert job.samples == [str(tmp_path / "data" / "a.zarr")]
    assert job.network == str(tmp_path / "nets" / "n.json")
    assert job.augment["simple"] is None  # left out on request
    assert job.augment["elastic"] == tutorial_augmentations()["elastic"]


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"samples": ["a.zarr"]}, "missing fields \\['network'\\]"),
        ({"samples": ["a.zarr"], "network": "n.json", "iteratons": 3}, "unknown fields \\['iteratons'\\]"),
        ({"samples": [], "network": "n.json"}, "at least one sample"),
        ({"samples": ["a.zarr"], "network": "n.json", "augment": {"elastik": {}}}, "unknown augmentations"),
    ],
)
def test_load_job_errors_name_the_problem(tmp_path, doc, message):
    with pytest.raises(TrainingConfigError, match=message):
        load_job(write_yaml(tmp_path / "t.yaml", doc))


@pytest.mark.slow
def test_daskseg_train_trains_checkpoints_and_resumes(tmp_path):
    write_cremi_samples(tmp_path / "data", (40, 160, 160), names=("A", "B"), extension=".zarr")
    create_networks(tmp_path / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84),
                    num_fmaps=4, fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)))
    config = write_yaml(tmp_path / "train.yaml", {
        "samples": ["data/sample_A.zarr", "data/sample_B.zarr"],
        "network": "nets/train_net_config.json",
        "iterations": 3, "save_every": 3, "snapshot_every": 2, "num_workers": 1, "cache_size": 2,
    })
    runner = CliRunner()
    first = runner.invoke(main, ["train", "--config", config])
    assert first.exit_code == 0, first.output
    assert "trained to iteration 3" in first.output
    assert os.path.exists(tmp_path / "checkpoints" / "train_net_checkpoint_3")
    assert sorted(os.listdir(tmp_path / "snapshots")) == ["batch_1.zarr", "batch_3.zarr"]

    second = runner.invoke(main, ["train", "--config", config, "--iterations", "5"])
    assert second.exit_code == 0, second.output
    assert "trained to iteration 5" in second.output
    with open(tmp_path / "checkpoints" / "train_net_log.csv") as f:
        iterations = [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
    assert iterations == [1, 2, 3, 4, 5]  # resumed at 4, nothing repeated or skipped


def test_train_reports_raw_and_labels_voxel_size_mismatch(tmp_path):
    import numpy as np

    from daskseg.io import write_array

    write_array(tmp_path / "s.zarr", "volumes/raw", np.zeros((4, 8, 8), np.uint8), (40, 4, 4))
    write_array(tmp_path / "s.zarr", "volumes/labels/neuron_ids", np.zeros((4, 16, 16), np.uint64), (40, 2, 2))
    create_networks(tmp_path / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84),
                    num_fmaps=4, fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)))
    config = write_yaml(tmp_path / "t.yaml", {"samples": ["s.zarr"], "network": "nets/train_net_config.json"})
    result = CliRunner().invoke(main, ["train", "--config", config, "--workers", "1"])
    assert result.exit_code == 1
    assert "raw has voxel size (40, 4, 4) but labels have (40, 2, 2)" in result.output
