"""DefectAugment: missing and low-contrast sections, artifacts blended from a second source, and
folded sections; only the intensities change, the same seed gives the same batch."""

from __future__ import annotations

import numpy as np
import pytest
from recording import Recorder

import daskseg as gp
from daskseg.io import write_array

RAW = gp.ArrayKey("DA_RAW")
LABELS = gp.ArrayKey("DA_LABELS")
ART = gp.ArrayKey("DA_ARTIFACTS")
ALPHA = gp.ArrayKey("DA_ALPHA")
VS = (40, 4, 4)


def _pipeline(tmp_path, augment, shape=(20, 60, 60)):
    rng = np.random.default_rng(0)
    raw = (0.25 + 0.5 * rng.random(shape)).astype(np.float32)
    labels = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape)
    path = tmp_path / "da.zarr"
    write_array(path, "raw", raw, VS)
    write_array(path, "labels", labels, VS)
    recorder = Recorder()
    pipeline = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + recorder + augment
    return pipeline, recorder, raw, labels


ROI = gp.Roi((80, 80, 80), (400, 80, 80))  # sections 2..12, y/x 20..40


def _request(seed=0):
    request = gp.BatchRequest(random_seed=seed)
    request[RAW] = gp.ArraySpec(roi=ROI)
    request[LABELS] = gp.ArraySpec(roi=ROI)
    return request


def test_missing_and_low_contrast_sections(tmp_path):
    augment = gp.DefectAugment(RAW, prob_missing=0.3, prob_low_contrast=0.3, contrast_scale=0.1)
    pipeline, _, raw, labels = _pipeline(tmp_path, augment)
    kinds = set()
    with gp.build(pipeline):
        for seed in range(3):
            batch = pipeline.request_batch(_request(seed))
            out = batch[RAW].data
            original = raw[2:12, 20:40, 20:40]
            for z in range(10):
                section, before = out[z], original[z]
                if np.array_equal(section, before):
                    kinds.add("unchanged")
                elif not section.any():
                    kinds.add("missing")
                else:
                    kinds.add("low contrast")
                    assert np.isclose(section.mean(), before.mean(), atol=1e-5)
                    assert np.allclose(section - section.mean(), 0.1 * (before - before.mean()), atol=1e-5)
            assert np.array_equal(batch[LABELS].data, labels[2:12, 20:40, 20:40])
    assert kinds == {"unchanged", "missing", "low contrast"}


def test_same_seed_identical(tmp_path):
    pipeline, _, _, _ = _pipeline(tmp_path, gp.DefectAugment(RAW, prob_missing=0.3, prob_low_contrast=0.3))
    with gp.build(pipeline):
        a = pipeline.request_batch(_request(5))[RAW].data
        b = pipeline.request_batch(_request(5))[RAW].data
    assert np.array_equal(a, b)


def test_artifacts_are_alpha_blended_from_the_artifact_source(tmp_path):
    path = tmp_path / "artifacts.zarr"
    write_array(path, "raw", np.full((4, 60, 60), 0.9, dtype=np.float32), VS)
    write_array(path, "alpha", np.full((4, 60, 60), 0.5, dtype=np.float32), VS)
    artifact_source = gp.ZarrSource(path, {ART: "raw", ALPHA: "alpha"}) + gp.RandomLocation()
    augment = gp.DefectAugment(
        RAW, prob_missing=0, prob_low_contrast=0, prob_artifact=1.0,
        artifact_source=artifact_source, artifacts=ART, artifacts_mask=ALPHA,
    )
    pipeline, _, raw, _ = _pipeline(tmp_path, augment)
    with gp.build(pipeline):
        out = pipeline.request_batch(_request())[RAW].data
    assert np.allclose(out, 0.5 * raw[2:12, 20:40, 20:40] + 0.5 * 0.9, atol=1e-6)


def test_folded_sections(tmp_path):
    augment = gp.DefectAugment(RAW, prob_missing=0, prob_low_contrast=0, prob_deform=0.5, deformation_strength=5)
    pipeline, recorder, raw, _ = _pipeline(tmp_path, augment)
    with gp.build(pipeline):
        batch = pipeline.request_batch(_request(2))
    # the request grows by the strength in the section plane
    assert recorder.requests[0][RAW].roi == ROI.grow((0, 20, 20), (0, 20, 20))
    out = batch[RAW].data
    assert out.shape == (10, 20, 20) and batch[RAW].spec.roi == ROI
    original = raw[2:12, 20:40, 20:40]
    folded = [z for z in range(10) if not np.array_equal(out[z], original[z])]
    assert folded
    for z in folded:
        # a dark line (value 0) crosses the section, everything else stays in the value range
        assert (out[z] == 0).any()
        assert out[z].max() <= raw.max() + 1e-6 and out[z].min() >= 0


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="artifact_source"):
        gp.DefectAugment(RAW, prob_artifact=0.5)
    with pytest.raises(ValueError, match="sum"):
        gp.DefectAugment(RAW, prob_missing=0.6, prob_low_contrast=0.6)
