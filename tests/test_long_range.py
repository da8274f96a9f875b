"""Long-range affinities end to end: `daskseg net create --neighborhood long-range` records the
neighbourhood and sizes the head; training computes those affinities; `daskseg predict` records
them on its output, where `daskseg segment --method mws` reads them."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from click.testing import CliRunner

from daskseg.cli import main
from daskseg.errors import NetConfigError, TrainingConfigError
from daskseg.models.config import NEIGHBORHOODS, NetConfig, create_networks, load_net_config
from daskseg.synth import write_cremi_samples
from daskseg.training import TrainingJob, check_job, load_job, training_neighborhood

LONG = [list(o) for o in NEIGHBORHOODS["long-range"]]
SMALL = {"num_fmaps": 2, "fmap_inc_factor": 2, "downsample_factors": [(1, 2, 2)]}


def test_net_create_long_range_sizes_the_head_and_records_the_neighbourhood(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["net", "create", str(tmp_path / "a"), "--train-input", "14,24,24",
                                  "--predict-input", "14,28,28", "--num-fmaps", "2", "--downsample", "1,2,2",
                                  "--neighborhood", "long-range"])
    assert result.exit_code == 0, result.output
    assert "8 affinity channels" in result.output
    for name in ("train_net", "test_net"):
        with open(tmp_path / "a" / f"{name}_config.json") as f:
            doc = json.load(f)
        assert doc["affinity_neighborhood"] == LONG and doc["architecture"]["out_channels"] == 8
        assert load_net_config(tmp_path / "a" / f"{name}_config.json").neighborhood == NEIGHBORHOODS["long-range"]
    offsets = "[[-1,0,0],[0,-1,0],[0,0,-1],[0,0,-5]]"
    result = runner.invoke(main, ["net", "create", str(tmp_path / "b"), "--affinity-neighborhood", offsets])
    assert result.exit_code == 0 and "4 affinity channels" in result.output, result.output
    assert load_net_config(tmp_path / "b" / "train_net").affinity_neighborhood[-1] == (0, 0, -5)
    # the default writes the config as before: nearest neighbours, no new key
    result = runner.invoke(main, ["net", "create", str(tmp_path / "c")])
    with open(tmp_path / "c" / "train_net_config.json") as f:
        assert "affinity_neighborhood" not in json.load(f)
    assert load_net_config(tmp_path / "c" / "train_net").neighborhood == NEIGHBORHOODS["nearest"]


@pytest.mark.parametrize("args, message", [
    (["--affinity-neighborhood", "[[-1,0,0],[0,0]]"], "a JSON list of z,y,x offsets"),
    (["--affinity-neighborhood", "[[0,0,0]]"], "a JSON list of z,y,x offsets"),
    (["--neighborhood", "long-range", "--affinity-neighborhood", "[[-1,0,0]]"], "give one of"),
    (["--neighborhood", "far"], "'far' is not one of"),
])
def test_net_create_refuses_bad_neighbourhoods(tmp_path, args, message):
    result = CliRunner().invoke(main, ["net", "create", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not os.path.exists(tmp_path / "train_net_config.json")


def test_a_config_whose_head_does_not_fit_its_neighbourhood_is_refused(tmp_path):
    train, _ = create_networks(tmp_path, (14, 24, 24), (14, 28, 28), affinity_neighborhood="long-range", **SMALL)
    doc = train.to_dict()
    doc["architecture"]["out_channels"] = 3
    with pytest.raises(NetConfigError, match="an affinity_neighborhood of 8 offsets needs out_channels 8"):
        NetConfig.from_dict(doc)
    with open(tmp_path / "bad.json", "w") as f:
        json.dump({**train.to_dict(), "affinity_neighborhood": [[-1, 0]] * 8}, f)
    with pytest.raises(NetConfigError, match=r"bad.json: affinity_neighborhood\[0\] is \[-1, 0\]"):
        NetConfig.load(tmp_path / "bad.json")
    with pytest.raises(NetConfigError, match="unknown neighbourhood 'far'"):
        create_networks(tmp_path, affinity_neighborhood="far")


def test_training_takes_the_network_neighbourhood_and_refuses_another(tmp_path):
    samples = write_cremi_samples(tmp_path / "data", (20, 64, 64), names=("A",), extension=".zarr")
    create_networks(tmp_path / "long", (14, 24, 24), (14, 28, 28), affinity_neighborhood="long-range", **SMALL)
    create_networks(tmp_path / "near", (14, 24, 24), (14, 28, 28), **SMALL)
    long_net, near_net = (str(tmp_path / d / "train_net_config.json") for d in ("long", "near"))
    job = TrainingJob(samples=samples, network=long_net)
    assert training_neighborhood(job, load_net_config(long_net)) == LONG
    with pytest.raises(TrainingConfigError, match="differs from the network config's affinity_neighborhood"):
        check_job(TrainingJob(samples=samples, network=long_net, neighborhood=LONG[:3]))
    with pytest.raises(TrainingConfigError, match="has 8 offsets but the network .* has 3 output channels"):
        check_job(TrainingJob(samples=samples, network=near_net, neighborhood=LONG))
    # a YAML neighbourhood that matches the network is accepted (gunpowder tutorials give it there)
    path = tmp_path / "train.yaml"
    with open(path, "w") as f:
        yaml.safe_dump({"samples": samples, "network": near_net, "neighborhood": LONG[:3]}, f)
    assert training_neighborhood(load_job(path), load_net_config(near_net)) == LONG[:3]


@pytest.mark.slow
def test_train_predict_and_mws_segment_a_long_range_network(tmp_path):
    """2 iterations of a tiny long-range U-Net (and one more, stopped by max_seconds): 8-channel
    targets and predictions, the neighbourhood on the prediction's attributes, and `daskseg
    segment --method mws` using it."""
    from dask_fixtures import local_client

    from daskseg.blockwise import predict, segment
    from daskseg.geometry import Roi
    from daskseg.io import open_dataset
    from daskseg.training import run_training

    samples = write_cremi_samples(tmp_path / "data", (20, 80, 80), names=("A",), extension=".zarr")
    train_net, test_net = create_networks(tmp_path / "nets", (14, 48, 48), (14, 48, 48),
                                          affinity_neighborhood="long-range", **SMALL)
    job = TrainingJob(samples=samples, network=str(tmp_path / "nets" / "train_net_config.json"), iterations=2,
                      checkpoint_basename=str(tmp_path / "ckpt" / "train_net"), save_every=2, snapshot_every=2,
                      snapshot_dir=str(tmp_path / "snapshots"), num_workers=1, cache_size=2, augment={})
    with local_client(1, processes=False) as client:
        iteration, _ = run_training(job, client=client)
        assert iteration == 2
        # max_seconds (the benchmark's equal training time) stops after the first step past it
        job.iterations = 100
        assert run_training(job, client=client, max_seconds=0)[0] == 3
        gt_affs = open_dataset(tmp_path / "snapshots" / "batch_1.zarr", "volumes/labels/affs")
        assert gt_affs.shape[0] == 8 and gt_affs.shape[1:] == tuple(train_net.output_shape)
        result = predict(str(tmp_path / "nets" / "test_net_config.json"), str(tmp_path / "ckpt" / "train_net"),
                         raw=f"{samples[0]}/volumes/raw", out=str(tmp_path / "pred.zarr" / "affs"), client=client,
                         roi=Roi((240, 32, 32), (320, 256, 256)),
                         progress=False)
        pred = open_dataset(tmp_path / "pred.zarr", "affs")
        assert pred.shape[0] == 8
        assert pred.attrs["daskseg"]["affinity_neighborhood"] == LONG
        seg = segment(result.output, str(tmp_path / "seg.zarr" / "seg"), [0.5], method="mws", client=client,
                      progress=False)
    fragments = open_dataset(tmp_path / "seg.zarr", "fragments")
    assert fragments.read().max() > 0 and seg.outputs[0.5].endswith("seg")
