"""Network configs and the factory (the tutorial's mknet.py); no JAX needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from daskseg.models import NetConfig, ShapeError, UNetConfig, create_networks, load_net_config


def test_create_networks_writes_cremi_defaults(tmp_path):
    train, test = create_networks(tmp_path)
    d = json.loads((tmp_path / "train_net_config.json").read_text())
    assert d["input_shape"] == [84, 268, 268] and d["output_shape"] == [56, 56, 56]
    assert d["context"] == [28, 212, 212]
    assert d["optimizer"] == {"name": "adam", "learning_rate": 0.5e-4, "b1": 0.95, "b2": 0.999, "eps": 1e-8}
    assert d["loss"] == "weighted_mse"
    assert (d["raw"], d["gt_affs"], d["loss_weights"], d["pred_affs"]) == ("raw", "gt_affs", "loss_weights", "pred_affs")
    arch = d["architecture"]
    assert arch["num_fmaps"] == 6 and arch["fmap_inc_factor"] == 4
    assert arch["downsample_factors"] == [[1, 3, 3]] * 3
    assert arch["kernel_size_down"] == [[[3, 3, 3], [3, 3, 3]]] * 4
    assert arch["upsampling"] == "transposed_conv"
    p = json.loads((tmp_path / "test_net_config.json").read_text())
    assert p["input_shape"] == [120, 322, 322] and p["output_shape"] == [92, 110, 110]
    assert load_net_config(tmp_path / "train_net") == train
    assert NetConfig.load(tmp_path / "test_net_config.json").architecture == test.architecture


def test_create_networks_invalid_shape_names_nearest(tmp_path):
    with pytest.raises(ShapeError, match=r"\(84, 268, 268\)"):
        create_networks(tmp_path, train_input_shape=(84, 270, 270))


def test_custom_architecture_roundtrip(tmp_path):
    arch = UNetConfig(num_fmaps=12, fmap_inc_factor=5, downsample_factors=[(1, 3, 3), (1, 3, 3), (3, 3, 3)],
                      upsampling="nearest")
    shape = arch.shapes.valid_input_shape((84, 268, 268))
    train, _ = create_networks(tmp_path, train_input_shape=shape, predict_input_shape=shape, architecture=arch)
    again = NetConfig.load(tmp_path / "train_net_config.json")
    assert again.architecture == arch and again.output_shape == train.output_shape


def test_config_with_wrong_output_shape_is_rejected(tmp_path):
    create_networks(tmp_path)
    path = tmp_path / "train_net_config.json"
    d = json.loads(path.read_text())
    d["output_shape"] = [50, 50, 50]
    path.write_text(json.dumps(d))
    with pytest.raises(ShapeError, match="says output_shape"):
        NetConfig.load(path)
    with pytest.raises(FileNotFoundError, match="daskseg net create"):
        load_net_config(tmp_path / "nope")


def test_configs_need_no_jax():
    code = "import sys, daskseg.models as m; m.create_networks(sys.argv[1]); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code, "/tmp"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
