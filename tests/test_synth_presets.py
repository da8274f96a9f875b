"""The data presets (issue 16 item 1): easy is the first generator, cremi-like and hard are EM-like.

The parts of the EM-like raw are tested on hand-made volumes: membrane ink per contact, bad
sections, organelles inside their objects.
"""

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage as ndi

from daskseg.cli import main
from daskseg.errors import SynthError
from daskseg.io import open_dataset
from daskseg.segment.stats import label_statistics
from daskseg.synth import DATA_PRESETS, DEFAULT_PRESET, LABELS_DATASET, RAW_DATASET, make_sample
from daskseg.synth.imaging import image
from daskseg.synth.membranes import membrane_ink
from daskseg.synth.organelles import mitochondria, vesicle_clouds

SHAPE = (16, 160, 160)


@pytest.fixture(scope="module")
def samples():
    return {p: make_sample(SHAPE, seed=2, preset=p) for p in DATA_PRESETS}


def test_presets_are_deterministic_from_the_seed(samples):
    raw, labels = samples["cremi-like"]
    raw2, labels2 = make_sample(SHAPE, seed=2, preset="cremi-like")
    np.testing.assert_array_equal(raw, raw2)
    np.testing.assert_array_equal(labels, labels2)
    raw3, labels3 = make_sample(SHAPE, seed=3, preset="cremi-like")
    assert not np.array_equal(labels, labels3) and np.mean(raw != raw3) > 0.5


def test_easy_is_the_library_default_and_cremi_like_the_cli_default(samples):
    raw, labels = make_sample(SHAPE, seed=2)
    np.testing.assert_array_equal(raw, samples["easy"][0])
    np.testing.assert_array_equal(labels, samples["easy"][1])
    assert DEFAULT_PRESET == "cremi-like"


def test_every_preset_labels_every_voxel_with_connected_objects(samples):
    for preset, (raw, labels) in samples.items():
        assert raw.dtype == np.uint8 and labels.dtype == np.uint64 and raw.shape == labels.shape == SHAPE
        ids = np.unique(labels)
        assert ids[0] == 1 and np.array_equal(ids, np.arange(1, len(ids) + 1)), preset
        for i, box in enumerate(ndi.find_objects(labels.astype(np.int64))):
            if box is not None:
                assert ndi.label(labels[box] == i + 1)[1] == 1, (preset, i + 1)


def test_em_presets_are_mostly_thin_processes_and_easy_is_not(samples):
    stats = {p: label_statistics(labels, (40, 4, 4)) for p, (_, labels) in samples.items()}
    assert stats["easy"]["thin_fraction"] < 0.4
    for preset in ("cremi-like", "hard"):
        # axons 50-200 nm across: most voxels in cross-sections thinner than 200 nm
        assert stats[preset]["thin_fraction"] > 0.6, stats[preset]
        assert 50 < stats[preset]["diameter_percentiles_nm"][50.0] < 200
        assert stats[preset]["objects"] > 1.5 * stats["easy"]["objects"]
    assert stats["hard"]["diameter_percentiles_nm"][50.0] < stats["cremi-like"]["diameter_percentiles_nm"][50.0]


def test_a_few_thick_dendrites_come_with_the_cremi_like_preset():
    _, labels = make_sample((12, 200, 200), seed=0, preset="cremi-like", density=1e-3, dendrite_density=2.0)
    d = label_statistics(labels, (40, 4, 4))["diameter_percentiles_nm"]
    assert d[95.0] > 400  # dendrites are ~0.6 µm across
    _, no_dendrites = make_sample((12, 200, 200), seed=0, preset="cremi-like", dendrite_density=0.0)
    assert label_statistics(no_dendrites, (40, 4, 4))["diameter_percentiles_nm"][95.0] < 300


def test_overrides_take_effect_and_bad_ones_raise():
    a, _ = make_sample((8, 64, 64), seed=1, preset="cremi-like", noise=0.0)
    b, _ = make_sample((8, 64, 64), seed=1, preset="cremi-like", noise=0.3)
    assert np.std(b.astype(float) - a) > 20
    with pytest.raises(SynthError, match="unknown data preset"):
        make_sample((8, 64, 64), preset="medium")
    with pytest.raises(SynthError, match="membrane_colour"):
        make_sample((8, 64, 64), preset="cremi-like", membrane_colour=1)


def test_cli_preset_option(tmp_path):
    runner = CliRunner()
    for preset in ("easy", None):
        args = ["synth", str(tmp_path / str(preset)), "--shape", "6,48,48", "--names", "A"]
        result = runner.invoke(main, args + (["--preset", preset] if preset else []))
        assert result.exit_code == 0, result.output
        raw = open_dataset(result.output.split()[0], RAW_DATASET).read()
        labels = open_dataset(result.output.split()[0], LABELS_DATASET).read()
        expected = make_sample((6, 48, 48), seed=0, preset=preset or "cremi-like")
        np.testing.assert_array_equal(raw, expected[0])
        np.testing.assert_array_equal(labels, expected[1])
    bad = runner.invoke(main, ["synth", str(tmp_path / "bad"), "--shape", "6,48,48", "--preset", "medium"])
    assert bad.exit_code != 0 and "medium" in bad.output


