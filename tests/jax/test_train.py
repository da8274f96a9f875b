"""gp.jax.Train: resume, batch layouts, output ROIs, the gunpowder-JAX model protocol, devices."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY, ArraysSource, boundary_volume

import daskseg as gp
from daskseg.errors import ArgumentError
from daskseg.jax import checkpoint as ckpt
from daskseg.jax.model import GenericJaxModel

RAW, GT, W = gp.ArrayKey("RAW"), gp.ArrayKey("GT_AFFS"), gp.ArrayKey("WEIGHTS")
PRED, GRAD = gp.ArrayKey("PRED"), gp.ArrayKey("PRED_GRAD")
IN_SHAPE = (16, 40, 40)
OUT_SHAPE = TINY.output_shape(IN_SHAPE)  # (4, 24, 24)


def _source():
    raw, _, affs = boundary_volume(IN_SHAPE)
    weights = np.ones_like(affs)
    return ArraysSource({RAW: raw, GT: affs, W: weights})


def _request(outputs=()):
    request = gp.BatchRequest()
    request.add(RAW, IN_SHAPE)
    for key in (GT, W, *outputs):
        request.add(key, OUT_SHAPE)
    return request


def _train(basename, iterations, **kwargs):
    train = gp.jax.Train(
        TINY,
        optimizer=optax.adam(1e-3),
        inputs={"raw": RAW, "gt_affs": GT, "loss_weights": W},
        outputs={"pred_affs": PRED},
        gradients={"pred_affs": GRAD},
        checkpoint_basename=str(basename),
        **kwargs,
    )
    pipeline = _source() + train
    batches = []
    with gp.build(pipeline):
        for _ in range(iterations):
            batches.append(pipeline.request_batch(_request((PRED, GRAD))))
    return train, batches


def test_outputs_and_gradients_in_the_batch_with_rois(tmp_path):
    train, (batch,) = _train(tmp_path / "m", 1, save_every=100)
    pred, grad = batch[PRED], batch[GRAD]
    assert pred.data.shape == grad.data.shape == (3, *OUT_SHAPE)
    assert pred.spec.roi == grad.spec.roi == batch[GT].spec.roi
    assert pred.spec.voxel_size == (1, 1, 1) and pred.data.dtype == np.float32
    # d loss / d pred of sum(w (p - g)^2) / count_nonzero(w), by hand
    expected = 2 * (pred.data - batch[GT].data) / batch[W].data.size
    np.testing.assert_allclose(grad.data, expected, rtol=1e-4, atol=1e-9)
    assert batch.iteration == 1 and np.isfinite(batch.loss)
    # teardown checkpoints the last iteration
    assert [i for i, _ in ckpt.list_checkpoints(str(tmp_path / "m"))] == [1]


def test_larger_output_is_centred_and_cropped(tmp_path):
    """Requesting a smaller output ROI than the network produces crops the centred output."""
    train = gp.jax.Train(
        TINY, inputs={"raw": RAW, "gt_affs": GT, "loss_weights": W}, outputs={"pred_affs": PRED},
        checkpoint_basename=str(tmp_path / "m"), save_every=100,
    )
    pipeline = _source() + train
    request = _request()
    small = request[GT].roi.grow((-1, -2, -2), (-1, -2, -2))
    request[PRED] = gp.ArraySpec(roi=small)
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert batch[PRED].spec.roi == small and batch[PRED].data.shape == (3, 2, 20, 20)


def test_resume_continues_with_identical_parameters(tmp_path):
    straight, _ = _train(tmp_path / "a" / "m", 6, save_every=3)
    first, _ = _train(tmp_path / "b" / "m", 4, save_every=3)  # "interrupted" after 4; saved 3 and (teardown) 4
    os.remove(ckpt.checkpoint_name(str(tmp_path / "b" / "m"), 4))  # as if killed before teardown
    with open(tmp_path / "b" / "m_log.csv") as f:
        assert len(f.read().splitlines()) == 5
    resumed, _ = _train(tmp_path / "b" / "m", 3, save_every=3)
    assert resumed.iteration == 6
    a = ckpt.load_checkpoint(ckpt.checkpoint_name(str(tmp_path / "a" / "m"), 6))
    b = ckpt.load_checkpoint(ckpt.checkpoint_name(str(tmp_path / "b" / "m"), 6))
    assert a.iteration == b.iteration == 6
    leaves_a, leaves_b = jax.tree.leaves(a.state), jax.tree.leaves(b.state)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):  # parameters and Adam state
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    # the log of the resumed run dropped row 4 of the interrupted run and continued from 4
    with open(tmp_path / "b" / "m_log.csv") as f:
        iterations = [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
    assert iterations == [1, 2, 3, 4, 5, 6]


def test_keep_n_checkpoints(tmp_path):
    _train(tmp_path / "m", 5, save_every=1, keep_n_checkpoints=2)
    assert [i for i, _ in ckpt.list_checkpoints(str(tmp_path / "m"))] == [4, 5]


def test_batched_arrays_from_stack(tmp_path):
    train = gp.jax.Train(
        TINY, inputs={"raw": RAW, "gt_affs": GT, "loss_weights": W}, outputs={"pred_affs": PRED},
        gradients={"pred_affs": GRAD}, checkpoint_basename=str(tmp_path / "m"),
    )
    pipeline = _source() + gp.Stack(2) + train
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request((PRED, GRAD)))
    assert batch[RAW].data.shape == (2, *IN_SHAPE)
    assert batch[PRED].data.shape == batch[GRAD].data.shape == (2, 3, *OUT_SHAPE)


def test_missing_input_in_request_is_named(tmp_path):
    train = gp.jax.Train(TINY, inputs={"raw": RAW, "gt_affs": GT, "loss_weights": W}, outputs={"pred_affs": PRED},
                         checkpoint_basename=str(tmp_path / "m"))
    pipeline = _source() + train
    request = gp.BatchRequest()
    request.add(GT, OUT_SHAPE)
    request.add(W, OUT_SHAPE)
    with gp.build(pipeline):
        with pytest.raises(gp.DaskSegError, match="RAW"):
            pipeline.request_batch(request)


class PerVoxelLinear(GenericJaxModel):
    """A gunpowder-JAX style model: affs = sigmoid(a * raw + b), its own SGD step."""

    def __init__(self, is_training=True):
        super().__init__(is_training)

    def initialize(self, rng_key, inputs):
        return {"a": jnp.zeros((3,)), "b": jnp.zeros((3,))}

    def forward(self, params, inputs):
        raw = inputs["raw"][..., None, 6:10, 8:32, 8:32]
        return {"affs": jax.nn.sigmoid(params["a"][:, None, None, None] * raw + params["b"][:, None, None, None])}

    def train_step(self, params, inputs, pmapped):
        def loss_fn(p):
            pred = self.forward(p, inputs)["affs"]
            return jnp.mean((pred - inputs["gt"]) ** 2), pred

        (loss, pred), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        if pmapped:
            grads = jax.lax.pmean(grads, "num_devices")
            loss = jax.lax.pmean(loss, "num_devices")
        new = jax.tree.map(lambda p, g: p - 5.0 * g, params, grads)
        return new, {"affs": pred}, loss


def test_gunpowder_jax_model_protocol_ports_unchanged(tmp_path):
    model = PerVoxelLinear()
    # positional arguments in gunpowder.jax.Train's order: (model, inputs, outputs, ...)
    train = gp.jax.Train(model, {"raw": RAW, "gt": GT}, {"affs": PRED}, checkpoint_basename=str(tmp_path / "lin"),
                         save_every=10, log_every=5)
    pipeline = _source() + train
    losses = []
    with gp.build(pipeline):
        for _ in range(20):
            batch = pipeline.request_batch(_request((PRED,)))
            losses.append(batch.loss)
    assert losses[-1] < 0.5 * losses[0]
    assert batch[PRED].data.shape == (3, *OUT_SHAPE) and batch[PRED].spec.roi == batch[GT].spec.roi
    state = ckpt.load_checkpoint(ckpt.checkpoint_name(str(tmp_path / "lin"), 20)).state
    assert set(state) == {"a", "b"}
    with open(tmp_path / "lin_log.csv") as f:
        assert [line.split(",")[0] for line in f.read().splitlines()] == ["iteration", "5", "10", "15", "20"]


class TwoLosses(PerVoxelLinear):
    """PerVoxelLinear whose step returns its loss as two named parts, as a gunpowder-JAX model may."""

    def train_step(self, params, inputs, pmapped):
        new, outputs, loss = super().train_step(params, inputs, pmapped)
        return new, outputs, {"half": loss / 2, "other_half": loss / 2, "extra": jnp.float32(1.0)}


def test_named_losses_give_their_sum_as_gunpowder_and_snapshot_saves_it(tmp_path):
    import zarr

    snapshot = gp.Snapshot({RAW: "raw"}, output_dir=str(tmp_path), output_filename="s{iteration}.zarr", every=1)
    train = gp.jax.Train(TwoLosses(), {"raw": RAW, "gt": GT}, {"affs": PRED},
                         checkpoint_basename=str(tmp_path / "two"), save_every=100, log_every=1)
    pipeline = _source() + train + snapshot
    with gp.build(pipeline):
        batches = [pipeline.request_batch(_request((PRED,))) for _ in range(2)]
    losses = [b.loss for b in batches]
    assert all(isinstance(value, float) and value > 1.0 for value in losses)  # the parts summed: "extra" is 1
    assert float(zarr.open_group(str(tmp_path / "s2.zarr"), mode="r").attrs["loss"]) == pytest.approx(losses[1])
    with open(tmp_path / "two_log.csv") as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    assert [float(r[1]) for r in rows] == pytest.approx(losses, rel=1e-6)


def test_gunpowder_validate_fn_and_validate_every_are_accepted(tmp_path):
    """gunpowder.jax.Train's validate_fn(model, params) / validate_every keywords port unchanged."""
    calls = []
    model = PerVoxelLinear()
    train = gp.jax.Train(model, {"raw": RAW, "gt": GT}, {"affs": PRED}, checkpoint_basename=str(tmp_path / "v"),
                         save_every=100, validate_fn=lambda m, params: calls.append((m, sorted(params))) or 0.5,
                         validate_every=3)
    pipeline = _source() + train
    with gp.build(pipeline):
        for _ in range(7):
            pipeline.request_batch(_request((PRED,)))
    assert calls == [(model, ["a", "b"])] * 2  # iterations 3 and 6
    with pytest.raises(ArgumentError, match="not both"):
        gp.jax.Train(model, {"raw": RAW}, {"affs": PRED}, validate_every=3, validation_every=3)


