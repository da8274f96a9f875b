"""daskseg predict with a real (tiny) U-Net: the same affinities as the tutorial's in-process
prediction pipeline (Normalize + gp.jax.Predict + ZarrWrite + Scan), for several block shapes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from dask_fixtures import local_client

import daskseg as gp
from daskseg.blockwise import predict
from daskseg.blockwise.network import NetworkProcessor, resolve_checkpoint_path
from daskseg.errors import GeometryError
from daskseg.io import open_dataset, write_array

pytestmark = pytest.mark.slow

VOXEL = gp.Coordinate((40, 4, 4))


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """A tiny U-Net (test_net: input (14, 28, 28) -> output (2, 12, 12)) and a checkpoint of random weights."""
    from daskseg.jax.checkpoint import save_checkpoint
    from daskseg.jax.model import FlaxUNetModel
    from daskseg.models import create_networks

    d = tmp_path_factory.mktemp("net")
    create_networks(d, train_input_shape=(14, 24, 24), predict_input_shape=(14, 28, 28), num_fmaps=2,
                    fmap_inc_factor=2, downsample_factors=[(1, 2, 2)])
    state = FlaxUNetModel(os.path.join(d, "train_net_config.json"), seed=3).initialize()
    save_checkpoint(os.path.join(d, "train_net"), 10, state)
    return os.path.join(d, "test_net_config.json"), os.path.join(d, "train_net")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    raw = np.random.default_rng(0).integers(0, 255, (28, 64, 70), dtype=np.uint8)
    write_array(d / "sample.zarr", "volumes/raw", raw, VOXEL, offset=(400, 40, 40), chunk_shape=(8, 32, 32))
    return d / "sample.zarr"


def tutorial_prediction(config_path: str, checkpoint: str, sample, out_dir) -> np.ndarray:
    """The tutorial's prediction section, with gp.jax.Predict and ZarrWrite."""
    with open(config_path) as f:
        net_config = json.load(f)
    raw = gp.ArrayKey("RAW")
    pred_affs = gp.ArrayKey("PRED_AFFS")
    input_size = gp.Coordinate(net_config["input_shape"]) * VOXEL
    output_size = gp.Coordinate(net_config["output_shape"]) * VOXEL
    context = input_size - output_size
    request = gp.BatchRequest()
    request.add(raw, input_size)
    request.add(pred_affs, output_size)
    source = gp.ZarrSource(str(sample), datasets={raw: "volumes/raw"})
    with gp.build(source):
        raw_roi = source.spec[raw].roi
    pipeline = (
        source
        + gp.Normalize(raw)
        + gp.jax.Predict(
            config_path,
            checkpoint=checkpoint,
            inputs={net_config["raw"]: raw},
            outputs={net_config["pred_affs"]: pred_affs},
            array_specs={pred_affs: gp.ArraySpec(roi=raw_roi.grow(-context, -context))},
        )
        + gp.ZarrWrite({pred_affs: "volumes/pred_affs"}, output_dir=str(out_dir), output_filename="tutorial.zarr")
        + gp.Scan(reference=request)
    )
    with gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest())
    return open_dataset(out_dir / "tutorial.zarr", "volumes/pred_affs")


def test_same_affinities_as_the_tutorial_pipeline(network, sample, tmp_path):
    config_path, checkpoint = network
    expected = tutorial_prediction(config_path, checkpoint, sample, tmp_path)
    with local_client(n_workers=2) as client:
        for i, block_shape in enumerate([(2, 12, 12), (4, 24, 12)]):
            result = predict(config_path, checkpoint, raw=f"{sample}/volumes/raw", out=f"{tmp_path}/p{i}.zarr/affs",
                             block_shape=block_shape, client=client)
            ours = open_dataset(tmp_path / f"p{i}.zarr", "affs")
            assert ours.roi == expected.roi == result.roi
            assert ours.channel_shape == (3,)
            np.testing.assert_array_equal(ours.read(), expected.read())
        # the command line, on the same cluster
        from click.testing import CliRunner

        from daskseg.cli.predict import predict as predict_command

        cli = CliRunner().invoke(predict_command, [
            "--network", config_path, "--checkpoint", checkpoint, "--raw", f"{sample}/volumes/raw",
            "--out", f"{tmp_path}/cli.zarr/volumes/pred_affs", "--scheduler", client.scheduler.address,
            "--block-shape", "2,24,24", "--no-progress",
            # the tutorial's ROI (the CLI's default is the largest ROI the network can fill)
            "--roi", ",".join(f"{b}:{e}" for b, e in zip(expected.roi.begin, expected.roi.end)),
        ])
        assert cli.exit_code == 0, cli.output
        np.testing.assert_array_equal(open_dataset(tmp_path / "cli.zarr", "volumes/pred_affs").read(), expected.read())
        # one compile per worker process: every worker built its network once
        loaded = client.run(lambda: __import__("daskseg.blockwise.processor", fromlist=["x"]).cached_setups())
        assert all(n == 1 for n in loaded.values())


def test_network_that_does_not_fit_the_data(network, tmp_path):
    config_path, checkpoint = network
    write_array(tmp_path / "small.zarr", "raw", np.zeros((10, 60, 60), np.uint8), VOXEL)
    with pytest.raises(GeometryError, match="does not fit the data"):
        predict(config_path, checkpoint, raw=f"{tmp_path}/small.zarr/raw", out=f"{tmp_path}/o.zarr/affs")


def test_processor_describes_the_network_without_jax(network):
    config_path, checkpoint = network
    proc = NetworkProcessor(config_path, checkpoint)
    assert proc.checkpoint == resolve_checkpoint_path(checkpoint) and proc.checkpoint.endswith("_checkpoint_10")
    assert tuple(proc.input_shape) == (14, 28, 28) and tuple(proc.output_shape_tile) == (2, 12, 12)
    assert tuple(proc.context_neg) == (6, 8, 8) and proc.output_channels == (3,)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        NetworkProcessor(config_path, checkpoint + "_nope")


def test_relative_network_and_checkpoint_paths_are_resolved_on_the_client(network, monkeypatch):
    """Workers run elsewhere: the processor they receive holds the config itself and an absolute checkpoint."""
    config, basename = network
    monkeypatch.chdir(os.path.dirname(config))
    processor = NetworkProcessor(os.path.basename(config), os.path.basename(basename))
    assert os.path.isabs(processor.checkpoint) and processor.checkpoint == resolve_checkpoint_path(basename)
    monkeypatch.chdir("/")
    assert processor.config_dict["input_shape"] == [14, 28, 28]  # read on the client, travels as a dict
