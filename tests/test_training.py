"""The training job: YAML checks, and `daskseg train` end to end (Dask workers make batches, JAX trains)."""

from __future__ import annotations

import os

import pytest
import yaml
from click.testing import CliRunner

from daskseg.cli import main
from daskseg.errors import TrainingConfigError
from daskseg.models.config import create_networks
from daskseg.synth import write_cremi_samples
from daskseg.training import load_job, tutorial_augmentations


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


# --- the whole YAML is checked up front (issue 11 item 11) ----------------------------------------
BASE = "samples: [a.zarr]\nnetwork: n.json\n"


@pytest.mark.parametrize(
    "text, fragments",
    [
        (BASE + "iterations: ten\n", ["iterations is 'ten' (a string), expected a whole number"]),
        (BASE + "iterations: 2.7\n", ["iterations is 2.7 (a float), expected a whole number"]),
        (BASE + "iterations: 0\n", ["iterations is 0, expected at least 1"]),
        (BASE + "save_every: -1\n", ["save_every is -1, expected at least 0"]),
        ("samples: [a.zarr\nnetwork: n.json\n", ["not valid YAML at line 2", "expected ',' or ']'"]),
        ("samples: data/sample_A.zarr\nnetwork: n.json\n",
         ["samples is 'data/sample_A.zarr' (a string), expected a list of strings", "e.g. samples: ["]),
        (BASE + "augment:\n  elastic: {sigma: 3}\n", ["augment.elastic: unknown keys ['sigma']", "prob_slip"]),
        (BASE + "augment:\n  elastic: {prob_slip: high}\n", ["augment.elastic.prob_slip is 'high' (a string)"]),
        (BASE + "augment:\n  intensity: [0.9, 1.1]\n", ["augment.intensity is [0.9, 1.1] (a list), expected a mapping"]),
        (BASE + "augment:\n  blur: {sigma: 1}\n", ["unknown augmentations ['blur']"]),
        (BASE + "augment: yes\n", ["augment is True, expected a mapping"]),
        (BASE + "neighborhood: [[-1, 0]]\n", ["neighborhood[0] is [-1, 0], expected 3 offsets"]),
        (BASE + "trust_pickle: maybe\n", ["trust_pickle is 'maybe' (a string), expected true or false"]),
        ("- samples\n- network\n", ["a training config is a mapping of fields"]),
        (BASE + "augment:\n  elastic: {rotation_interval: [0, 1, 2]}\n",
         ["augment.elastic: ElasticAugment: rotation_interval and scale_interval take two numbers each"]),
    ],
    ids=["iterations-word", "iterations-fraction", "iterations-zero", "save-every-negative", "unclosed-bracket",
         "samples-string", "augment-unknown-key", "augment-wrong-type", "augment-not-mapping", "augment-unknown-node",
         "augment-bool", "neighborhood", "bool", "list-document", "node-refuses"],
)
def test_the_training_yaml_is_checked_before_anything_runs(tmp_path, text, fragments):
    config = tmp_path / "train.yaml"
    config.write_text(text)
    result = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert "TrainingConfigError" in errors[0] and str(config) in errors[0], errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Dask" not in result.output  # refused before a cluster started


def test_augment_arguments_given_replace_the_tutorial_defaults_one_by_one(tmp_path):
    path = write_yaml(tmp_path / "t.yaml", {"samples": ["a.zarr"], "network": "n.json", "iterations": 5,
                                            "augment": {"elastic": {"prob_slip": 0.2, "jitter_sigma": [0, 1, 1]},
                                                        "intensity": {"scale_min": 1}}})
    job = load_job(path)
    expected = {**tutorial_augmentations()["elastic"], "prob_slip": 0.2, "jitter_sigma": [0.0, 1.0, 1.0]}
    assert job.augment["elastic"] == expected
    assert job.augment["intensity"]["scale_min"] == 1.0 and isinstance(job.augment["intensity"]["scale_min"], float)
    assert job.iterations == 5