def _configuration(node):
    return {name: value for name, value in vars(node).items() if not name.startswith("_")}


def test_every_gunpowder_argument_positionally_in_gunpowder_order(tmp_path):
    """gunpowder.jax.Train's 14 arguments, positionally in its order, configure the node as by keyword."""
    model, validate = PerVoxelLinear(), lambda m, params: 0.5
    specs = {PRED: gp.ArraySpec(dtype=np.float32)}
    values = dict(
        model=model, inputs={"raw": RAW, "gt": GT}, outputs={"affs": PRED}, gradients={"affs": GRAD},
        array_specs=specs, checkpoint_basename=str(tmp_path / "pos"), save_every=7, keep_n_checkpoints=3,
        log_dir=str(tmp_path / "logs"), log_every=4, spawn_subprocess=True, n_devices=1, validate_fn=validate,
        validate_every=5,
    )
    positional = gp.jax.Train(*values.values())
    by_keyword = gp.jax.Train(**values)
    expected = {
        "model": model, "inputs": {"raw": RAW, "gt": GT}, "outputs": {"affs": PRED}, "gradients": {"affs": GRAD},
        "array_specs": specs, "checkpoint_basename": str(tmp_path / "pos"), "save_every": 7,
        "keep_n_checkpoints": 3, "log_dir": str(tmp_path / "logs"), "log_every": 4, "spawn_subprocess": True,
        "n_devices": 1, "validation_fn": validate, "validation_every": 5,
    }
    for node in (positional, by_keyword):
        config = _configuration(node)
        assert {name: config[name] for name in expected} == expected
    assert _configuration(positional) == _configuration(by_keyword)
    # daskseg's own arguments come after gunpowder's, by keyword only
    with pytest.raises(TypeError):
        gp.jax.Train(*values.values(), 0)


