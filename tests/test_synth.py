"""Synthetic CREMI-like samples: deterministic, neuron-like (long, touching) and learnable."""

import numpy as np
import pytest
from ome_checks import check_output, validate_ome
from scipy import ndimage as ndi

from daskseg.errors import DaskSegError, SynthError
from daskseg.io import list_datasets, open_dataset
from daskseg.synth import (
    LABELS_DATASET,
    OME_LABELS_DATASET,
    PRESETS,
    RAW_DATASET,
    VOXEL_SIZE,
    make_sample,
    write_cremi_samples,
    write_sample,
)


@pytest.fixture(scope="module")
def sample():
    return make_sample("small", seed=3)


def test_same_seed_same_sample_other_seed_other_sample(sample):
    raw, labels = sample
    raw2, labels2 = make_sample("small", seed=3)
    np.testing.assert_array_equal(raw, raw2)
    np.testing.assert_array_equal(labels, labels2)
    raw3, labels3 = make_sample("small", seed=4)
    assert not np.array_equal(labels, labels3)
    assert np.mean(raw != raw3) > 0.5


def test_types_shapes_and_ids(sample):
    raw, labels = sample
    assert raw.dtype == np.uint8 and labels.dtype == np.uint64
    assert raw.shape == labels.shape == PRESETS["small"]
    assert labels.min() >= 1  # every voxel belongs to an object
    ids = np.unique(labels)
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
    assert len(ids) >= 8


def test_every_object_is_one_face_connected_piece(sample):
    _, labels = sample
    for i, box in enumerate(ndi.find_objects(labels.astype(np.int64)), start=1):
        _, pieces = ndi.label(labels[box] == i)
        assert pieces == 1, f"object {i} is in {pieces} pieces"


def test_objects_are_elongated_processes_not_blobs(sample):
    _, labels = sample
    ratios, sections = [], []
    for i, box in enumerate(ndi.find_objects(labels.astype(np.int64)), start=1):
        coords = np.argwhere(labels[box] == i) * np.asarray(VOXEL_SIZE)
        if len(coords) < 100:
            continue
        spread = np.linalg.eigvalsh(np.cov(coords.T))  # variances along the principal axes, nm²
        ratios.append(np.sqrt(spread[-1] / spread[0]))
        sections.append(box[0].stop - box[0].start)
    # a ball has ratio 1; a rod of length L and diameter D about 1.15 L / D
    assert np.median(ratios) > 2.0
    assert np.median(sections) >= PRESETS["small"][0] / 3


def test_objects_touch_their_neighbours(sample):
    _, labels = sample
    pairs = set()
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        change = a[1:] != a[:-1]
        lo = np.minimum(a[1:][change], a[:-1][change])
        hi = np.maximum(a[1:][change], a[:-1][change])
        pairs |= set(zip(lo.tolist(), hi.tolist()))
    neighbours = np.bincount(np.array(list(pairs)).ravel())[1:]
    assert (neighbours >= 1).all()
    assert np.mean(neighbours) >= 3


def test_raw_is_dark_on_label_boundaries_and_bright_inside(sample):
    raw, labels = sample
    boundary = np.zeros(labels.shape, bool)
    for axis in (1, 2):  # within sections, where membranes are drawn
        lo = tuple(slice(0, -1) if a == axis else slice(None) for a in range(3))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        change = labels[lo] != labels[hi]
        boundary[lo] |= change
        boundary[hi] |= change
    interior = ~ndi.binary_dilation(boundary, iterations=3)
    assert raw[boundary].mean() < raw[interior].mean() - 50
    # and raw is not trivially the labels: texture and noise inside objects
    assert raw[interior].std() > 5


def test_number_of_objects_grows_with_the_volume():
    def count(shape):
        return np.mean([make_sample(shape, seed=s)[1].max() for s in (0, 1)])

    small, big = count((20, 96, 96)), count((20, 192, 192))
    assert 2.5 < big / small < 6  # four times the volume


def test_other_voxel_sizes_are_supported():
    raw, labels = make_sample((10, 20, 20), seed=0, voxel_size=(8, 8, 8))
    assert raw.shape == labels.shape == (10, 20, 20)
    assert labels.min() >= 1


