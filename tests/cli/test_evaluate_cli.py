"""`daskseg evaluate` on the command line: the scores of the in-memory evaluation, JSON for scripts,
relative paths resolved on the client, and bad input refused in one line before any cluster starts."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from click.testing import CliRunner
from dask_fixtures import local_client

from daskseg.cli import main
from daskseg.io import write_array
from daskseg.segment import cremi_scores

VS = (40, 4, 4)
UNREACHABLE = "tcp://127.0.0.1:1"  # connecting would fail: bad input must be refused before


@pytest.fixture(scope="module")
def scheduler():
    with local_client(n_workers=2) as c:
        yield c.scheduler.address


@pytest.fixture
def volumes(tmp_path):
    rng = np.random.default_rng(7)
    gt = np.kron(rng.integers(0, 5, size=(3, 4, 4)), np.ones((2, 4, 4), int)).astype(np.uint64)[:5, :14, :15]
    seg = np.kron(rng.integers(0, 4, size=(3, 5, 5)), np.ones((2, 3, 3), int)).astype(np.int32)[:5, :14, :15]
    mask = (rng.random(gt.shape) < 0.8).astype(np.uint8)
    write_array(tmp_path / "seg.zarr", "volumes/segmentation", seg, VS, offset=(80, 8, 0))
    write_array(tmp_path / "gt.hdf", "volumes/labels", gt, VS, offset=(80, 8, 0))
    write_array(tmp_path / "mask.zarr", "mask", mask, VS, offset=(80, 8, 0))
    return tmp_path, seg, gt, mask


def test_prints_the_four_scores(scheduler, volumes):
    tmp_path, seg, gt, _ = volumes
    result = CliRunner().invoke(main, ["evaluate", "--seg", f"{tmp_path}/seg.zarr/volumes/segmentation",
                                       "--gt", f"{tmp_path}/gt.hdf/volumes/labels", "--block-shape", "2,5,4",
                                       "--scheduler", scheduler, "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = dict(line.rsplit(maxsplit=1) for line in result.stdout.splitlines())
    expected = cremi_scores(seg, gt)
    for label, name in [("VOI split", "voi_split"), ("VOI merge", "voi_merge"), ("VOI total", "voi"),
                        ("adapted Rand", "adapted_rand")]:
        assert float(lines[label]) == pytest.approx(expected[name], abs=1e-6)
    assert "36 blocks of (2, 5, 4) voxels" in result.stderr


def test_json_with_a_mask_and_relative_paths(scheduler, volumes, monkeypatch):
    tmp_path, seg, gt, mask = volumes
    monkeypatch.chdir(tmp_path)  # the workers' working directory is not this one
    result = CliRunner().invoke(main, ["evaluate", "--seg", "seg.zarr/volumes/segmentation", "--gt",
                                       "gt.hdf/volumes/labels", "--mask", "mask.zarr/mask", "--block-shape", "3,4,4",
                                       "--scheduler", scheduler, "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    for name, value in cremi_scores(seg, gt, mask=mask).items():
        assert numbers[name] == pytest.approx(value, abs=1e-9, rel=0)
    assert numbers["voxels"] == int(mask.sum()) and numbers["num_blocks"] == 2 * 4 * 4
    assert numbers["roi"] == {"offset": [80, 8, 0], "shape": [200, 56, 60]}
    assert numbers["mask"] == os.path.join(str(tmp_path), "mask.zarr") + "/mask"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".daskseg-evaluate")]


def test_a_local_cluster_of_one_worker(volumes):
    tmp_path, seg, gt, _ = volumes
    result = CliRunner().invoke(main, ["evaluate", "--seg", f"{tmp_path}/seg.zarr/volumes/segmentation",
                                       "--gt", f"{tmp_path}/gt.hdf/volumes/labels", "--workers", "1", "--json",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["adapted_rand"] == pytest.approx(cremi_scores(seg, gt)["adapted_rand"], abs=1e-9)


@pytest.mark.parametrize(
    "what, args, message",
    [
        ("voxel size", ["--seg", "bad.zarr/coarse"], "GeometryError: voxel sizes differ: the segmentation"),
        ("no overlap", ["--seg", "bad.zarr/far"], "GeometryError: nothing to evaluate: the ROIs do not overlap"),
        ("float labels", ["--seg", "bad.zarr/float"], "SegmentError: the segmentation"),
        ("mask voxel size", ["--mask", "bad.zarr/coarse"], "GeometryError: voxel sizes differ: .* the mask"),
        ("missing dataset", ["--gt", "gt.hdf/volumes/nope"], "DatasetError: no dataset 'volumes/nope'"),
        ("missing container", ["--seg", "nothere.zarr/seg"], "DatasetError: Zarr container .* does not exist"),
        ("block shape", ["--block-shape", "0,4,4"], r"GeometryError: block shape \(0, 4, 4\) must be 3 positive"),
    ],
)
def test_bad_input_is_refused_in_one_line_before_a_cluster_starts(volumes, monkeypatch, what, args, message):
    tmp_path, seg, _, _ = volumes
    write_array(tmp_path / "bad.zarr", "coarse", seg, (40, 8, 8), offset=(80, 8, 0))
    write_array(tmp_path / "bad.zarr", "far", seg, VS, offset=(8000, 8, 0))
    write_array(tmp_path / "bad.zarr", "float", seg.astype(np.float32), VS, offset=(80, 8, 0))
    monkeypatch.chdir(tmp_path)
    base = {"--seg": "seg.zarr/volumes/segmentation", "--gt": "gt.hdf/volumes/labels"}
    base.update(dict(zip(args[::2], args[1::2])))
    argv = ["evaluate", *[x for kv in base.items() for x in kv], "--scheduler", UNREACHABLE]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1, (what, result.output)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert re.search(message, lines[0]), lines[0]


def test_a_block_shape_that_is_not_numbers_is_a_usage_error(volumes, monkeypatch):
    tmp_path = volumes[0]
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["evaluate", "--seg", "seg.zarr/volumes/segmentation", "--gt",
                                       "gt.hdf/volumes/labels", "--block-shape", "a,b", "--scheduler", UNREACHABLE])
    assert result.exit_code == 2
    assert "--block-shape must be integers separated by commas" in result.output