def test_tutorial_tensorflow_order_still_recognised(tmp_path):
    """The tutorial's gp.tensorflow.Train(graph, optimizer, loss, inputs=..., ...) order ports unchanged."""
    optimizer = optax.sgd(0.1)
    train = gp.jax.Train(TINY, optimizer, "mse", {"raw": RAW, "gt_affs": GT, "loss_weights": W}, {"pred_affs": PRED},
                         checkpoint_basename=str(tmp_path / "tf"), save_every=3)
    assert train.inputs == {"raw": RAW, "gt_affs": GT, "loss_weights": W} and train.outputs == {"pred_affs": PRED}
    assert train.model.optimizer is optimizer and train.save_every == 3
    with pytest.raises(TypeError, match="multiple values.*inputs"):
        gp.jax.Train(TINY, optimizer, "mse", {"raw": RAW}, inputs={"raw": RAW})
    with pytest.raises(TypeError, match="by keyword"):
        gp.jax.Train(TINY, optimizer, "mse", {"raw": RAW}, {"pred_affs": PRED}, {}, {})


@pytest.mark.slow
def test_data_parallel_on_two_host_devices(tmp_path):
    """n_devices=2 with two (forced) CPU devices: the batch is split, gradients averaged with pmean."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import jax, numpy as np
        assert jax.local_device_count() == 2, jax.devices()
        import daskseg as gp
        from test_train import PerVoxelLinear, _source, _request, RAW, GT, PRED
        train = gp.jax.Train(PerVoxelLinear(), inputs={{"raw": RAW, "gt": GT}}, outputs={{"affs": PRED}},
                             checkpoint_basename={str(tmp_path / "dp")!r}, n_devices=2)
        pipeline = _source() + gp.Stack(4) + train
        losses = []
        with gp.build(pipeline):
            for _ in range(10):
                batch = pipeline.request_batch(_request((PRED,)))
                losses.append(batch.loss)
        assert batch[PRED].data.shape == (4, 3, 4, 24, 24), batch[PRED].data.shape
        assert losses[-1] < 0.5 * losses[0], losses
        # the Flax U-Net on the same path: parameters stay replicated, checkpoints hold one copy
        from test_train import TINY, W, GRAD
        unet = gp.jax.Train(TINY, inputs={{"raw": RAW, "gt_affs": GT, "loss_weights": W}},
                            outputs={{"pred_affs": PRED}}, gradients={{"pred_affs": GRAD}},
                            checkpoint_basename={str(tmp_path / "unet")!r}, n_devices=2, save_every=2)
        pipeline = _source() + gp.Stack(2) + unet
        with gp.build(pipeline):
            for _ in range(2):
                batch = pipeline.request_batch(_request((PRED, GRAD)))
        assert batch[PRED].data.shape == batch[GRAD].data.shape == (2, 3, 4, 24, 24)
        from daskseg.jax.checkpoint import load_checkpoint
        state = load_checkpoint({str(tmp_path / "unet_checkpoint_2")!r}).state
        assert state["params"]["head"]["kernel"].shape == (1, 1, 1, 4, 3)
        print("ok")
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_resuming_from_a_pickle_needs_allow_pickle(tmp_path):
    """A pickled checkpoint (gunpowder's format, daskseg's before format 2) resumes only when trusted."""
    import pickle

    trained, _ = _train(tmp_path / "a" / "m", 2, save_every=2)
    state = ckpt.load_checkpoint(ckpt.checkpoint_name(str(tmp_path / "a" / "m"), 2)).state
    os.makedirs(tmp_path / "b")
    with open(tmp_path / "b" / "m_checkpoint_2", "wb") as f:  # daskseg's old pickled format
        pickle.dump({"format": ckpt.FORMAT, "version": 1, "iteration": 2, "state": state, "meta": {}}, f)
    with pytest.raises(ckpt.CheckpointPickleError, match="m_checkpoint_2' is a pickle"):
        _train(tmp_path / "b" / "m", 1)
    resumed, (batch,) = _train(tmp_path / "b" / "m", 1, allow_pickle=True)
    straight, _ = _train(tmp_path / "a" / "m", 1)
    assert batch.iteration == 3
    new = ckpt.load_checkpoint(ckpt.checkpoint_name(str(tmp_path / "b" / "m"), 3))  # written in the safe format
    ref = ckpt.load_checkpoint(ckpt.checkpoint_name(str(tmp_path / "a" / "m"), 3))
    for x, y in zip(jax.tree.leaves(new.state), jax.tree.leaves(ref.state)):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_output_roi_snaps_an_odd_world_shape_to_the_voxel_grid():
    """Output 45 at voxel size 1 (odd in world units): the margin is floored in whole voxels."""
    from daskseg.jax.outputs import output_roi

    roi = output_roi((3, 45, 45), gp.Coordinate(1, 1, 1), gp.Roi((0, 10, 20), (9, 55, 56)))
    assert roi == gp.Roi((3, 15, 25), (3, 45, 45))  # margins (9-3)//2, (55-45)//2, (56-45)//2
    # voxel size 2: 9 output voxels in 20 input voxels, 5 voxels (10 nm) margin before
    roi = output_roi((9,), gp.Coordinate(2), gp.Roi((4,), (40,)))
    assert roi == gp.Roi((14,), (18,)) and roi.is_aligned((2,))


class CropIdentity(GenericJaxModel):
    """Output: a * raw + b over the input's central (3, 45, 45) voxels; a=1, b=0 at the first step."""

    def __init__(self):
        super().__init__(True)

    def initialize(self, rng_key, inputs):
        return {"a": jnp.ones(()), "b": jnp.zeros(())}

    def forward(self, params, inputs):
        return {"out": params["a"] * inputs["raw"][3:6, 5:50, 5:50] + params["b"]}

    def train_step(self, params, inputs, pmapped):
        def loss_fn(p):
            pred = self.forward(p, inputs)["out"]
            return jnp.mean((pred - inputs["gt"]) ** 2), pred

        (loss, pred), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), {"out": pred}, loss


