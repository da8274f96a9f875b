"""The gunpowder tutorial's training script, ported: `import daskseg as gp`, `gp.jax.Train`, synthetic data."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np

import daskseg as gp
from daskseg.models import UNetConfig, create_networks
from daskseg.synth import write_sample

#: small, but with enough feature maps to learn the synthetic boundaries in ~100 iterations
NET = UNetConfig(num_fmaps=8, fmap_inc_factor=2, downsample_factors=[(1, 2, 2)])


def test_tutorial_training_script_runs_and_learns(tmp_path):
    gp.set_seed(0)
    # mknet.py: a small network instead of the CREMI one, a faster learning rate for few iterations
    shape = NET.shapes.valid_input_shape((16, 40, 40))
    create_networks(
        tmp_path,
        train_input_shape=shape,
        predict_input_shape=shape,
        architecture=NET,
        optimizer={"name": "adam", "learning_rate": 3e-3, "b1": 0.95, "b2": 0.999, "eps": 1e-8},
    )
    write_sample(tmp_path / "sample_A.hdf", "small", seed=0)

    # --- the tutorial's train.py from here, paths in tmp_path ---
    with open(tmp_path / "train_net_config.json") as f:
        net_config = json.load(f)

    raw = gp.ArrayKey("RAW")
    gt_labels = gp.ArrayKey("LABELS")
    gt_affs = gp.ArrayKey("AFFINITIES")
    loss_weights = gp.ArrayKey("LOSS_WEIGHTS")
    pred_affs = gp.ArrayKey("PRED_AFFS")
    pred_affs_gradients = gp.ArrayKey("PRED_AFFS_GRADIENTS")

    voxel_size = gp.Coordinate((40, 4, 4))
    input_size = gp.Coordinate(net_config["input_shape"]) * voxel_size
    output_size = gp.Coordinate(net_config["output_shape"]) * voxel_size

    request = gp.BatchRequest()
    request.add(raw, input_size)
    request.add(gt_affs, output_size)
    request.add(loss_weights, output_size)

    snapshot_request = gp.BatchRequest()
    snapshot_request[pred_affs] = request[gt_affs]
    snapshot_request[pred_affs_gradients] = request[gt_affs]

    pipeline = (
        tuple(
            gp.Hdf5Source(
                str(tmp_path / f"sample_{s}.hdf"),
                datasets={raw: "volumes/raw", gt_labels: "volumes/labels/neuron_ids"},
            )
            + gp.Normalize(raw)
            + gp.RandomLocation()
            for s in ["A"]
        )
        + gp.RandomProvider()
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.IntensityAugment(raw, scale_min=0.9, scale_max=1.1, shift_min=-0.1, shift_max=0.1, z_section_wise=True)
        + gp.GrowBoundary(gt_labels, steps=1, only_xy=True)
        + gp.AddAffinities([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], gt_labels, gt_affs)
        + gp.BalanceLabels(gt_affs, loss_weights)
        + gp.jax.Train(
            str(tmp_path / "train_net"),
            net_config["optimizer"],
            net_config["loss"],
            inputs={
                net_config["raw"]: raw,
                net_config["gt_affs"]: gt_affs,
                net_config["loss_weights"]: loss_weights,
            },
            outputs={net_config["pred_affs"]: pred_affs},
            gradients={net_config["pred_affs"]: pred_affs_gradients},
            checkpoint_basename=str(tmp_path / "train_net"),
            save_every=60,
        )
        + gp.Snapshot(
            {
                raw: "/volumes/raw",
                gt_labels: "/volumes/labels/neuron_ids",
                gt_affs: "/volumes/labels/affs",
                pred_affs: "/volumes/pred_affs",
                pred_affs_gradients: "/volumes/pred_affs_gradients",
            },
            output_dir=str(tmp_path / "snapshots"),
            output_filename="batch_{iteration}.hdf",
            every=60,
            additional_request=snapshot_request,
        )
        + gp.PrintProfilingStats(every=60)
    )

    iterations = 120
    losses = []
    with gp.build(pipeline):
        for _ in range(iterations):
            batch = pipeline.request_batch(request)
            losses.append(batch.loss)
    # --- end of the tutorial's script ---

    assert batch.iteration == iterations
    assert all(math.isfinite(v) for v in losses)
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert last < 0.8 * first, f"loss did not fall clearly: first 10 {first:.4f}, last 20 {last:.4f}"
    assert (tmp_path / "train_net_checkpoint_60").exists() and (tmp_path / "train_net_checkpoint_120").exists()
    log = (tmp_path / "train_net_log.csv").read_text().splitlines()
    assert log[0] == "iteration,loss,time_s,timestamp" and len(log) == iterations + 1

    # snapshots (every 60th batch from the first: iterations 1, 61) hold predictions and gradients
    # aligned with the ground-truth affinities
    with h5py.File(tmp_path / "snapshots" / "batch_61.hdf", "r") as f:
        pred, grad, affs = f["volumes/pred_affs"], f["volumes/pred_affs_gradients"], f["volumes/labels/affs"]
        assert pred.shape == grad.shape == affs.shape == (3, *net_config["output_shape"])
        for a in (pred, grad):
            assert tuple(a.attrs["offset"]) == tuple(affs.attrs["offset"])
            assert tuple(a.attrs["resolution"]) == (40, 4, 4)
        p = pred[:]
        assert 0 < p.min() and p.max() < 1 and np.abs(grad[:]).max() > 0
        assert tuple(f["volumes/raw"].attrs["offset"]) != tuple(affs.attrs["offset"])  # raw has the context
