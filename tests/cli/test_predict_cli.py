"""`daskseg predict` on the command line: runs, resumes, and fails with clear messages."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from click.testing import CliRunner
from dask_fixtures import local_client

from daskseg.blockwise import FunctionProcessor
from daskseg.blockwise.done import read_done
from daskseg.cli import main
from daskseg.geometry import Coordinate
from daskseg.io import open_dataset, write_array


def mean3(x: np.ndarray) -> np.ndarray:
    return ndi.correlate(x.astype(np.float64), np.full((3, 3, 3), 1 / 27), mode="constant")


def fails_everywhere(x: np.ndarray) -> np.ndarray:
    raise RuntimeError("this processor always fails")


MEAN3 = FunctionProcessor(mean3, context=1, name="mean3")
BROKEN = FunctionProcessor(fails_everywhere, context=1, name="broken")


class SteppedMean3(FunctionProcessor):
    """``mean3`` asking for blocks of multiples of (2, 3, 3) voxels, as a network's output shape does."""

    def __init__(self):
        super().__init__(mean3, context=1, name="stepped-mean3")
        self.block_step = self.min_block_shape = Coordinate((2, 3, 3))


STEPPED = SteppedMean3()


@pytest.fixture(scope="module")
def scheduler():
    with local_client(n_workers=2) as c:
        yield c.scheduler.address


@pytest.fixture
def raw(tmp_path):
    data = np.random.default_rng(0).random((8, 12, 14)).astype(np.float32)
    write_array(tmp_path / "in.zarr", "volumes/raw", data, (4, 2, 2), offset=(40, 0, 0))
    return f"{tmp_path}/in.zarr/volumes/raw", data


def test_predict_writes_and_resumes(scheduler, raw, tmp_path):
    path, data = raw
    out = f"{tmp_path}/out.zarr/volumes/pred"
    args = ["--raw", path, "--out", out, "--processor", f"{__name__}:MEAN3", "--scheduler", scheduler,
            "--block-shape", "2,4,4", "--roi", "44:68,2:22,2:26", "--no-progress"]
    result = CliRunner().invoke(main, ["predict", *args])
    assert result.exit_code == 0, result.output
    assert "dashboard:" in result.output and "wrote" in result.output
    expected = mean3(data)[1:-1, 1:-1, 1:-1].astype(np.float32)
    np.testing.assert_array_equal(open_dataset(f"{tmp_path}/out.zarr", "volumes/pred").read(), expected)
    assert read_done(f"{tmp_path}/out.zarr/volumes/pred")[1].all()
    again = CliRunner().invoke(main, ["predict", *args])
    assert again.exit_code == 0 and "done before" in again.output


