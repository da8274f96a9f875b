"""The tutorial's train.py then its predict script, ported by the import swap: checkpoints are named after the net."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
from conftest import TINY

import daskseg as gp
from daskseg.models import create_networks
from daskseg.synth import write_sample


def test_ported_test_script_finds_the_checkpoint_the_training_script_wrote(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tutorial's scripts use paths relative to the working directory
    shape = TINY.shapes.valid_input_shape((16, 40, 40))
    create_networks(".", train_input_shape=shape, predict_input_shape=shape, architecture=TINY)
    write_sample("sample_A.hdf", (32, 80, 80), seed=0)

    # --- train.py, as ported: gp.tensorflow.Train('train_net', ...) -> gp.jax.Train('train_net', ...) ---
    with open("train_net_config.json") as f:
        net_config = json.load(f)
    raw, gt_labels = gp.ArrayKey("RAW"), gp.ArrayKey("GT_LABELS")
    gt_affs, loss_weights, pred_affs = gp.ArrayKey("GT_AFFINITIES"), gp.ArrayKey("LOSS_WEIGHTS"), gp.ArrayKey("PRED_AFFS")
    voxel_size = gp.Coordinate((40, 4, 4))
    input_size = gp.Coordinate(net_config["input_shape"]) * voxel_size
    output_size = gp.Coordinate(net_config["output_shape"]) * voxel_size
    request = gp.BatchRequest()
    request.add(raw, input_size)
    request.add(gt_affs, output_size)
    request.add(loss_weights, output_size)
    pipeline = (
        gp.Hdf5Source("sample_A.hdf", datasets={raw: "volumes/raw", gt_labels: "volumes/labels/neuron_ids"})
        + gp.Normalize(raw)
        + gp.RandomLocation()
        + gp.AddAffinities([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], gt_labels, gt_affs)
        + gp.BalanceLabels(gt_affs, loss_weights)
        + gp.jax.Train(
            "train_net",
            net_config["optimizer"],
            net_config["loss"],
            inputs={net_config["raw"]: raw, net_config["gt_affs"]: gt_affs, net_config["loss_weights"]: loss_weights},
            outputs={net_config["pred_affs"]: pred_affs},
            save_every=1,
        )
    )
    iterations = 2
    with gp.build(pipeline):
        for _ in range(iterations):
            pipeline.request_batch(request)
    assert sorted(f for f in os.listdir(".") if "_checkpoint_" in f) == ["train_net_checkpoint_1", "train_net_checkpoint_2"]

    # --- the tutorial's prediction script, as ported ---
    iteration = iterations
    raw, pred_affs = gp.ArrayKey("RAW"), gp.ArrayKey("PRED_AFFS")
    with open("test_net_config.json") as f:
        net_config = json.load(f)
    input_size = gp.Coordinate(net_config["input_shape"]) * voxel_size
    output_size = gp.Coordinate(net_config["output_shape"]) * voxel_size
    context = input_size - output_size
    request = gp.BatchRequest()
    request.add(raw, input_size)
    request.add(pred_affs, output_size)
    source = gp.Hdf5Source("sample_A.hdf", datasets={raw: "volumes/raw"})
    with gp.build(source):
        raw_roi = source.spec[raw].roi
    pipeline = (
        source
        + gp.Normalize(raw)
        + gp.jax.Predict(
            graph="test_net",
            checkpoint="train_net_checkpoint_%d" % iteration,
            inputs={net_config["raw"]: raw},
            outputs={net_config["pred_affs"]: pred_affs},
            array_specs={pred_affs: gp.ArraySpec(roi=raw_roi.grow(-context, -context))},
        )
        + gp.Hdf5Write({raw: "/volumes/raw", pred_affs: "/volumes/pred_affs"}, output_filename="predictions_sample_A.hdf")
        + gp.Scan(reference=request)
    )
    with gp.build(pipeline):
        pipeline.request_batch(gp.BatchRequest())

    with h5py.File("predictions_sample_A.hdf", "r") as f:
        pred = f["volumes/pred_affs"][:]
        begin = np.array(f["volumes/pred_affs"].attrs["offset"]) // np.array(voxel_size)
    assert pred.shape[0] == 3 and np.isfinite(pred).all() and 0 < pred.min() and pred.max() < 1
    # the predictions are those of the trained parameters of iteration 2, not the initial ones
    from daskseg.jax.inference import load_predictor

    with h5py.File("sample_A.hdf", "r") as f:
        z, y, x = begin - np.array(TINY.context) // 2  # the first tile's input: the output grown by half the context
        first_tile = f["volumes/raw"][z : z + shape[0], y : y + shape[1], x : x + shape[2]].astype(np.float32) / 255
    trained = load_predictor("test_net", "train_net_checkpoint_2")(first_tile)
    untrained = load_predictor("test_net")(first_tile)
    assert not np.allclose(trained, untrained)
    out = tuple(trained.shape[1:])
    np.testing.assert_allclose(pred[:, : out[0], : out[1], : out[2]], trained, rtol=1e-5, atol=1e-6)
