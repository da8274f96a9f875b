"""Bad command-line arguments and files given on the command line end in one `Error:` line naming the
option or file and what is expected (exit 2 for a bad option, 1 for a bad file), never a traceback,
and before anything starts."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from daskseg.cli import main
from daskseg.models.config import create_networks

NET = {"num_fmaps": 2, "fmap_inc_factor": 2, "downsample_factors": ((1, 2, 2),)}


def one_error_line(result, exit_code: int) -> str:
    """The single `Error:` line of a clean click failure (no exception escaped the command)."""
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("samples: [a.zarr]\nnetwork: n.json\n")
    return str(path)


@pytest.mark.parametrize("value", ["-5", "0", "2.7", "ten"])
def test_train_iterations_must_be_a_whole_number_of_at_least_one(config, value):
    error = one_error_line(CliRunner().invoke(main, ["train", "--config", config, "--iterations", value]), 2)
    assert "'--iterations'" in error and value in error, error


PREDICT = ["predict", "--raw", "in.zarr/volumes/raw", "--out", "out.zarr/volumes/pred", "--network", "n.json"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--retries", "-1"], ["'--retries'", "-1", ">=0"]),
        (["--retries", "two"], ["'--retries'", "two"]),
        (["--max-in-flight", "0"], ["'--max-in-flight'", "at least 1"]),
        (["--max-in-flight", "0x"], ["'--max-in-flight'", "0x"]),
        (["--max-in-flight", "-2"], ["'--max-in-flight'", "-2"]),
        (["--max-in-flight", "many"], ["'--max-in-flight'", "many"]),
        (["--block-timeout", "banana"], ["'--block-timeout'", "banana", "30 minutes"]),
        (["--block-timeout", "-5"], ["'--block-timeout'", "-5"]),
    ],
)
def test_predict_options_are_checked_before_anything_runs(tmp_path, args, fragments):
    (tmp_path / "n.json").write_text("{}")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(main, [*PREDICT, *args])
    finally:
        os.chdir(cwd)
    error = one_error_line(result, 2)
    for fragment in fragments:
        assert fragment in error, error
    assert not os.path.exists(tmp_path / "out.zarr")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--train-input", "abc"], ["'--train-input'", "abc", "z,y,x"]),
        (["--train-input", "20,40"], ["'--train-input'", "20,40"]),
        (["--predict-input", "20,40,-4"], ["'--predict-input'", "20,40,-4"]),
        (["--num-fmaps", "0"], ["'--num-fmaps'", ">=1"]),
        (["--fmap-inc-factor", "0"], ["'--fmap-inc-factor'", ">=1"]),
        (["--downsample", "1,2;x"], ["'--downsample'", "1,2;x"]),
    ],
)
def test_net_create_options(tmp_path, args, fragments):
    error = one_error_line(CliRunner().invoke(main, ["net", "create", str(tmp_path / "nets"), *args]), 2)
    for fragment in fragments:
        assert fragment in error, error
    assert not os.path.exists(tmp_path / "nets")


def test_net_create_shape_the_network_cannot_take_names_nearest(tmp_path):
    result = CliRunner().invoke(main, ["net", "create", str(tmp_path), "--train-input", "10,10,10"])
    assert "ShapeError" in one_error_line(result, 1)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('{"input_shape": [20, 40, 40], ', "not valid JSON"),
        ("[1, 2, 3]", "a JSON object"),
        ('{"name": "n", "input_shape": [20, 40, 40], "architecture": {"num_fmaps": 2, "colour": "red"}}', "colour"),
        ('{"name": "n", "input_shape": "big"}', "input_shape"),
        ('{"name": "n", "input_shape": [20, 40, 40], "architecture": {"num_fmaps": 0}}', "num_fmaps"),
        ('{"input_shape": [20, 40, 40]}', "'name'"),
    ],
    ids=["truncated", "list", "unknown-key", "bad-shape", "zero-fmaps", "no-name"],
)
@pytest.mark.parametrize("command", ["predict", "train"])
def test_a_malformed_network_config_is_one_line_naming_the_file(tmp_path, content, fragment, command):
    network = tmp_path / "bad_config.json"
    network.write_text(content)
    if command == "predict":
        import numpy as np

        from daskseg.io import write_array

        write_array(tmp_path / "in.zarr", "volumes/raw", np.zeros((4, 8, 8), np.uint8), (40, 4, 4))
        args = ["predict", "--network", str(network), "--checkpoint", str(tmp_path / "ck"),
                "--raw", str(tmp_path / "in.zarr/volumes/raw"), "--out", str(tmp_path / "out.zarr/volumes/p")]
    else:
        from daskseg.synth import write_sample

        write_sample(tmp_path / "s.zarr", "small", seed=0)
        (tmp_path / "t.yaml").write_text(f"samples: [s.zarr]\nnetwork: {network}\n")
        args = ["train", "--config", str(tmp_path / "t.yaml")]
    error = one_error_line(CliRunner().invoke(main, args), 1)
    assert "NetConfigError" in error and str(network) in error and fragment in error, error
    assert not os.path.exists(tmp_path / "out.zarr") and not os.path.exists(tmp_path / "checkpoints")


def test_a_valid_network_config_still_loads(tmp_path):
    train, _ = create_networks(tmp_path, train_input_shape=(13, 40, 40), predict_input_shape=(13, 40, 40), **NET)
    from daskseg.models.config import load_net_config

    assert load_net_config(tmp_path / "train_net_config.json").output_shape == train.output_shape
    with open(tmp_path / "train_net_config.json") as f:
        assert json.load(f)["format"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("step,value\n1,0.5\n", "lacks the columns"),
        ("iteration,loss\n1,0.5\n2,abc\n", "line 3"),
        ("", "has no rows"),
    ],
)
def test_plot_loss_on_a_csv_that_is_not_a_training_log(tmp_path, content, fragment):
    log = tmp_path / "log.csv"
    log.write_text(content)
    result = CliRunner().invoke(main, ["plot-loss", str(log), str(tmp_path / "loss.png")])
    error = one_error_line(result, 1)
    assert "LossLogError" in error and str(log) in error and fragment in error, error
    assert not os.path.exists(tmp_path / "loss.png")
