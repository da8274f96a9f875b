"""The multitask (MtLSD) network: the LSD head, its config, and training that lowers both losses."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY, ArraysSource, boundary_volume

import daskseg as gp
from daskseg.cli import main
from daskseg.errors import NetConfigError
from daskseg.jax.model import FlaxUNetModel
from daskseg.local_shape_descriptor import get_local_shape_descriptors
from daskseg.models import LsdConfig, NetConfig, create_networks, load_net_config

IN_SHAPE = (16, 40, 40)
MULTI = TINY.replace(lsd_channels=10)
OUT_SHAPE = MULTI.output_shape(IN_SHAPE)  # (4, 24, 24)


def _net(**lsds) -> NetConfig:
    optimizer = {"name": "adam", "learning_rate": 3e-3}
    return NetConfig("mt", IN_SHAPE, architecture=MULTI, optimizer=optimizer, lsds=LsdConfig(**lsds))


def _inputs():
    raw, labels, affs = boundary_volume(IN_SHAPE)
    crop = tuple(slice((i - o) // 2, (i - o) // 2 + o) for i, o in zip(IN_SHAPE, OUT_SHAPE))
    lsds = get_local_shape_descriptors(labels, 3.0, region=crop)
    return {
        "raw": raw,
        "gt_affs": affs[(slice(None),) + crop],
        "loss_weights": np.ones((3,) + OUT_SHAPE, np.float32),
        "gt_lsds": lsds,
        "lsds_weights": np.ones_like(lsds),
    }


def test_config_round_trip_and_cli(tmp_path):
    train, _ = create_networks(
        tmp_path,
        train_input_shape=IN_SHAPE,
        predict_input_shape=IN_SHAPE,
        architecture=TINY,
        lsds={"sigma": 60.0, "downsample": 3},
    )
    assert train.architecture.lsd_channels == 10 and train.lsds == LsdConfig(sigma=60.0, downsample=3)
    assert load_net_config(tmp_path / "train_net_config.json").to_dict() == train.to_dict()
    # networks without the head keep their configs as they were
    plain, _ = create_networks(
        tmp_path / "plain", train_input_shape=IN_SHAPE, predict_input_shape=IN_SHAPE, architecture=TINY
    )
    assert "lsds" not in plain.to_dict() and "lsd_channels" not in plain.to_dict()["architecture"]
    with pytest.raises(NetConfigError, match="lsd_channels"):
        NetConfig("bad", IN_SHAPE, architecture=TINY, lsds=LsdConfig())
    with pytest.raises(NetConfigError, match="lsds.sigma"):
        LsdConfig(sigma=0)

    result = CliRunner().invoke(
        main, ["net", "create", str(tmp_path / "cli"), "--lsds", "--lsd-sigma", "40", "--lsd-downsample", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "10 LSD channels (sigma 40 nm)" in result.output
    cfg = load_net_config(tmp_path / "cli" / "train_net_config.json")
    assert cfg.lsds == LsdConfig(sigma=40.0, downsample=2) and cfg.architecture.lsd_channels == 10
    refused = CliRunner().invoke(main, ["net", "create", str(tmp_path / "no"), "--lsd-sigma", "40"])
    assert refused.exit_code != 0 and "need --lsds" in refused.output


def test_heads_share_the_features_and_affinities_stay_the_output():
    model = FlaxUNetModel(_net(), seed=1)
    state = model.initialize()
    inputs = _inputs()
    out = model.forward(state, {"raw": inputs["raw"]})
    assert out["pred_affs"].shape == (3,) + OUT_SHAPE and out["pred_lsds"].shape == (10,) + OUT_SHAPE
    assert 0 < float(out["pred_lsds"].min()) and float(out["pred_lsds"].max()) < 1  # sigmoid
    # the affinity path (what daskseg predict uses) gives the same affinities
    affs, _ = model.apply(state["params"], inputs["raw"])
    np.testing.assert_allclose(np.asarray(affs[0]), np.asarray(out["pred_affs"]), rtol=1e-6)


@pytest.mark.slow
def test_training_lowers_both_losses():
    import jax

    # descriptors are mostly near 0.5, so their squared error is small: weigh them up
    model = FlaxUNetModel(_net(loss_weight=20.0), seed=0)
    state = model.initialize()
    inputs = jax.tree.map(np.asarray, _inputs())
    before = {k: float(v) for k, v in model.losses(state, inputs).items()}
    step = jax.jit(model.train_step, static_argnums=2)
    state, outputs, loss, grads = step(state, inputs, False)
    # the loss is the weighted sum of the heads' losses
    assert float(loss) == pytest.approx(before["pred_affs"] + 20.0 * before["pred_lsds"], rel=1e-5)
    assert set(outputs) == set(grads) == {"pred_affs", "pred_lsds"}
    for _ in range(24):
        state, _, loss, _ = step(state, inputs, False)
    after = {k: float(v) for k, v in model.losses(state, inputs).items()}
    assert after["pred_affs"] < 0.9 * before["pred_affs"]
    assert after["pred_lsds"] < 0.9 * before["pred_lsds"]


def test_train_node_writes_both_predictions(tmp_path):
    raw_key, gt, w, gt_lsds, lsds_w = (gp.ArrayKey(n) for n in ("RAW", "GT_AFFS", "W", "GT_LSDS", "LSDS_W"))
    pred, pred_lsds = gp.ArrayKey("PRED"), gp.ArrayKey("PRED_LSDS")
    inputs = _inputs()
    pad = [((i - o) // 2, (i - o) - (i - o) // 2) for i, o in zip(IN_SHAPE, OUT_SHAPE)]
    full = {k: np.pad(inputs[k], [(0, 0)] + pad) for k in ("gt_affs", "loss_weights", "gt_lsds", "lsds_weights")}
    source = ArraysSource(
        {
            raw_key: inputs["raw"],
            gt: full["gt_affs"],
            w: full["loss_weights"],
            gt_lsds: full["gt_lsds"],
            lsds_w: full["lsds_weights"],
        }
    )
    train = gp.jax.Train(
        _net(),
        inputs={"raw": raw_key, "gt_affs": gt, "loss_weights": w, "gt_lsds": gt_lsds, "lsds_weights": lsds_w},
        outputs={"pred_affs": pred, "pred_lsds": pred_lsds},
        checkpoint_basename=str(tmp_path / "mt"),
        save_every=0,
    )
    request = gp.BatchRequest()
    request.add(raw_key, IN_SHAPE)
    offset = gp.Coordinate([p[0] for p in pad])
    for key in (gt, w, gt_lsds, lsds_w, pred, pred_lsds):
        request[key] = gp.ArraySpec(roi=gp.Roi(offset, OUT_SHAPE))
    with gp.build(source + train) as p:
        batch = p.request_batch(request)
    assert batch[pred].data.shape == (3,) + OUT_SHAPE and batch[pred_lsds].data.shape == (10,) + OUT_SHAPE
    assert batch.loss > 0
