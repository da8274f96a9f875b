"""NoiseAugment: gaussian statistics, salt and pepper fractions, clipping, seeds, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("NA_RAW")
VS = (4, 4)


def _run(tmp_path, raw, node, seed=1):
    path = tmp_path / "na.zarr"
    write_array(path, "raw", raw, VS)
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + node
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0), np.array(raw.shape) * VS))
    with gp.build(pipeline):
        return pipeline.request_batch(request)[RAW]


def test_gaussian_mean_and_variance(tmp_path):
    raw = np.full((200, 200), 0.5, dtype=np.float32)
    out = _run(tmp_path, raw, gp.NoiseAugment(RAW, var=0.004)).data
    assert out.dtype == np.float32 and out.shape == raw.shape
    noise = out.astype(np.float64) - 0.5
    # 40000 samples of N(0, 0.004): mean within ~5 standard errors, variance within 5%
    assert abs(noise.mean()) < 5 * np.sqrt(0.004 / noise.size)
    assert abs(noise.var() / 0.004 - 1) < 0.05


def test_gaussian_clip(tmp_path):
    raw = np.full((50, 50), 0.95, dtype=np.float32)
    clipped = _run(tmp_path, raw, gp.NoiseAugment(RAW, var=0.01)).data
    assert clipped.max() == 1.0 and clipped.min() >= 0
    free = _run(tmp_path, raw, gp.NoiseAugment(RAW, var=0.01, clip=False)).data
    assert free.max() > 1.0
    # the same seed draws the same noise: clipping is the only difference
    np.testing.assert_array_equal(clipped, np.clip(free, 0, 1))


def test_salt_and_pepper_fractions(tmp_path):
    raw = np.full((200, 200), 0.5, dtype=np.float32)
    out = _run(tmp_path, raw, gp.NoiseAugment(RAW, mode="s&p", amount=0.1, salt_vs_pepper=0.25)).data
    changed = out != 0.5
    assert set(np.unique(out[changed])) <= {0.0, 1.0}
    assert abs(changed.mean() - 0.1) < 0.01
    assert abs((out == 1).sum() / changed.sum() - 0.25) < 0.04
    salt = _run(tmp_path, raw, gp.NoiseAugment(RAW, mode="salt", amount=0.2)).data
    assert set(np.unique(salt)) == {0.5, 1.0}
    pepper = _run(tmp_path, np.full((20, 20), -0.5, np.float32), gp.NoiseAugment(RAW, mode="pepper", amount=0.5)).data
    assert set(np.unique(pepper)) == {-0.5, -1.0}  # negative data: pepper is -1


def test_seeded(tmp_path):
    raw = np.random.default_rng(0).random((30, 30)).astype(np.float32)
    node = gp.NoiseAugment(RAW, mode="speckle", var=0.05)
    a = _run(tmp_path, raw, node, seed=3).data
    np.testing.assert_array_equal(a, _run(tmp_path, raw, node, seed=3).data)
    assert not np.array_equal(a, _run(tmp_path, raw, node, seed=4).data)


def test_poisson_keeps_range(tmp_path):
    raw = np.random.default_rng(0).random((30, 30)).astype(np.float32)
    out = _run(tmp_path, raw, gp.NoiseAugment(RAW, mode="poisson")).data
    assert out.min() >= 0 and out.max() <= 1 and not np.array_equal(out, raw)
    assert abs(out.mean() - raw.mean()) < 0.01


def test_argument_and_input_checks(tmp_path):
    with pytest.raises(ValueError, match="unknown mode"):
        gp.NoiseAugment(RAW, mode="blur")
    with pytest.raises(TypeError, match="amount"):
        gp.NoiseAugment(RAW, mode="gaussian", amount=0.1)
    with pytest.raises(SpecError, match="Normalize"):
        _run(tmp_path, np.zeros((4, 4), np.uint8), gp.NoiseAugment(RAW))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        _run(tmp_path, np.full((4, 4), 3, np.float32), gp.NoiseAugment(RAW))


def test_probability_zero_leaves_data(tmp_path):
    raw = np.random.default_rng(0).random((10, 10)).astype(np.float32)
    np.testing.assert_array_equal(_run(tmp_path, raw, gp.NoiseAugment(RAW, p=0.0)).data, raw)
    with pytest.raises(ValueError, match="p must"):
        gp.NoiseAugment(RAW, p=2)
