"""Pyramids blockwise on a real LocalCluster: every level equals one computed voxel by voxel in
world coordinates (mean; non-zero mode for labels), whatever the block shape; an interrupted run
resumes; the levels are listed in the image's multiscales with their scale and translation."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from dask_fixtures import local_client
from ome_checks import check_output

from daskseg.blockwise.pyramid import plan_pyramid, pyramid
from daskseg.cli import main
from daskseg.errors import DatasetError, GeometryError
from daskseg.io import open_dataset, read_image, write_array

VS = (40, 4, 4)
OFFSET = (80, 8, 12)  # x: not a multiple of 8, so level 1 begins one voxel before the data


@pytest.fixture(scope="module")
def client():
    with local_client(n_workers=2) as c:
        yield c


def reference_level(data: np.ndarray, offset, vs, level_vs, method: str):
    """The level of voxel size ``level_vs`` made from ``data`` (voxel size ``vs`` at ``offset``), one
    coarse voxel at a time: the voxels whose world position lies inside it, averaged or their most
    frequent non-zero label (ties: the smaller)."""
    channels = data.ndim - 3
    begin = [o // lv * lv for o, lv in zip(offset, level_vs)]
    end = [-(-(o + n * v) // lv) * lv for o, n, v, lv in zip(offset, data.shape[channels:], vs, level_vs)]
    shape = [(e - b) // lv for b, e, lv in zip(begin, end, level_vs)]
    out = np.zeros(data.shape[:channels] + tuple(shape), data.dtype)
    for index in itertools.product(*(range(n) for n in shape)):
        lo = [b + i * lv for b, i, lv in zip(begin, index, level_vs)]
        sel = tuple(
            slice(max(0, (low - o) // v), min(n, (low + lv - o) // v))
            for low, o, v, lv, n in zip(lo, offset, vs, level_vs, data.shape[channels:])
        )
        voxels = data[(Ellipsis, *sel)]
        if method == "mean":
            value = voxels.reshape(*voxels.shape[:channels], -1).astype(np.float64).mean(axis=-1)
            if np.issubdtype(data.dtype, np.integer):
                value = np.rint(value)
            out[(Ellipsis, *index)] = value
        else:
            counts = collections.Counter(int(v) for v in voxels.ravel() if v != 0)
            out[index] = min(counts, key=lambda k: (-counts[k], k)) if counts else 0
    return out, tuple(begin)


def expected_levels(data, method, factors, offset=OFFSET, vs=VS):
    levels = []
    for f in factors:
        level_vs = tuple(v * k for v, k in zip(vs, f))
        data, offset = reference_level(data, offset, vs, level_vs, method)
        vs = level_vs
        levels.append((data, offset, vs))
    return levels


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(4)
    affs = rng.random((3, 5, 13, 11)).astype(np.float32)
    labels = np.kron(rng.integers(0, 7, (3, 5, 5)), np.ones((2, 3, 3), int))[:5, :13, :11].astype(np.uint64)
    write_array(tmp_path / "out.zarr", "volumes/pred_affs", affs, VS, offset=OFFSET, chunk_shape=(2, 4, 4))
    write_array(
        tmp_path / "out.zarr", "volumes/segmentation", labels, VS, offset=OFFSET, chunk_shape=(2, 4, 4), label=True
    )
    return tmp_path, affs, labels


FACTORS = [(1, 2, 2), (1, 2, 2), (1, 2, 2), (2, 2, 2)]  # the default rule, until a level fits a chunk


def read_levels(path, name):
    image = read_image(path, name)
    return [open_dataset(path, f"{name}/{lv.path}") for lv in image.levels[1:]]


@pytest.mark.parametrize("block_shape", [None, (2, 4, 4), (4, 8, 4)])
def test_levels_equal_the_voxel_by_voxel_reference_for_any_block_shape(client, images, block_shape):
    tmp_path, affs, labels = images
    for name, data, method in (("volumes/pred_affs", affs, "mean"), ("volumes/segmentation", labels, "mode")):
        result = pyramid(f"{tmp_path}/out.zarr/{name}", block_shape=block_shape, client=client, progress=False)
        assert result.method == method  # chosen by what the image holds
        expected = expected_levels(data, method, FACTORS)
        assert [tuple(lv["factor"]) for lv in result.levels] == FACTORS
        levels = read_levels(tmp_path / "out.zarr", name)
        assert len(levels) == len(expected)
        for ds, (values, offset, vs) in zip(levels, expected):
            assert tuple(ds.voxel_size) == vs and tuple(ds.roi.offset) == offset
            if method == "mean":
                np.testing.assert_allclose(ds.read(), values, rtol=1e-6)
            else:
                np.testing.assert_array_equal(ds.read(), values)
    assert [tuple(ds.voxel_size) for ds in levels] == [(40, 8, 8), (40, 16, 16), (40, 32, 32), (80, 64, 64)]


def test_levels_are_listed_in_the_multiscales_with_scale_and_translation(client, images):
    tmp_path, _, _ = images
    pyramid(f"{tmp_path}/out.zarr/volumes/pred_affs", client=client, progress=False)
    # valid OME-Zarr 0.5 (ome-zarr-models); funlib.persistence opens every level in world units
    check_output(tmp_path / "out.zarr", "volumes/pred_affs", VS, OFFSET, channels=1)
    pyramid(f"{tmp_path}/out.zarr/volumes/segmentation", client=client, progress=False)
    check_output(tmp_path / "out.zarr", "volumes/segmentation", VS, OFFSET, label=True)
    attrs = zarr.open_group(f"{tmp_path}/out.zarr/volumes/pred_affs", mode="r").attrs.asdict()
    (multiscale,) = attrs["ome"]["multiscales"]
    listed = [(d["path"], d["coordinateTransformations"]) for d in multiscale["datasets"]]
    assert listed == [
        (
            f"s{k}",
            [
                {"type": "scale", "scale": [1.0, *map(float, vs)]},
                {"type": "translation", "translation": [0.0, *map(float, off)]},
            ],
        )
        for k, (vs, off) in enumerate(
            [
                (VS, OFFSET),
                ((40, 8, 8), (80, 8, 8)),
                ((40, 16, 16), (80, 0, 0)),
                ((40, 32, 32), (80, 0, 0)),
                ((80, 64, 64), (80, 0, 0)),
            ]
        )
    ]


def test_an_interrupted_pyramid_resumes(client, images):
    tmp_path, affs, _ = images
    image = f"{tmp_path}/out.zarr/volumes/pred_affs"
    tasks, _ = plan_pyramid(image, block_shape=(2, 4, 4))
    first = tasks[0]
    half = len(first.grid) // 2
    with first.open_record() as record:  # level 1 half done, as a run stopped there would leave it
        for flat in range(half):
            first.function(first.grid.block(flat), *first.args)
            record.mark_done(flat)
    result = pyramid(image, block_shape=(2, 4, 4), client=client, progress=False)
    assert (result.stages[0].skipped, result.stages[0].processed) == (half, len(first.grid) - half)
    assert result.stages[1].skipped == 0
    for ds, (values, _, _) in zip(
        read_levels(tmp_path / "out.zarr", "volumes/pred_affs"), expected_levels(affs, "mean", FACTORS)
    ):
        np.testing.assert_allclose(ds.read(), values, rtol=1e-6)
    again = pyramid(image, block_shape=(2, 4, 4), client=client, progress=False)
    assert all(s.processed == 0 and s.skipped == s.num_blocks for s in again.stages)


def test_other_factors_are_refused_unless_overwrite(client, images):
    tmp_path, affs, _ = images
    image = f"{tmp_path}/out.zarr/volumes/pred_affs"
    pyramid(image, client=client, progress=False)
    with pytest.raises(DatasetError, match=r"has a level s1 of voxel size \(40, 8, 8\).*wants voxel size \(80, 8, 8\)"):
        plan_pyramid(image, factors=[(2, 2, 2)])
    result = pyramid(image, factors=[(2, 2, 2)], max_levels=1, overwrite=True, client=client, progress=False)
    (level,) = read_levels(tmp_path / "out.zarr", "volumes/pred_affs")
    assert tuple(level.voxel_size) == (80, 8, 8) and len(result.levels) == 1
    ((expected, _, _),) = expected_levels(affs, "mean", [(2, 2, 2)])
    np.testing.assert_allclose(level.read(), expected, rtol=1e-6)


def test_bad_input_is_refused_before_anything_runs(tmp_path, images):
    write_array(tmp_path / "in.hdf", "raw", np.zeros((4, 8, 8), np.uint8), VS)
    with pytest.raises(DatasetError, match="not an OME-Zarr image group"):
        plan_pyramid(f"{tmp_path}/in.hdf/raw")
    image = f"{tmp_path}/out.zarr/volumes/pred_affs"
    with pytest.raises(GeometryError, match="at least one above 1"):
        plan_pyramid(image, factors=[(1, 1, 1)])
    with pytest.raises(DatasetError, match="unknown downsampling method 'median'"):
        plan_pyramid(image, method="median")
    with pytest.raises(GeometryError, match="does not lie on the chunk grid"):
        plan_pyramid(image, block_shape=(2, 3, 4))


def test_the_command_writes_levels_with_given_factors_and_method(client, images):
    tmp_path, _, labels = images
    args = [
        "pyramid",
        f"{tmp_path}/out.zarr/volumes/segmentation",
        "--factors",
        "1,2,2",
        "--factors",
        "1,3,3",
        "--method",
        "mean",
        "--block-shape",
        "2,4,4",
        "--scheduler",
        client.scheduler.address,
        "--no-progress",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # s1 has (5, 7, 6) voxels: blocks of (2, 4, 4) make 3 x 2 x 2
    assert "voxel size (40, 8, 8), offset (80, 8, 8), shape (5, 7, 6) (12 blocks)" in result.output
    assert "voxel size (40, 24, 24)" in result.output
    levels = read_levels(tmp_path / "out.zarr", "volumes/segmentation")
    expected = expected_levels(labels, "mean", [(1, 2, 2), (1, 3, 3)])
    for ds, (values, offset, vs) in zip(levels, expected, strict=True):
        assert tuple(ds.voxel_size) == vs and tuple(ds.roi.offset) == offset
        np.testing.assert_array_equal(ds.read(), values)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "done before" in again.output and "(0 blocks" in again.output, again.output
    redo = CliRunner().invoke(main, [*args, "--no-resume"])
    assert redo.exit_code == 0 and "done before" not in redo.output, redo.output
    levels_only = CliRunner().invoke(
        main, [*args[:2], "--levels", "1", "--overwrite", "--scheduler", client.scheduler.address, "--no-progress"]
    )
    assert levels_only.exit_code == 0, levels_only.output
    assert len(read_levels(tmp_path / "out.zarr", "volumes/segmentation")) == 1


def test_an_image_and_its_labels_get_the_same_levels(client, tmp_path):
    raw = np.arange(4 * 16 * 16, dtype=np.uint8).reshape(4, 16, 16)
    ids = np.kron(np.arange(1, 9, dtype=np.uint8).reshape(1, 2, 4), np.ones((4, 8, 4), np.uint8))
    write_array(tmp_path / "s.zarr", "volumes/raw", raw, VS, chunk_shape=(2, 4, 4))
    write_array(tmp_path / "s.zarr", "volumes/raw/labels/ids", ids, VS, chunk_shape=(2, 4, 4), label=True)
    # naming the label image makes the pyramids of its image too, with the same factors
    result = pyramid(f"{tmp_path}/s.zarr/volumes/raw/labels/ids", max_levels=2, client=client, progress=False)
    assert result.images == [f"{tmp_path}/s.zarr/volumes/raw", f"{tmp_path}/s.zarr/volumes/raw/labels/ids"]
    assert result.method == "mean" and len(result.stages) == 4
    check_output(tmp_path / "s.zarr", "volumes/raw", VS, (0, 0, 0))  # ome-zarr-models: as many levels
    check_output(tmp_path / "s.zarr", "volumes/raw/labels/ids", VS, (0, 0, 0), label=True)
    raw_s2 = open_dataset(tmp_path / "s.zarr", "volumes/raw/s2").read()
    ids_s2 = open_dataset(tmp_path / "s.zarr", "volumes/raw/labels/ids/s2").read()
    # each level from the one before: uint8 means rounded at every level
    two = [(1, 2, 2), (1, 2, 2)]
    np.testing.assert_array_equal(raw_s2, expected_levels(raw, "mean", two, offset=(0, 0, 0))[-1][0])
    np.testing.assert_array_equal(ids_s2, expected_levels(ids, "mode", two, offset=(0, 0, 0))[-1][0])
