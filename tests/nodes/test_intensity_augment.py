"""IntensityAugment: identity at scale 1/shift 0, the mean-preserving map, per-section draws, clipping, seeds."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("IA_RAW")
VS = (40, 4, 4)


def _source(tmp_path, raw):
    path = tmp_path / "ia.zarr"
    write_array(path, "raw", raw, VS)
    return gp.ZarrSource(path, {RAW: "raw"})


def _raw(shape=(4, 8, 8), low=0.25, high=0.75, seed=0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def _run(tmp_path, raw, node, seed=1):
    pipeline = _source(tmp_path, raw) + node
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), np.array(raw.shape[-3:]) * VS))
    with gp.build(pipeline):
        return pipeline.request_batch(request)[RAW]


def test_scale_one_shift_zero_is_identity(tmp_path):
    raw = _raw()
    for section_wise in (False, True):
        out = _run(tmp_path, raw, gp.IntensityAugment(RAW, 1, 1, 0, 0, z_section_wise=section_wise))
        assert out.data.dtype == np.float32
        np.testing.assert_array_equal(out.data, raw)


def test_whole_array_scale_and_shift_around_mean(tmp_path):
    raw = _raw()
    out = _run(tmp_path, raw, gp.IntensityAugment(RAW, 0.8, 1.2, -0.05, 0.05)).data.astype(np.float64)
    centred = raw - raw.mean(dtype=np.float64)
    # out = mean + (a - mean) * scale + shift: one scale and one shift for all voxels
    scale = np.polyfit(centred.ravel(), out.ravel(), 1)[0]
    shift = out.mean() - raw.mean(dtype=np.float64)
    assert 0.8 <= scale <= 1.2 and -0.05 <= shift <= 0.05
    np.testing.assert_allclose(out, raw.mean(dtype=np.float64) + centred * scale + shift, atol=1e-6)


def test_z_section_wise_gives_per_section_constants(tmp_path):
    raw = _raw(shape=(6, 8, 8))
    out = _run(tmp_path, raw, gp.IntensityAugment(RAW, 0.5, 1.5, -0.1, 0.1, z_section_wise=True)).data
    scales, shifts = [], []
    for z in range(6):
        mean = raw[z].mean(dtype=np.float64)
        centred = (raw[z] - mean).ravel()
        scale = np.polyfit(centred, out[z].ravel().astype(np.float64), 1)[0]
        shift = out[z].mean(dtype=np.float64) - mean
        # within a section, one scale and one shift around the section's mean ...
        np.testing.assert_allclose(out[z].ravel(), mean + centred * scale + shift, atol=1e-6)
        scales.append(scale)
        shifts.append(shift)
    assert all(0.5 <= s <= 1.5 for s in scales) and all(-0.1 <= s <= 0.1 for s in shifts)
    # ... and different ones across sections
    assert len(set(np.round(scales, 4))) == 6 and len(set(np.round(shifts, 4))) == 6


def test_clip(tmp_path):
    raw = _raw(low=0.0, high=1.0)
    out = _run(tmp_path, raw, gp.IntensityAugment(RAW, 2, 2, 0.3, 0.3)).data
    assert out.min() == 0 and out.max() == 1
    unclipped = _run(tmp_path, raw, gp.IntensityAugment(RAW, 2, 2, 0.3, 0.3, clip=False)).data
    expected = raw.mean(dtype=np.float64) + (raw - raw.mean(dtype=np.float64)) * 2 + 0.3
    np.testing.assert_allclose(unclipped, expected, atol=1e-6)
    np.testing.assert_allclose(out, np.clip(expected, 0, 1), atol=1e-6)


def test_same_seed_same_result(tmp_path):
    raw = _raw()
    node = gp.IntensityAugment(RAW, 0.5, 1.5, -0.1, 0.1, z_section_wise=True)
    a = _run(tmp_path, raw, node, seed=7).data
    b = _run(tmp_path, raw, node, seed=7).data
    c = _run(tmp_path, raw, node, seed=8).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rejects_non_float_and_out_of_range(tmp_path):
    with pytest.raises(SpecError, match="Normalize"):
        _run(tmp_path, (_raw() * 255).astype(np.uint8), gp.IntensityAugment(RAW, 1, 1, 0, 0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _run(tmp_path, _raw(low=0.5, high=2.0), gp.IntensityAugment(RAW, 1, 1, 0, 0))
    with pytest.raises(ValueError, match="scale_min"):
        gp.IntensityAugment(RAW, 2, 1, 0, 0)


def test_slab_per_channel_and_probability(tmp_path):
    raw = _raw(shape=(2, 3, 4, 4))  # two channels
    out = _run(tmp_path, raw, gp.IntensityAugment(RAW, 0.5, 1.5, -0.1, 0.1, slab=(1, -1, -1, -1))).data
    shifts = []
    for c in range(2):
        mean = raw[c].mean(dtype=np.float64)
        centred = (raw[c] - mean).ravel()
        scale = np.polyfit(centred, out[c].ravel().astype(np.float64), 1)[0]
        shift = out[c].mean(dtype=np.float64) - mean
        np.testing.assert_allclose(out[c].ravel(), mean + centred * scale + shift, atol=1e-6)
        shifts.append(shift)
    assert shifts[0] != shifts[1]
    never = _run(tmp_path, raw, gp.IntensityAugment(RAW, 0.5, 1.5, -0.1, 0.1, p=0.0)).data
    np.testing.assert_array_equal(never, raw)
    with pytest.raises(ValueError, match="mutually exclusive"):
        gp.IntensityAugment(RAW, 1, 1, 0, 0, z_section_wise=True, slab=(1, -1, -1))


def test_clip_false_skips_range_check(tmp_path):
    raw = _raw(low=0.5, high=2.0)
    out = _run(tmp_path, raw, gp.IntensityAugment(RAW, 1, 1, 0.5, 0.5, clip=False)).data
    np.testing.assert_allclose(out, raw + 0.5, rtol=1e-6)