@pytest.mark.slow
def test_daskseg_train_multitask_lsd_network_then_predict_affinities(tmp_path):
    from daskseg.io import open_dataset

    write_cremi_samples(tmp_path / "data", (40, 160, 160), names=("A", "B"), extension=".zarr")
    runner = CliRunner()
    created = runner.invoke(main, ["net", "create", str(tmp_path / "nets"), "--train-input", "28,84,84",
                                   "--predict-input", "28,84,84", "--num-fmaps", "4", "--fmap-inc-factor", "2",
                                   "--downsample", "1,2,2;1,2,2", "--lsds", "--lsd-sigma", "20"])
    assert created.exit_code == 0, created.output
    config = write_yaml(tmp_path / "train.yaml", {
        "samples": ["data/sample_A.zarr", "data/sample_B.zarr"],
        "network": "nets/train_net_config.json",
        "iterations": 2, "save_every": 2, "snapshot_every": 2, "num_workers": 1, "cache_size": 2,
    })
    trained = runner.invoke(main, ["train", "--config", config])
    assert trained.exit_code == 0, trained.output
    snapshot = tmp_path / "snapshots" / "batch_1.zarr"
    lsds = open_dataset(snapshot, "volumes/labels/lsds")
    pred_lsds = open_dataset(snapshot, "volumes/pred_lsds")
    assert lsds.channel_shape == pred_lsds.channel_shape == (10,)
    assert lsds.roi == pred_lsds.roi == open_dataset(snapshot, "volumes/labels/affs").roi

    out = tmp_path / "pred.zarr"
    predicted = runner.invoke(main, [
        "predict", "--network", str(tmp_path / "nets" / "test_net_config.json"),
        "--checkpoint", str(tmp_path / "checkpoints" / "train_net"), "--raw", f"{tmp_path}/data/sample_A.zarr/volumes/raw",
        "--out", f"{out}/volumes/pred_affs", "--roi", "400:1200,80:560,80:560", "--workers", "1", "--no-progress",
    ])
    assert predicted.exit_code == 0, predicted.output
    affs = open_dataset(out, "volumes/pred_affs")
    assert affs.channel_shape == (3,)
    assert affs.read().shape == (3, 20, 120, 120)
    assert 0 < affs.read().min() and affs.read().max() < 1


@pytest.mark.slow
def test_daskseg_train_resumes_from_a_pickled_checkpoint_only_with_trust_pickle(tmp_path):
    """gunpowder's JAX checkpoints are pickles, which run code when loaded: `daskseg train` refuses
    to resume from one in one line, and resumes with --trust-pickle, writing daskseg's own format on
    (issue 11 item 4)."""
    import pickle

    from daskseg.jax import checkpoint as ckpt
    from daskseg.jax.model import FlaxUNetModel

    write_cremi_samples(tmp_path / "data", (40, 200, 200), names=("A",), extension=".zarr")
    create_networks(tmp_path / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84),
                    num_fmaps=2, fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)))
    state = FlaxUNetModel(str(tmp_path / "nets" / "train_net_config.json"), seed=1).initialize()
    os.makedirs(tmp_path / "checkpoints")
    with open(ckpt.checkpoint_name(tmp_path / "checkpoints" / "train_net", 1), "wb") as f:
        pickle.dump(state, f)  # gunpowder's JAX format
    config = write_yaml(tmp_path / "train.yaml", {
        "samples": ["data/sample_A.zarr"], "network": "nets/train_net_config.json", "iterations": 2,
        "snapshot_every": 0, "num_workers": 1, "cache_size": 2,
    })
    refused = CliRunner().invoke(main, ["train", "--config", config])
    assert refused.exit_code == 1
    assert "CheckpointPickleError" in refused.output and "--trust-pickle" in refused.output
    assert not os.path.exists(ckpt.checkpoint_name(tmp_path / "checkpoints" / "train_net", 2))
    trusted = CliRunner().invoke(main, ["train", "--config", config, "--trust-pickle"])
    assert trusted.exit_code == 0, trusted.output
    assert "trained to iteration 2" in trusted.output
    assert ckpt.load_checkpoint(ckpt.checkpoint_name(tmp_path / "checkpoints" / "train_net", 2)).iteration == 2
    assert [row.split(",")[0] for row in (tmp_path / "checkpoints" / "train_net_log.csv").read_text().split()[1:]] \
        == ["2"]  # one step, from the pickled iteration 1