@pytest.mark.parametrize("name", ["sample.hdf", "sample.zarr"])
def test_write_sample_as_cremi_does(tmp_path, name):
    path = tmp_path / name
    raw, labels = write_sample(path, (8, 32, 40), seed=1, offset=(400, 40, 80))
    if name.endswith(".zarr"):  # the ground truth is a label of the raw; the CREMI name redirects to it
        assert list_datasets(path) == [RAW_DATASET, OME_LABELS_DATASET]
        assert list_datasets(path, redirects=True) == [LABELS_DATASET, RAW_DATASET, OME_LABELS_DATASET]
    else:
        assert sorted(list_datasets(path)) == sorted([RAW_DATASET, LABELS_DATASET])
    for dataset, expected in ((RAW_DATASET, raw), (LABELS_DATASET, labels)):
        ds = open_dataset(path, dataset)
        assert ds.voxel_size == VOXEL_SIZE
        assert tuple(ds.roi.offset) == (400, 40, 80)
        assert tuple(ds.roi.shape) == (8 * 40, 32 * 4, 40 * 4)
        assert ds.dtype == expected.dtype
        np.testing.assert_array_equal(ds.read(), expected)
        ds.close()


def test_zarr_sample_is_an_ome_image_listing_its_ground_truth(tmp_path):
    path = tmp_path / "sample.zarr"
    write_sample(path, (8, 32, 40), seed=1, offset=(400, 40, 80))
    check_output(path, RAW_DATASET, VOXEL_SIZE, (400, 40, 80), shape=(8, 32, 40))
    check_output(path, OME_LABELS_DATASET, VOXEL_SIZE, (400, 40, 80), label=True, shape=(8, 32, 40))
    image = validate_ome(path, RAW_DATASET)
    assert image.labels is not None and image.labels.label_paths == ["neuron_ids"]
    # the CREMI path opens the same data through the redirect
    assert open_dataset(path, LABELS_DATASET).array_name == f"{OME_LABELS_DATASET}/s0"


def test_default_preset_holds_the_tutorial_training_request():
    # the CREMI net input is 84x268x268; a rotating ElasticAugment asks upstream for ~84x380x380
    assert all(have >= need for have, need in zip(PRESETS["default"], (84, 380, 380)))


def test_bad_arguments_raise_synth_errors():
    with pytest.raises(SynthError, match="preset"):
        make_sample("huge")
    with pytest.raises(SynthError, match="3 sizes"):
        make_sample((10, 10))
    with pytest.raises(SynthError, match="voxel_size"):
        make_sample("small", voxel_size=(40, 0, 4))
    with pytest.raises(ValueError, match="density"):
        make_sample("small", density=0)
    assert issubclass(SynthError, DaskSegError)


def test_write_cremi_samples_writes_one_sample_per_name(tmp_path):
    paths = write_cremi_samples(tmp_path / "data", (6, 24, 24), names=("A", "B"), seed=5, extension=".zarr")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["sample_A.zarr", "sample_B.zarr"]
    a = open_dataset(paths[0], LABELS_DATASET).read()
    b = open_dataset(paths[1], LABELS_DATASET).read()
    np.testing.assert_array_equal(a, make_sample((6, 24, 24), seed=5)[1])
    np.testing.assert_array_equal(b, make_sample((6, 24, 24), seed=6)[1])
    with pytest.raises(SynthError, match="extension"):
        write_cremi_samples(tmp_path, (6, 24, 24), extension=".tif")


def test_write_cremi_samples_refuses_existing_paths_unless_overwrite(tmp_path):
    from daskseg.errors import SampleExistsError

    (tmp_path / "sample_B.zarr").mkdir(parents=True)
    with pytest.raises(SampleExistsError, match="sample_B.zarr already exists: nothing was written"):
        write_cremi_samples(tmp_path, (6, 24, 24), names=("A", "B"), extension=".zarr")
    assert not (tmp_path / "sample_A.zarr").exists()
    with pytest.raises(SampleExistsError, match="sample_B.zarr"):
        write_sample(tmp_path / "sample_B.zarr", (6, 24, 24))
    paths = write_cremi_samples(tmp_path, (6, 24, 24), names=("A", "B"), extension=".zarr", overwrite=True)
    assert open_dataset(paths[1], "volumes/raw").read().shape == (6, 24, 24)
