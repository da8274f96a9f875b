"""`daskseg train` as real processes: one run per checkpoint basename, and a loss log that matches the
checkpoints after Ctrl-C (every iteration up to the last checkpoint logged once, none missing)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess

import pytest
import yaml

from daskseg.jax.checkpoint import latest_checkpoint
from daskseg.models.config import create_networks
from daskseg.synth import write_cremi_samples

from .helpers import DASKSEG, cli_env, poll, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NET = dict(num_fmaps=4, fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)))


def logged_iterations(path) -> list[int]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [int(row["iteration"]) for row in csv.DictReader(f) if row.get("iteration", "").isdigit()]


@pytest.fixture
def job(tmp_path):
    write_cremi_samples(tmp_path / "data", (40, 160, 160), names=("A",), extension=".zarr")
    create_networks(tmp_path / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84), **NET)
    doc = {
        "samples": ["data/sample_A.zarr"],
        "network": "nets/train_net_config.json",
        "iterations": 100000,
        "save_every": 3,
        "snapshot_every": 0,
        "profiling_every": 100000,
        "num_workers": 1,
        "cache_size": 2,
        "augment": {"elastic": None},
    }
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(doc))
    return {"config": str(config), "log": tmp_path / "checkpoints" / "train_net_log.csv",
            "basename": str(tmp_path / "checkpoints" / "train_net")}


def test_a_second_run_on_the_same_basename_is_refused_and_ctrl_c_keeps_log_and_checkpoints_in_step(job, tmp_path):
    # a terminal's Ctrl-C goes to the whole foreground process group: the CLI and its LocalCluster
    first = subprocess.Popen([DASKSEG, "train", "--config", job["config"]], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=cli_env(), start_new_session=True)
    try:
        poll(lambda: len(logged_iterations(job["log"])) >= 4 or first.poll() is not None, 600, "4 logged iterations")
        assert first.poll() is None, first.communicate()

        second = run_cli(["train", "--config", job["config"], "--iterations", "2"], timeout=300)
        assert second.returncode == 1, (second.stdout, second.stderr)
        assert "Traceback" not in second.stderr, second.stderr
        errors = [line for line in second.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, second.stderr
        assert "CheckpointLockedError" in errors[0] and job["basename"] in errors[0], errors[0]
        assert f"pid {first.pid}" in errors[0], errors[0]
        assert first.poll() is None  # the first run trains on

        os.killpg(first.pid, signal.SIGINT)
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    assert "interrupted" in err
    logged = logged_iterations(job["log"])
    last = latest_checkpoint(job["basename"]).iteration
    assert logged == list(range(1, last + 1)), (logged, last)  # nothing dropped or logged twice
    assert f"checkpoint {last}" in err or f"iteration {last}" in err, err

    resumed = run_cli(["train", "--config", job["config"], "--iterations", str(last + 2)], timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert logged_iterations(job["log"]) == list(range(1, last + 3))
