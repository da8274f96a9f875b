"""Checkpoints: a format that runs no code, pickles only when asked, clear errors, atomic writes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import jax
import ml_dtypes
import numpy as np
import optax
import pytest
from conftest import TINY

from daskseg.jax import checkpoint as ckpt
from daskseg.jax.model import FlaxUNetModel
from daskseg.models import NetConfig, UNetConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _state():
    params = {"conv": {0: {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": np.ones(3, np.float32)}}}
    return {"params": params, "opt_state": optax.adam(1e-3).init(params)}


def test_state_round_trips_with_its_structure_and_dtypes(tmp_path):
    state = _state()
    state["extra"] = [np.array([1.5], dtype=ml_dtypes.bfloat16), (3, 2.5, True), None]
    path = ckpt.save_checkpoint(tmp_path / "m", 12, state, {"model": "X"})
    with open(path, "rb") as f:
        assert f.read(4) == b"PK\x03\x04"  # a zip of .npy files and a JSON manifest, no pickle
    loaded = ckpt.load_checkpoint(path)
    assert loaded.iteration == 12 and loaded.meta == {"model": "X"}
    np.testing.assert_array_equal(loaded.state["params"]["conv"][0]["kernel"], state["params"]["conv"][0]["kernel"])
    bf = loaded.state["extra"][0]
    assert bf.dtype == ml_dtypes.bfloat16 and float(bf[0]) == 1.5
    assert loaded.state["extra"][1] == (3, 2.5, True) and type(loaded.state["extra"][1][0]) is int
    assert loaded.state["extra"][2] is None
    adam = loaded.state["opt_state"][0]  # optax's ScaleByAdamState comes back as a named tuple with its fields
    assert type(adam).__name__ == "ScaleByAdamState" and adam._fields == ("count", "mu", "nu")
    # restore_like gives exactly the structure optax builds, so a jitted update takes it unchanged
    template = jax.eval_shape(lambda: {"params": state["params"], "opt_state": optax.adam(1e-3).init(state["params"])})
    restored = ckpt.restore_like(template, {k: loaded.state[k] for k in ("params", "opt_state")})
    assert jax.tree.structure(restored) == jax.tree.structure(template)
    optax.adam(1e-3).update(restored["params"], restored["opt_state"], restored["params"])


def test_restore_like_names_the_first_difference(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "m", 1, {"a": np.zeros(3), "b": np.zeros((2, 2))})
    loaded = ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError, match=r"\['b'\] has shape \(2, 2\), the model's \['b'\] has \(4,\)"):
        ckpt.restore_like({"a": np.zeros(3), "b": np.zeros(4)}, loaded.state, "checkpoint m_checkpoint_1")
    with pytest.raises(ckpt.CheckpointError, match="holds 2 arrays, the model's state has 1"):
        ckpt.restore_like({"a": np.zeros(3)}, loaded.state)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))  # runs on load: creates the file


def test_a_crafted_pickle_runs_no_code_unless_explicitly_trusted(tmp_path):
    target = tmp_path / "created_by_the_pickle"
    evil = tmp_path / "m_checkpoint_5"
    with open(evil, "wb") as f:
        pickle.dump({"params": _Evil(str(target))}, f)
    for call in (lambda: ckpt.load_checkpoint(evil), lambda: ckpt.latest_checkpoint(tmp_path / "m"),
                 lambda: ckpt.open_checkpoint(tmp_path / "m")):
        with pytest.raises(ckpt.CheckpointPickleError, match="is a pickle.*--trust-pickle"):
            call()
    assert not target.exists()
    loaded = ckpt.load_checkpoint(evil, allow_pickle=True)  # the opt-in loads gunpowder's format, code and all
    assert target.exists() and loaded.iteration == 5 and loaded.meta["pickle"]


@pytest.mark.parametrize(
    "content, message",
    [(b"", "the file is empty"), (b"not a checkpoint at all", "not a daskseg checkpoint"), ("half", "truncated")],
)
def test_unreadable_files_are_named_with_the_cause(tmp_path, content, message):
    path = ckpt.save_checkpoint(tmp_path / "m", 3, _state())
    if content == "half":
        with open(path, "rb") as f:
            content = f.read()[: os.path.getsize(path) // 2]
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(ckpt.CheckpointError, match=message) as info:
        ckpt.open_checkpoint(path)
    assert str(path) in str(info.value)
    with pytest.raises(ckpt.CheckpointNotFoundError, match="no checkpoints .*nothing_checkpoint_"):
        ckpt.open_checkpoint(tmp_path / "nothing")


def test_latest_skips_a_truncated_newest_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path / "m", 2, {"w": np.ones(3)})
    newest = ckpt.save_checkpoint(tmp_path / "m", 4, {"w": np.zeros(3)})
    os.truncate(newest, os.path.getsize(newest) - 10)
    latest = ckpt.latest_checkpoint(tmp_path / "m")
    assert latest.iteration == 2 and np.array_equal(latest.state["w"], np.ones(3))


def test_open_checkpoint_checks_the_network(tmp_path):
    cfg = NetConfig("test_net", TINY.shapes.valid_input_shape((16, 40, 40)), TINY)
    cfg.save(tmp_path / "test_net_config.json")
    ckpt.save_checkpoint(tmp_path / "train_net", 7, FlaxUNetModel(cfg).initialize())
    ok = ckpt.open_checkpoint(tmp_path / "train_net", network=tmp_path / "test_net_config.json")
    assert ok.path == str(tmp_path / "train_net_checkpoint_7") and ok.iteration == 7
    other = UNetConfig(num_fmaps=6, fmap_inc_factor=2, downsample_factors=[(1, 2, 2)])
    with pytest.raises(ckpt.CheckpointError, match="does not fit the network config: .* parameter arrays differ"):
        ckpt.open_checkpoint(tmp_path / "train_net", network=other)


def test_disk_full_while_saving_is_one_line_naming_the_path_and_leaves_nothing(tmp_path):
    """The kernel refuses writes past a file size limit (EFBIG, as ENOSPC on a full disk)."""
    basename = tmp_path / "m"
    ckpt.save_checkpoint(basename, 2, {"w": np.ones(3)})
    script = textwrap.dedent(f"""
        import resource, sys
        import numpy as np
        from daskseg.jax import checkpoint as ckpt
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))
        try:
            ckpt.save_checkpoint({str(basename)!r}, 4, {{"w": np.zeros(100_000)}})
        except ckpt.CheckpointWriteError as e:
            print("ERROR", e, "| context:", e.__cause__, e.__suppress_context__)
    """)
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    line = result.stdout.strip()
    assert line.startswith("ERROR could not write checkpoint " + ckpt.checkpoint_name(basename, 4)), result
    assert "File too large" in line and line.endswith("| context: None True") and "\n" not in line
    assert sorted(os.listdir(tmp_path)) == ["m_checkpoint_2"]  # no partial file, the last good one intact
    assert ckpt.latest_checkpoint(basename).iteration == 2


def test_names_follow_gunpowder():
    assert ckpt.basename_for_model("train_net") == "train_net"
    assert ckpt.basename_for_model(os.path.join("nets", "train_net_config.json")) == os.path.join("nets", "train_net")
    assert ckpt.basename_for_model("net.json") == "net"
    assert ckpt.basename_for_model(TINY) is None
    assert ckpt.checkpoint_name("a/train_net", 10) == "a/train_net_checkpoint_10"
    assert ckpt.iteration_from_name("x/train_net_checkpoint_10") == 10 and ckpt.iteration_from_name("x") is None
