"""Shape arithmetic of the U-Net, checked against hand-computed CREMI shapes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daskseg.models import ShapeError, UNetConfig, UNetShapes


def cremi() -> UNetShapes:
    return UNetConfig().shapes


def test_cremi_training_and_prediction_nets():
    s = cremi()
    # level 0: 84-4=80, /1; 268-4=264, /3=88 ... bottom 68x4x4; up: 4*3=12-4=8, 24-4=20, 60-4=56
    assert s.output_shape((84, 268, 268)) == (56, 56, 56)
    assert s.output_shape((120, 322, 322)) == (92, 110, 110)
    assert s.context == (28, 212, 212)
    assert s.step == (1, 27, 27)


def test_level_shapes_by_hand():
    levels = cremi().level_shapes((84, 268, 268))
    assert [lv["down"] for lv in levels] == [(80, 264, 264), (76, 84, 84), (72, 24, 24), (68, 4, 4)]
    assert [lv.get("up") for lv in levels] == [(56, 56, 56), (60, 20, 20), (64, 8, 8), None]


def test_invalid_shape_names_nearest_valid():
    s = cremi()
    with pytest.raises(ShapeError) as e:
        s.output_shape((84, 270, 268))
    msg = str(e.value)
    assert "(84, 270, 268)" in msg and "dimension 1" in msg and "not divisible by 3" in msg
    assert "(84, 268, 268)" in msg and "(84, 295, 268)" in msg
    assert s.nearest_valid_input_shapes((84, 270, 268)) == ((84, 268, 268), (84, 295, 268))


def test_too_small_has_no_smaller_valid_shape():
    s = cremi()
    smaller, larger = s.nearest_valid_input_shapes((10, 10, 10))
    assert smaller is None and larger == s.min_input_shape == (29, 214, 214)
    assert s.output_shape(larger) == (1, 2, 2)
    with pytest.raises(ShapeError, match="no valid input size <= 10"):
        s.valid_input_shape((10, 300, 300), mode="floor")


def test_valid_input_shape_modes_and_output_inverse():
    s = cremi()
    assert s.valid_input_shape((84, 280, 290), mode="floor") == (84, 268, 268)
    assert s.valid_input_shape((84, 280, 290), mode="ceil") == (84, 295, 295)
    assert s.valid_input_shape((84, 280, 290), mode="nearest") == (84, 268, 295)
    assert s.input_shape_for_output((56, 56, 56)) == (84, 268, 268)
    with pytest.raises(ShapeError, match="nearest valid outputs"):
        s.input_shape_for_output((56, 60, 56))


def test_anisotropic_last_level_and_kernels():
    cfg = UNetConfig(downsample_factors=[(1, 3, 3), (1, 3, 3), (3, 3, 3)])
    s = cfg.shapes
    assert s.step == (3, 27, 27)
    shape = s.valid_input_shape((84, 268, 268))
    out = s.output_shape(shape)
    assert tuple(i - o for i, o in zip(shape, out)) == s.context
    # (1,3,3) kernels on the top level remove nothing along z there
    flat = UNetConfig(
        downsample_factors=[(1, 2, 2)],
        kernel_size_down=[[(1, 3, 3), (1, 3, 3)], [(3, 3, 3)]],
        kernel_size_up=[[(1, 3, 3)]],
    ).shapes
    # z: 5 -> 5 -> /1 -> 3 -> *1 -> 3 (skip 5, diff 2 even) -> 3 ; y: 12 -> 8 -> 4 -> 2 -> 4 (skip 8) -> 2
    assert flat.output_shape((5, 12, 12)) == (3, 2, 2)


def test_odd_crop_is_rejected():
    # factor 3 and a bottom kernel of 2 (removes 1 voxel): skip - upsampled = 3 * 1, odd, for every size
    with pytest.raises(ShapeError, match="centre-cropped by an odd 3"):
        UNetShapes([(3,)], [[(2,)], [(2,)]], [[(1,)]])


def test_bad_architecture_errors():
    with pytest.raises(ShapeError, match="kernel_size_down needs 3 levels"):
        UNetShapes([(1, 3, 3)] * 2, [[(3, 3, 3)]] * 2, [[(3, 3, 3)]] * 2)
    with pytest.raises(ValueError, match="upsampling"):
        UNetConfig(upsampling="bilinear")


@settings(max_examples=40, deadline=None)
@given(st.integers(29, 200), st.integers(214, 700), st.integers(214, 700))
def test_valid_shapes_form_a_progression_with_constant_context(z, y, x):
    s = cremi()
    shape = s.valid_input_shape((z, y, x), mode="ceil")
    assert all(a >= b for a, b in zip(shape, (z, y, x)))
    assert all(a - b < st_ for a, b, st_ in zip(shape, (z, y, x), s.step))
    out = s.output_shape(shape)
    assert tuple(i - o for i, o in zip(shape, out)) == s.context
    assert s.is_valid(tuple(a + st_ for a, st_ in zip(shape, s.step)))
