"""`daskseg segment` on the command line: relative paths resolved on the client, against a running
scheduler; the segmentation scored by `daskseg evaluate`; bad input refused in one line before any
cluster starts; a second run resumes (nothing recomputed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from dask_fixtures import local_client

from daskseg.cli import main
from daskseg.io import open_dataset, write_array
from daskseg.report import gt_affinities
from daskseg.segment import connected_components, cremi_scores

VS = (40, 4, 4)
UNREACHABLE = "tcp://127.0.0.1:1"


@pytest.fixture(scope="module")
def scheduler():
    with local_client(n_workers=2) as c:
        yield c.scheduler.address


@pytest.fixture
def sample(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    labels = np.kron(rng.integers(1, 9, size=(3, 4, 4)), np.ones((2, 8, 8), int)).astype(np.uint64)
    affs = np.clip(gt_affinities(labels) * 0.8 + rng.random((3, *labels.shape)) * 0.3, 0, 1).astype(np.float32)
    write_array(tmp_path / "pred.zarr", "volumes/pred_affs", affs, VS)
    write_array(tmp_path / "pred.zarr", "volumes/labels", labels, VS)
    monkeypatch.chdir(tmp_path)
    return tmp_path, affs, labels


def test_segment_then_evaluate_with_relative_paths(sample, scheduler):
    tmp_path, affs, labels = sample
    runner = CliRunner()
    args = ["segment", "--affs", "pred.zarr/volumes/pred_affs", "--out", "seg.zarr/volumes/segmentation",
            "--method", "cc", "--thresholds", "0.6", "--block-shape", "3,16,16", "--scheduler", scheduler]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "(2, 2, 2) blocks" in result.output
    seg = open_dataset(tmp_path / "seg.zarr", "volumes/segmentation").read()
    expected = connected_components(affs, 0.6)
    pairs = np.unique(np.stack([seg.ravel(), expected.ravel()]), axis=1)
    assert pairs.shape[1] == len(np.unique(seg)) == len(np.unique(expected))
    again = runner.invoke(main, args)
    assert again.exit_code == 0 and "0 block tasks" in again.output, again.output
    scored = runner.invoke(main, ["evaluate", "--seg", "seg.zarr/volumes/segmentation", "--gt",
                                  "pred.zarr/volumes/labels", "--scheduler", scheduler, "--json"])
    assert scored.exit_code == 0, scored.output
    scores = json.loads(scored.output.strip().splitlines()[-1])
    expected_scores = cremi_scores(seg, labels)
    assert scores["voi_split"] == pytest.approx(expected_scores["voi_split"], abs=1e-9)
    assert scores["adapted_rand"] == pytest.approx(expected_scores["adapted_rand"], abs=1e-9)


def test_consecutive_gives_ids_one_to_n(sample, scheduler):
    tmp_path, affs, _ = sample
    result = CliRunner().invoke(main, ["segment", "--affs", "pred.zarr/volumes/pred_affs", "--out", "c.zarr/seg",
                                       "--method", "cc", "--thresholds", "0.6", "--block-shape", "3,16,16",
                                       "--scheduler", scheduler, "--consecutive"])
    assert result.exit_code == 0, result.output
    seg = open_dataset(tmp_path / "c.zarr", "seg").read()
    n = len(np.unique(connected_components(affs, 0.6)))
    assert n > 4 and np.array_equal(np.unique(seg), np.arange(1, n + 1))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--thresholds", "0.5,1.2"], "numbers in [0, 1]"),
        (["--block-shape", "a,b"], "integers separated by commas"),
        (["--max-in-flight", "0"], "positive number of tasks"),
        (["--block-timeout", "banana"], "a duration"),
        (["--retries", "-1"], "-1"),
    ],
)
def test_bad_options_are_one_line(sample, extra, message):
    result = CliRunner().invoke(main, ["segment", "--affs", "pred.zarr/volumes/pred_affs", "--out", "s.zarr/seg",
                                       "--scheduler", UNREACHABLE, *extra])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_bad_input_is_refused_before_the_cluster(sample):
    tmp_path, affs, _ = sample
    write_array(tmp_path / "pred.zarr", "volumes/two", affs[:2], VS)
    result = CliRunner().invoke(main, ["segment", "--affs", "pred.zarr/volumes/two", "--out", "s.zarr/seg",
                                       "--scheduler", UNREACHABLE])
    assert result.exit_code == 1 and "needs exactly 3 channels" in result.output, result.output
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.slow
def test_pyramid_flag_writes_the_levels_of_each_segmentation(sample, scheduler):
    tmp_path, affs, labels = sample
    args = ["segment", "--affs", "pred.zarr/volumes/pred_affs", "--out", "seg.zarr/volumes/segmentation",
            "--method", "cc", "--thresholds", "0.4,0.6", "--block-shape", "6,16,32", "--scheduler", scheduler,
            "--pyramid"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    from daskseg.io import read_image
    from daskseg.pyramid import downsample_mode

    for name in ("volumes/segmentation_0.4", "volumes/segmentation_0.6"):
        assert f"pyramid of {tmp_path}/seg.zarr/{name} (mode): s1 (40, 8, 8)\n" in result.output
        image = read_image(tmp_path / "seg.zarr", name)
        # chunks of (6, 16, 32): one level halving y and x fits into one
        assert [tuple(lv.voxel_size) for lv in image.levels] == [(40, 4, 4), (40, 8, 8)]
        seg = open_dataset(tmp_path / "seg.zarr", name).read()
        s1 = open_dataset(tmp_path / "seg.zarr", f"{name}/s1").read()
        np.testing.assert_array_equal(s1, downsample_mode(seg, (1, 2, 2)))
