"""The network learns: a few hundred iterations of a small U-Net beat the raw-threshold baseline on
held-out data by a stated margin (issue 11 item 18).

The baseline is the best of 19 thresholds on raw intensities, the network's score the best of the
same 19 thresholds on its affinities (the same oracle choice for both), each scored against the
held-out sample's ground-truth affinities by macro F1 (the mean F1 of "connected" and "cut"; an
all-connected answer scores about 0.5). No augmentation but SimpleAugment, so that a few hundred
iterations suffice; the run takes 1-3 minutes on two cores. Everything is seeded
(samples, batch locations, initial parameters), so the run is the same every time.
"""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import open_dataset
from daskseg.jax.inference import load_predictor
from daskseg.models.config import create_networks
from daskseg.report import best_threshold_scores, binary_scores, gt_affinities, raw_affinities
from daskseg.synth import LABELS_DATASET, RAW_DATASET, write_cremi_samples, write_sample

ITERATIONS = 300
#: macro F1 the network must add to the baseline's (measured: 0.772 against 0.619 after 300
#: iterations; 0.681 after 150, too close to a margin to be safe)
MARGIN = 0.1


@pytest.mark.slow
def test_a_few_hundred_iterations_beat_the_raw_threshold_baseline_on_held_out_data(tmp_path):
    samples = write_cremi_samples(tmp_path / "data", (32, 160, 160), names=("A", "B"), seed=0, extension=".zarr")
    held_out = str(tmp_path / "held_out.zarr")
    write_sample(held_out, (28, 164, 164), seed=100)
    optimizer = {"name": "adam", "learning_rate": 1e-3, "b1": 0.95, "b2": 0.999, "eps": 1e-8}
    train_net, test_net = create_networks(
        tmp_path / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 164, 164), num_fmaps=4,
        fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)), optimizer=optimizer,
    )

    raw, labels, gt, weights, pred = (gp.ArrayKey(n) for n in ("RAW", "LABELS", "GT_AFFS", "WEIGHTS", "PRED"))
    vs = open_dataset(samples[0], RAW_DATASET).voxel_size
    request = gp.BatchRequest()
    request.add(raw, gp.Coordinate(train_net.input_shape) * vs)
    request.add(gt, gp.Coordinate(train_net.output_shape) * vs)
    request.add(weights, gp.Coordinate(train_net.output_shape) * vs)
    basename = str(tmp_path / "checkpoints" / "train_net")
    pipeline = (
        tuple(gp.ZarrSource(s, {raw: RAW_DATASET, labels: LABELS_DATASET}) + gp.Normalize(raw) + gp.RandomLocation()
              for s in samples)
        + gp.RandomProvider()
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.AddAffinities([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], labels, gt)
        + gp.BalanceLabels(gt, weights)
        + gp.jax.Train(train_net, inputs={train_net.raw: raw, train_net.gt_affs: gt, train_net.loss_weights: weights},
                       outputs={train_net.pred_affs: pred}, checkpoint_basename=basename,
                       save_every=ITERATIONS, log_every=50)
    )
    with gp.build(pipeline):
        for i in range(ITERATIONS):
            step = request.copy()
            step.random_seed = i  # the same batches every run
            pipeline.request_batch(step)

    predictor = load_predictor(tmp_path / "nets" / "test_net_config.json", basename)
    raw_data = open_dataset(held_out, RAW_DATASET).read()
    labels_data = open_dataset(held_out, LABELS_DATASET).read()
    affs = predictor(raw_data.astype(np.float32) / 255)
    # the output sits in the middle of the input; ground truth needs the neighbour before each voxel
    begin = [c // 2 for c in test_net.context]
    inside = tuple(slice(b, b + o) for b, o in zip(begin, test_net.output_shape))
    grown = tuple(slice(b - 1, b + o) for b, o in zip(begin, test_net.output_shape))
    truth = gt_affinities(labels_data[grown])[(slice(None), slice(1, None), slice(1, None), slice(1, None))]
    assert affs.shape == truth.shape

    network_threshold, network = best_threshold_scores(affs, truth)
    threshold, baseline = best_threshold_scores(raw_affinities(raw_data[inside]), truth)
    print(f"macro F1: network {network_threshold} {network['macro_f1']:.3f} (at 0.5: "
          f"{binary_scores(affs > 0.5, truth)['macro_f1']:.3f}), raw threshold {threshold} {baseline['macro_f1']:.3f}")
    assert network["macro_f1"] >= baseline["macro_f1"] + MARGIN, (network, baseline)
