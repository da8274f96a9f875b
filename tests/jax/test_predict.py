"""gp.jax.Predict and the inference helper: checkpoints, ROIs grown by the context, scanning."""

from __future__ import annotations

import pickle

import jax
import numpy as np
import pytest
from conftest import TINY, ArraysSource

import daskseg as gp
from daskseg.jax import checkpoint as ckpt
from daskseg.jax.inference import Predictor, load_predictor
from daskseg.jax.model import FlaxUNetModel
from daskseg.models import NetConfig, ShapeError

RAW, PRED = gp.ArrayKey("RAW"), gp.ArrayKey("PRED")


@pytest.fixture
def trained(tmp_path):
    """A network config and a checkpoint whose parameters differ from the initial ones."""
    cfg = NetConfig("test_net", TINY.shapes.valid_input_shape((16, 40, 40)), TINY)
    cfg.save(tmp_path / "test_net_config.json")
    model = FlaxUNetModel(cfg)
    state = model.initialize()
    state["params"] = jax.tree.map(lambda p: p * 1.1 + 0.01, state["params"])
    ckpt.save_checkpoint(str(tmp_path / "train_net"), 7, state)
    return cfg, state, tmp_path


def _volume(shape=(24, 88, 88), seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_predictor_matches_plain_flax_and_pickles(trained):
    cfg, state, path = trained
    predictor = load_predictor(path / "test_net_config.json", path / "train_net")  # basename: newest checkpoint
    raw = _volume(cfg.input_shape)
    out = predictor(raw)
    assert out.shape == (3, *cfg.output_shape)
    plain = FlaxUNetModel(cfg.architecture.replace(conv_impl="xla"))
    ref = np.asarray(plain.forward(state, {"raw": raw})["pred_affs"])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    again = pickle.loads(pickle.dumps(predictor))
    np.testing.assert_array_equal(again(raw), out)
    assert predictor.context == TINY.context and predictor.output_shape == cfg.output_shape
    with pytest.raises(ShapeError, match="Nearest valid"):
        predictor(raw[:, :-1])


def test_gunpowder_style_checkpoint_of_bare_parameters(trained, tmp_path):
    cfg, state, path = trained
    bare = tmp_path / "gp_checkpoint_3"
    with open(bare, "wb") as f:
        pickle.dump(jax.tree.map(np.asarray, state["params"]), f)
    raw = _volume(cfg.input_shape)
    with pytest.raises(ckpt.CheckpointPickleError, match="allow_pickle=True"):
        load_predictor(cfg, bare)  # a pickle can run code: refused unless asked for
    np.testing.assert_allclose(
        load_predictor(cfg, bare, allow_pickle=True)(raw), load_predictor(cfg, path / "train_net_checkpoint_7")(raw),
        rtol=1e-6,
    )
    assert ckpt.load_checkpoint(str(bare), allow_pickle=True).iteration == 3


def test_predict_node_asks_for_the_context_and_places_the_output(trained):
    cfg, state, path = trained
    raw = _volume()
    source = ArraysSource({RAW: raw}, voxel_size=(40, 4, 4))
    predict = gp.jax.Predict(
        str(path / "test_net"), inputs={"raw": RAW}, outputs={"pred_affs": PRED},
        checkpoint=str(path / "train_net_checkpoint_7"),
    )
    pipeline = source + predict
    vs = gp.Coordinate((40, 4, 4))
    with gp.build(pipeline):
        # provided where the full context is available (input ROI shrunk by half the context)
        ctx = gp.Coordinate(TINY.context) * vs
        assert pipeline.spec[PRED].roi == gp.Roi((0, 0, 0), gp.Coordinate(raw.shape) * vs).grow(-ctx / 2, -ctx / 2)
        request = gp.BatchRequest()
        out_roi = gp.Roi((8 * 40, 10 * 4, 12 * 4), gp.Coordinate(cfg.output_shape) * vs)
        request[PRED] = gp.ArraySpec(roi=out_roi)
        batch = pipeline.request_batch(request)
    assert batch[PRED].spec.roi == out_roi and batch[PRED].data.shape == (3, *cfg.output_shape)
    begin = out_roi.begin / vs - gp.Coordinate(TINY.context) / 2
    crop = raw[tuple(slice(b, b + s) for b, s in zip(begin, cfg.input_shape))]
    expected = FlaxUNetModel(cfg.architecture.replace(conv_impl="xla")).forward(state, {"raw": crop})["pred_affs"]
    np.testing.assert_allclose(batch[PRED].data, np.asarray(expected), rtol=1e-5, atol=1e-6)


def test_predict_invalid_output_shape_names_nearest(trained):
    cfg, _, path = trained
    pipeline = ArraysSource({RAW: _volume()}, voxel_size=(40, 4, 4)) + gp.jax.Predict(
        cfg, inputs={"raw": RAW}, outputs={"pred_affs": PRED}, checkpoint=str(path / "train_net")
    )
    request = gp.BatchRequest()
    request[PRED] = gp.ArraySpec(roi=gp.Roi((400, 80, 80), (4 * 40, 23 * 4, 24 * 4)))
    with gp.build(pipeline):
        with pytest.raises(ShapeError, match="nearest valid output shapes"):
            pipeline.request_batch(request)


def test_tutorial_prediction_with_scan_equals_one_large_block(trained):
    """The tutorial's predict script: Scan over the volume in network-sized blocks; blocks whose
    offsets are multiples of the downsampling factors give the same result as one large block."""
    cfg, state, path = trained
    raw = _volume((24, 88, 88), seed=3)
    vs = gp.Coordinate((40, 4, 4))
    input_size = gp.Coordinate(cfg.input_shape) * vs
    output_size = gp.Coordinate(cfg.output_shape) * vs
    context = input_size - output_size
    source = ArraysSource({RAW: raw}, voxel_size=vs)
    with gp.build(source):
        raw_roi = source.spec[RAW].roi
    request = gp.BatchRequest()
    request.add(RAW, input_size)
    request.add(PRED, output_size)
    pipeline = (
        source
        + gp.jax.Predict(
            graph=str(path / "test_net_config.json"),
            checkpoint=str(path / "train_net_checkpoint_7"),
            inputs={cfg.raw: RAW},
            outputs={cfg.pred_affs: PRED},
            array_specs={PRED: gp.ArraySpec(roi=raw_roi.grow(-context / 2, -context / 2))},
        )
        + gp.Scan(reference=request)
    )
    with gp.build(pipeline):
        full = gp.BatchRequest()
        full[PRED] = gp.ArraySpec(roi=raw_roi.grow(-context / 2, -context / 2))
        batch = pipeline.request_batch(full)
    whole = Predictor(cfg.architecture.replace(conv_impl="xla"), state)(raw)
    assert batch[PRED].data.shape == whole.shape == (3, 12, 72, 72)
    np.testing.assert_allclose(batch[PRED].data, whole, rtol=1e-5, atol=1e-6)


def test_predict_with_a_gunpowder_jax_model_and_its_checkpoint(tmp_path):
    from test_train import IN_SHAPE, OUT_SHAPE, PerVoxelLinear, _source

    params = {"a": np.array([1.0, 2.0, 3.0], np.float32), "b": np.zeros(3, np.float32)}
    ckpt.save_checkpoint(str(tmp_path / "lin"), 5, params)
    raw_key = gp.ArrayKey("RAW")
    pipeline = _source() + gp.jax.Predict(
        PerVoxelLinear(is_training=False), inputs={"raw": raw_key}, outputs={"affs": PRED},
        checkpoint=str(tmp_path / "lin_checkpoint_5"),
    )
    request = gp.BatchRequest()
    request.add(raw_key, IN_SHAPE)
    request.add(PRED, OUT_SHAPE)
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    raw = batch[raw_key].data
    expected = 1 / (1 + np.exp(-params["a"][:, None, None, None] * raw[None, 6:10, 8:32, 8:32]))
    np.testing.assert_allclose(batch[PRED].data, expected, rtol=1e-5)
    assert batch[PRED].spec.roi == request[PRED].roi


def test_every_gunpowder_argument_positionally_in_gunpowder_order(tmp_path):
    """gunpowder.jax.Predict's 6 arguments, positionally in its order, configure the node as by keyword."""
    from test_train import PerVoxelLinear

    model = PerVoxelLinear(is_training=False)
    values = dict(
        model=model, inputs={"raw": RAW}, outputs={"affs": PRED}, array_specs={PRED: gp.ArraySpec(dtype=np.float32)},
        checkpoint=str(tmp_path / "lin_checkpoint_5"), spawn_subprocess=True,
    )
    positional, by_keyword = gp.jax.Predict(*values.values()), gp.jax.Predict(**values)
    for node in (positional, by_keyword):
        assert {name: getattr(node, name) for name in values} == values
    assert vars(positional) == vars(by_keyword)
    with pytest.raises(TypeError):  # daskseg's own arguments (graph, conv_impl, allow_pickle) are keyword-only
        gp.jax.Predict(*values.values(), None)
