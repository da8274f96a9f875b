"""Samples too small for one training batch with the augmentations are refused at setup, naming the
sample and the cause (issue 11 item 12)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from daskseg.array import ArraySpec
from daskseg.errors import RequestError, SampleTooSmallError
from daskseg.geometry import Coordinate
from daskseg.io import write_array
from daskseg.models.config import create_networks
from daskseg.nodes import Normalize, RandomLocation, ZarrSource
from daskseg.pipeline import build
from daskseg.training import check_job, check_sample_sizes, load_job, target_nodes, training_request
from daskseg.training_needs import batch_needs, worst_angles

VS = (40, 4, 4)
ELASTIC_45 = {"control_point_spacing": [4, 40, 40], "jitter_sigma": [0, 0, 0],
              "rotation_interval": [math.pi / 4, math.pi / 4], "prob_slip": 0, "prob_shift": 0}


def write_blank_sample(path, shape) -> str:
    write_array(path, "volumes/raw", np.full(shape, 128, np.uint8), VS)
    write_array(path, "volumes/labels/neuron_ids", np.ones(shape, np.uint64), VS)
    return str(path)


@pytest.fixture
def nets(tmp_path):
    create_networks(tmp_path / "nets", train_input_shape=(28, 108, 108), predict_input_shape=(28, 108, 108),
                    num_fmaps=2, fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)))
    return tmp_path / "nets" / "train_net_config.json"


def write_job(tmp_path, samples, network, augment=None) -> str:
    doc = {"samples": samples, "network": str(network), "num_workers": 1}
    if augment is not None:
        doc["augment"] = augment
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_worst_angles_hold_the_ends_and_45_degrees():
    angles = worst_angles((0.0, math.pi / 2))
    assert angles[0] == 0.0 and angles[-1] == pytest.approx(math.pi / 2)
    assert any(a == pytest.approx(math.pi / 4) for a in angles)
    assert worst_angles((0.3, 0.3)) == [0.3]


def test_daskseg_train_refuses_a_sample_the_rotation_outgrows_before_a_cluster_starts(tmp_path, nets):
    # 28x108x108 fits a 30x130x130 sample unrotated; at 45 degrees it needs ~153 voxels in y and x
    sample = write_blank_sample(tmp_path / "small.zarr", (30, 130, 130))
    config = write_job(tmp_path, [sample], nets)
    daskseg = os.path.join(os.path.dirname(sys.executable), "daskseg")
    run = subprocess.run([daskseg, "train", "--config", config], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr  # one line, no worker tracebacks: nothing ran on a worker
    assert lines[0].startswith("Error: SampleTooSmallError: ")
    assert f"{sample} is too small for one training batch" in lines[0]
    assert "rotation_interval [0.0, 1.5707963267948966]" in lines[0] and "short along y, x" in lines[0]
    assert not (tmp_path / "checkpoints").exists()  # refused before anything was written


def test_without_rotation_the_same_sample_is_enough(tmp_path, nets):
    sample = write_blank_sample(tmp_path / "small.zarr", (30, 130, 130))
    job = load_job(write_job(tmp_path, [sample], nets, {"elastic": {"rotation_interval": [0, 0]}}))
    check_job(job)  # no error


def test_the_check_names_the_short_sample_among_several(tmp_path, nets):
    big = write_blank_sample(tmp_path / "big.zarr", (30, 200, 200))
    short_in_z = write_blank_sample(tmp_path / "thin.zarr", (20, 200, 200))
    job = load_job(write_job(tmp_path, [big, short_in_z], nets))
    with pytest.raises(SampleTooSmallError, match=r"thin\.zarr is too small .* short along z\."):
        check_job(job)


@pytest.mark.parametrize("spare", [0, -1])
def test_the_check_agrees_with_a_real_batch_at_a_fixed_rotation(tmp_path, nets, spare):
    """A sample exactly as large as the check asks for serves a real batch at 45 degrees; one voxel
    less in y is refused by the check and by RandomLocation, which names the file."""
    job = load_job(write_job(tmp_path, ["probe.zarr"], nets, {"elastic": ELASTIC_45, "simple": None}))
    write_blank_sample(tmp_path / "probe.zarr", (30, 300, 300))
    net, vs = check_job(job)
    request, keys = training_request(net, vs)
    specs = {keys["raw"]: ArraySpec(voxel_size=vs, dtype=np.uint8, interpolatable=True),
             keys["labels"]: ArraySpec(voxel_size=vs, dtype=np.uint64, interpolatable=False)}
    need = batch_needs(request, specs, lambda v: [Normalize(keys["raw"]), *target_nodes(job, net, keys, v)],
                       job.augment["elastic"]) / Coordinate(VS)
    assert 150 <= need[1] == need[2] <= 160  # 108 * sqrt(2), the interpolation's voxel, the affinities'
    shape = (need[0], need[1] + spare, need[2])
    sample = write_blank_sample(tmp_path / "exact.zarr", shape)
    job.samples = [sample]
    datasets = {keys["raw"]: job.raw_dataset, keys["labels"]: job.labels_dataset}
    pipeline = ZarrSource(sample, datasets) + Normalize(keys["raw"]) + RandomLocation()
    for node in target_nodes(job, net, keys):
        pipeline = pipeline + node
    if spare == 0:
        check_sample_sizes(job, net, vs)
        with build(pipeline):
            batch = pipeline.request_batch(training_request(net, vs)[0])
        assert batch[keys["raw"]].data.shape == tuple(net.input_shape)
    else:
        with pytest.raises(SampleTooSmallError, match="short along y"):
            check_sample_sizes(job, net, vs)
        with build(pipeline), pytest.raises(RequestError, match=r"exact\.zarr at any location"):
            pipeline.request_batch(training_request(net, vs)[0])


def test_the_default_sample_holds_the_default_networks(tmp_path):
    """`daskseg synth` and `daskseg net create` with their defaults fit together (the README's laptop
    flow): one training batch of the tutorial's network with the tutorial's augmentations, and the
    prediction network's largest output ROI (`daskseg predict`'s default) holds one network output."""
    from daskseg.geometry import Roi
    from daskseg.synth import PRESETS
    from daskseg.training import TrainingJob

    train_net, test_net = create_networks(tmp_path / "nets")
    sample = Coordinate(PRESETS["default"]) * Coordinate(VS)
    job = TrainingJob(samples=["unused.zarr"], network=str(tmp_path / "nets" / "train_net_config.json"))
    request, keys = training_request(train_net, Coordinate(VS))
    specs = {keys["raw"]: ArraySpec(voxel_size=Coordinate(VS), dtype=np.uint8, interpolatable=True),
             keys["labels"]: ArraySpec(voxel_size=Coordinate(VS), dtype=np.uint64, interpolatable=False)}
    need = batch_needs(request, specs, lambda v: [Normalize(keys["raw"]), *target_nodes(job, train_net, keys, v)],
                       job.augment["elastic"])
    assert all(n <= s for n, s in zip(need, sample)), (need, sample)
    neg = Coordinate(c // 2 for c in test_net.context) * Coordinate(VS)
    pos = Coordinate(test_net.context) * Coordinate(VS) - neg
    out = Roi((0, 0, 0), sample).grow(-neg, -pos)
    assert all(o >= n for o, n in zip(out.shape / Coordinate(VS), test_net.output_shape))