# --- the parts, on hand-made volumes ------------------------------------------------------------


def _halves() -> np.ndarray:
    labels = np.ones((2, 8, 12), np.uint64)
    labels[:, :, 6:] = 2
    return labels


def test_membrane_ink_is_drawn_on_the_contact_two_or_four_voxels_thick():
    rng = np.random.default_rng(0)
    thin = membrane_ink(rng, _halves(), (0.8, 0.8), 0.0, (0.1, 0.1), 0.0, 0.0)
    assert np.array_equal(np.flatnonzero(thin[0, 0]), [5, 6]) and np.allclose(thin[thin > 0], 0.8)
    thick = membrane_ink(rng, _halves(), (0.8, 0.8), 0.0, (0.1, 0.1), 1.0, 0.0)
    assert np.array_equal(np.flatnonzero(thick[0, 0]), [4, 5, 6, 7])
    faint = membrane_ink(rng, _halves(), (0.8, 0.8), 1.0, (0.05, 0.1), 0.0, 0.0)
    assert 0.05 <= faint.max() <= 0.1  # a tight contact: barely visible
    nothing = membrane_ink(rng, np.ones((2, 8, 8), np.uint64), (0.8, 0.8), 0.0, (0.1, 0.1), 0.0, 0.3)
    assert not nothing.any()


def test_membrane_ink_is_one_value_per_contact():
    labels = np.ones((1, 6, 30), np.uint64)
    labels[:, :, 10:20] = 2
    labels[:, :, 20:] = 3
    ink = membrane_ink(np.random.default_rng(4), labels, (0.2, 1.0), 0.0, (0.1, 0.1), 0.0, 0.0)
    first, second = ink[0, :, 9:11], ink[0, :, 19:21]
    assert np.ptp(first) == 0 and np.ptp(second) == 0 and first.max() != second.max()


def _image(raw: np.ndarray, **kw):
    args = dict(blur=(0, 0, 0), noise=0.0, gain_sd=0.0, offset_sd=0.0, shading=0.0, low_contrast=0.0,
                missing=0.0, shifted=0.0, max_shift=3)
    args.update(kw)
    return image(np.random.default_rng(0), raw.copy(), **args)


def test_bad_sections_low_contrast_missing_and_shifted():
    raw = np.random.default_rng(1).uniform(0.2, 0.8, (4, 20, 20)).astype(np.float32)
    clean, bad = _image(raw)
    assert bad == {"low_contrast": [], "missing": [], "shifted": []}
    assert np.abs(clean.astype(float) - 255 * raw).max() <= 0.5
    low, bad = _image(raw, low_contrast=1.0)
    assert bad["low_contrast"] == [0, 1, 2, 3]
    ratio = low.astype(float).std(axis=(1, 2)) / clean.astype(float).std(axis=(1, 2))
    assert np.all((ratio > 0.2) & (ratio < 0.55))
    missing, bad = _image(raw, missing=1.0)
    assert bad["missing"] == [0, 1, 2, 3] and not missing.any()  # lost: zeros
    shifted, bad = _image(raw, shifted=1.0)
    assert bad["shifted"] == [0, 1, 2, 3]
    moved = 0
    for k in range(4):
        matches = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if np.array_equal(shifted[k, 3:-3, 3:-3], np.roll(clean[k], (dy, dx), (0, 1))[3:-3, 3:-3])]
        assert matches, k
        moved += matches[0] != (0, 0)
    assert moved >= 2


def test_organelles_stay_inside_their_object_and_darken_it():
    labels = _halves().repeat(3, axis=0).repeat(20, axis=1).repeat(20, axis=2)  # (6, 160, 240)
    vs = np.array([40.0, 4.0, 4.0])
    # a straight process along z in object 1 with radius 120 nm
    pts = np.stack([np.arange(0, 240, 40.0), np.full(6, 320.0), np.full(6, 240.0)], 1)
    polylines = [(0, pts, np.full(6, 120.0))]
    raw = np.full(labels.shape, 0.7, np.float32)
    mito = mitochondria(np.random.default_rng(0), raw, labels, polylines, vs, density=1e5)
    assert mito.any() and np.all(labels[mito] == 1)
    assert raw[mito].max() < 0.7 and np.all(raw[~mito] == np.float32(0.7))
    assert len(np.unique(np.round(raw[mito], 3))) >= 2  # a rim and cristae, not a flat blob
    raw = np.full(labels.shape, 0.7, np.float32)
    rings = vesicle_clouds(np.random.default_rng(0), raw, labels, polylines, vs, density=1e5)
    assert rings.any() and np.all(labels[rings] == 1) and np.all(raw[rings] < 0.7)