def test_the_default_roi_is_the_largest_the_network_can_fill(scheduler, raw, tmp_path):
    """Without --roi the raw ROI is shrunk by the context read on each side (one voxel), not by the
    tutorial's whole context per side, which on small volumes leaves less than one output."""
    path, data = raw
    out = f"{tmp_path}/out.zarr/volumes/pred"
    result = CliRunner().invoke(main, ["predict", "--raw", path, "--out", out, "--processor", f"{__name__}:MEAN3",
                                       "--scheduler", scheduler, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "over [44:68, 2:22, 2:26]" in result.output
    expected = mean3(data)[1:-1, 1:-1, 1:-1].astype(np.float32)
    np.testing.assert_array_equal(open_dataset(f"{tmp_path}/out.zarr", "volumes/pred").read(), expected)


def test_the_same_command_again_resumes_with_the_default_block_shape_and_a_small_roi(scheduler, raw, tmp_path):
    """The documented way to resume (the identical command) works when the ROI is smaller than a block."""
    path, data = raw
    args = ["predict", "--raw", path, "--out", f"{tmp_path}/out.zarr/pred", "--processor", f"{__name__}:STEPPED",
            "--scheduler", scheduler, "--roi", "44:68,2:22,2:26", "--no-progress"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "1 blocks of (6, 12, 12) voxels" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "0 blocks of (6, 12, 12) voxels" in again.output and "1 done before" in again.output
    expected = mean3(data)[1:-1, 1:-1, 1:-1].astype(np.float32)
    np.testing.assert_array_equal(open_dataset(f"{tmp_path}/out.zarr", "pred").read(), expected)


def test_relative_paths_are_resolved_on_the_client(scheduler, raw, tmp_path, monkeypatch):
    """Workers run in their own working directory: relative --raw and --out must still work there."""
    _, data = raw
    monkeypatch.chdir(tmp_path)  # the workers, started before, stay where they were
    args = ["predict", "--raw", "in.zarr/volumes/raw", "--out", "rel.zarr/volumes/pred", "--processor",
            f"{__name__}:MEAN3", "--scheduler", scheduler, "--block-shape", "2,4,4", "--roi", "44:68,2:22,2:26",
            "--retries", "0", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path}/rel.zarr/volumes/pred" in result.output
    expected = mean3(data)[1:-1, 1:-1, 1:-1].astype(np.float32)
    np.testing.assert_array_equal(open_dataset(f"{tmp_path}/rel.zarr", "volumes/pred").read(), expected)
    assert read_done(f"{tmp_path}/rel.zarr/volumes/pred")[1].all()


def test_failed_blocks_exit_non_zero_naming_them(scheduler, raw, tmp_path):
    path, _ = raw
    result = CliRunner().invoke(main, ["predict",
        "--raw", path, "--out", f"{tmp_path}/o.zarr/pred", "--processor", f"{__name__}:BROKEN",
        "--scheduler", scheduler, "--retries", "0", "--block-shape", "4,8,10",
    ])
    assert result.exit_code == 1
    assert "predict-block-0-0-0" in result.output and "always fails" in result.output


def test_clear_errors(raw, tmp_path):
    path, _ = raw
    container = path.rsplit("/volumes", 1)[0]
    result = CliRunner().invoke(main, ["predict", "--raw", f"{container}/volumes/nope", "--out", f"{tmp_path}/o.zarr/p",
                                          "--processor", f"{__name__}:MEAN3", "--workers", "1"])
    assert result.exit_code == 1 and "volumes/raw" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["predict", "--raw", path, "--out", f"{tmp_path}/o.zarr/p"])
    assert result.exit_code == 2 and "--network and --checkpoint" in result.output
    result = CliRunner().invoke(main, ["predict", "--raw", path, "--out", f"{tmp_path}/o.zarr/p", "--processor", "nowhere:X"])
    assert result.exit_code == 2 and "cannot load processor" in result.output


def test_missing_checkpoint_is_a_clear_error(raw, tmp_path):
    path, _ = raw
    config = tmp_path / "net_config.json"
    from daskseg.models import create_networks

    create_networks(tmp_path, train_input_shape=(14, 24, 24), predict_input_shape=(14, 28, 28), num_fmaps=2,
                    fmap_inc_factor=2, downsample_factors=[(1, 2, 2)], predict_name="net")
    result = CliRunner().invoke(main, ["predict", "--network", str(config), "--checkpoint", f"{tmp_path}/nothing",
                                          "--raw", path, "--out", f"{tmp_path}/o.zarr/p"])
    assert result.exit_code == 1 and "no checkpoint file" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_pyramid_flag_averages_the_prediction_into_levels(scheduler, raw, tmp_path):
    path, data = raw
    out = f"{tmp_path}/out.zarr/volumes/pred"
    args = ["predict", "--raw", path, "--out", out, "--processor", f"{__name__}:MEAN3", "--scheduler", scheduler,
            "--block-shape", "3,6,6", "--roi", "48:64,4:20,4:24", "--no-progress", "--pyramid"]  # on s1's grid
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"pyramid of {out} (mean): s1 (4, 4, 4), s2 (8, 8, 8)" in result.output
    from daskseg.pyramid import downsample_mean

    pred = open_dataset(f"{tmp_path}/out.zarr", "volumes/pred")
    s1 = open_dataset(f"{tmp_path}/out.zarr", "volumes/pred/s1")
    assert tuple(s1.voxel_size) == (4, 4, 4) and s1.roi.offset == pred.roi.offset
    np.testing.assert_allclose(s1.read(), downsample_mean(pred.read(), (1, 2, 2)), rtol=1e-6)


def test_a_pickled_checkpoint_is_used_only_with_trust_pickle(scheduler, tmp_path):
    """gunpowder's JAX checkpoints are pickles, which run code when loaded: refused (one line, nothing
    written) unless --trust-pickle is given, and then used (issue 11 item 4)."""
    import pickle

    from daskseg.jax.inference import Predictor
    from daskseg.models.config import create_networks

    _, test_net = create_networks(tmp_path / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84),
                                  num_fmaps=2, fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)))
    network = str(tmp_path / "nets" / "test_net_config.json")
    params = Predictor(network).params
    with open(tmp_path / "gp_checkpoint_5", "wb") as f:
        pickle.dump(params, f)
    raw = np.random.default_rng(1).integers(0, 256, test_net.input_shape, dtype=np.uint8)
    write_array(tmp_path / "in.zarr", "raw", raw, (40, 4, 4))
    out = f"{tmp_path}/out.zarr/affs"
    args = ["predict", "--network", network, "--checkpoint", str(tmp_path / "gp_checkpoint_5"), "--raw",
            f"{tmp_path}/in.zarr/raw", "--out", out, "--scheduler", scheduler, "--no-progress"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1
    assert "CheckpointPickleError" in refused.output and "--trust-pickle" in refused.output
    assert not (tmp_path / "out.zarr").exists()
    trusted = CliRunner().invoke(main, [*args, "--trust-pickle"])
    assert trusted.exit_code == 0, trusted.output
    expected = Predictor(network, params)(raw.astype(np.float32) / 255)
    np.testing.assert_allclose(open_dataset(f"{tmp_path}/out.zarr", "affs").read(), expected, rtol=1e-5, atol=1e-6)