def test_odd_output_shape_at_voxel_size_one_is_placed_and_cropped(tmp_path):
    """Issue 11 item 19: output 45 at voxel size 1 used to raise '(45, 45, 45) is not divisible by (2, 2, 2)'."""
    raw = np.arange(9 * 55 * 55, dtype=np.float32).reshape(9, 55, 55) / (9 * 55 * 55)
    gt = np.zeros((3, 45, 45), np.float32)
    source = ArraysSource({RAW: raw, GT: np.zeros_like(raw)})
    train = gp.jax.Train(CropIdentity(), inputs={"raw": RAW, "gt": GT}, outputs={"out": PRED},
                         checkpoint_basename=str(tmp_path / "crop"), save_every=100)
    pipeline = source + train
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (9, 55, 55)))
    request[GT] = gp.ArraySpec(roi=gp.Roi((3, 5, 5), gt.shape))
    small = gp.Roi((4, 7, 7), (1, 41, 41))  # smaller than the output: placed centred, then cropped
    request[PRED] = gp.ArraySpec(roi=small)
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert batch[PRED].spec.roi == small
    np.testing.assert_allclose(batch[PRED].data, raw[4:5, 7:48, 7:48], rtol=1e-6)


def _logged(path) -> list[int]:
    with open(path) as f:
        return [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]


@pytest.fixture
def python_ctrl_c_handler():
    """Python's own Ctrl-C handler for one test, whatever an imported library installed before it."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_right_after_a_checkpoint_keeps_its_log_row(tmp_path, python_ctrl_c_handler):
    """Ctrl-C arriving while a step checkpoints (here: from the validation call after the save) is
    delivered after the step: its row is logged, and log and checkpoints agree."""
    import signal

    def interrupt_at_3(model, state):
        signal.raise_signal(signal.SIGINT)  # as a terminal's Ctrl-C, to this (the main) thread

    basename = tmp_path / "m"
    with pytest.raises(KeyboardInterrupt):
        _train(basename, 6, save_every=3, validation_fn=interrupt_at_3, validation_every=3)
    assert [i for i, _ in ckpt.list_checkpoints(str(basename))] == [3]
    assert _logged(tmp_path / "m_log.csv") == [1, 2, 3]
    resumed, _ = _train(basename, 2, save_every=3)
    assert resumed.iteration == 5
    assert _logged(tmp_path / "m_log.csv") == [1, 2, 3, 4, 5]


def test_a_second_process_on_the_same_basename_is_refused_while_training(tmp_path):
    """The basename is locked from setup to teardown; another process gets a CheckpointLockedError
    naming this pid, and may train on it once this pipeline is torn down."""
    basename = str(tmp_path / "m")
    probe = textwrap.dedent(f"""
        from daskseg.jax.checkpoint import CheckpointLockedError, lock_basename
        try:
            with lock_basename({basename!r}):
                print("acquired")
        except CheckpointLockedError as e:
            print("refused:", e)
    """)

    def other_process() -> str:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    train = gp.jax.Train(TINY, optimizer=optax.adam(1e-3), inputs={"raw": RAW, "gt_affs": GT, "loss_weights": W},
                         checkpoint_basename=basename)
    pipeline = _source() + train
    with gp.build(pipeline):
        pipeline.request_batch(_request())
        refused = other_process()
        assert refused.startswith("refused:") and f"pid {os.getpid()}" in refused and basename in refused, refused
        with gp.build(pipeline):  # nested build in this process: the same run, no refusal
            pipeline.request_batch(_request())
    assert other_process() == "acquired"
    assert train.iteration == 2
