"""Bad inputs to `daskseg predict`, `daskseg train` and PreCache, against a real process cluster: each
fails with a clear error (exit code 1, no traceback, the path/address/sizes named) and leaves what
was already written byte for byte as it was. A corrupted newest checkpoint is skipped, with a
warning, when training resumes."""

from __future__ import annotations

import os
import re
import shutil
import time

import numpy as np
import pytest
import yaml

import daskseg as gp
from daskseg.cluster import DEFAULT_CONNECT_TIMEOUT
from daskseg.errors import ClusterError, RequestError
from daskseg.io import open_dataset, write_array
from daskseg.jax.checkpoint import load_checkpoint
from daskseg.models.config import create_networks
from daskseg.synth import write_cremi_samples, write_sample

from .conftest import free_port
from .helpers import (
    done_marks,
    expected_max3,
    run_cli,
    start_cli,
    tree_bytes,
    wait_until_idle,
    workers_import_tests,  # noqa: F401  (autouse fixture)
)

pytestmark = pytest.mark.integration

NET = dict(num_fmaps=4, fmap_inc_factor=2, downsample_factors=((1, 2, 2), (1, 2, 2)))
PREDICT_ROI = "400:720,80:432,80:432"  # inside (40, 160, 160) voxels of (40, 4, 4) shrunk by the context
PREDICT_BLOCK = "8,88,88"
MAX3 = "integration.helpers:MAX3"


def jax_cache_env(directory: str) -> dict[str, str]:
    """Compiled XLA programs cached on disk: the second training process skips most compilation."""
    return {
        "JAX_COMPILATION_CACHE_DIR": directory,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
    }


def write_yaml(path, doc) -> str:
    with open(path, "w") as f:
        yaml.safe_dump(doc, f)
    return str(path)


def train_doc(work: dict, **changes) -> dict:
    doc = {
        "samples": work["samples"],
        "network": work["train_net"],
        "iterations": 2,
        "save_every": 1,
        "snapshot_every": 0,
        "profiling_every": 1000,
        "num_workers": 1,
        "cache_size": 2,
        "checkpoint_basename": "checkpoints/train_net",
    }
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def work(process_cluster, tmp_path_factory):
    """Two synthetic samples, the tiny networks and checkpoints 1 and 2 of a 2-iteration `daskseg train`."""
    root = tmp_path_factory.mktemp("work")
    samples = write_cremi_samples(root / "data", (40, 160, 160), names=("A", "B"), extension=".zarr")
    create_networks(root / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84), **NET)
    work = {
        "root": str(root),
        "samples": samples,
        "raw": f"{samples[0]}/volumes/raw",
        "train_net": str(root / "nets" / "train_net_config.json"),
        "test_net": str(root / "nets" / "test_net_config.json"),
        "scheduler": process_cluster.address,
        "jax_env": jax_cache_env(str(tmp_path_factory.mktemp("jax-cache"))),
    }
    config = write_yaml(root / "train.yaml", train_doc(work))
    result = run_cli(["train", "--config", config, "--scheduler", work["scheduler"]], timeout=300, **work["jax_env"])
    assert result.returncode == 0, result.stderr
    work["checkpoints"] = str(root / "checkpoints")
    # the basename lock stays on disk (it is free once the run ended)
    assert sorted(os.listdir(work["checkpoints"])) == [
        "train_net.lock", "train_net_checkpoint_1", "train_net_checkpoint_2", "train_net_log.csv"]
    return work


@pytest.fixture
def previous(tmp_path):
    """An output container holding an earlier result, which no failed run may change."""
    container = tmp_path / "out.zarr"
    write_array(container, "volumes/earlier", np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6), (40, 4, 4))
    return str(container)


def error_lines(stderr: str) -> list[str]:
    """click's ``Error: ...`` lines (after a progress bar, too), not ``SomethingError: ...`` of tracebacks."""
    return re.findall(r"(?:^|[^\w])Error: (.*)", stderr, flags=re.MULTILINE)


def assert_clear_failure(result, *fragments: str, worker_traceback: bool = False) -> None:
    """Exit code 1, one `Error:` line naming each fragment, no traceback (but the worker's, which a
    failed block's error carries, if ``worker_traceback``)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    if worker_traceback:
        assert "Traceback (most recent call last)" not in result.stderr.split("Traceback of the first failure:")[0]
    else:
        assert "Traceback" not in result.stderr, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def earlier_result(container: str) -> dict[str, bytes]:
    """The bytes of the earlier result in ``container`` (its group may gain an entry for a new output)."""
    return tree_bytes(os.path.join(container, "volumes", "earlier"))


def garble(path: str) -> None:
    """Cut a checkpoint file in half, as a crash or a full disk would."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


# --- missing files and datasets -----------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, message",
    [
        ("{root}/nowhere.zarr/volumes/raw", "Zarr container '{root}/nowhere.zarr' does not exist"),
        ("{sample}/volumes/nope", "no array 'volumes/nope' in '{sample}'"),
    ],
    ids=["missing-file", "missing-dataset"],
)
def test_predict_missing_input(work, previous, raw, message):
    names = {"root": work["root"], "sample": work["samples"][0]}
    before = tree_bytes(previous)
    result = run_cli(["predict", "--raw", raw.format(**names), "--out", f"{previous}/volumes/pred",
                      "--processor", MAX3, "--scheduler", work["scheduler"], "--no-progress"])
    assert_clear_failure(result, message.format(**names))
    assert tree_bytes(previous) == before


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"samples": ["{root}/nowhere.zarr"]}, "Zarr container '{root}/nowhere.zarr' does not exist"),
        ({"labels_dataset": "volumes/labels/nope"}, "no array 'volumes/labels/nope' in '{sample}'"),
    ],
    ids=["missing-file", "missing-dataset"],
)
def test_train_missing_input(work, tmp_path, changes, message):
    names = {"root": str(tmp_path), "sample": work["samples"][0]}
    changes = {k: [v.format(**names) for v in vs] if isinstance(vs, list) else vs for k, vs in changes.items()}
    shutil.copytree(work["checkpoints"], tmp_path / "checkpoints")
    before = tree_bytes(str(tmp_path / "checkpoints"))
    config = write_yaml(tmp_path / "train.yaml", train_doc(work, **changes))
    result = run_cli(["train", "--config", config, "--scheduler", work["scheduler"]])
    assert_clear_failure(result, "DatasetError", message.format(**names))
    assert tree_bytes(str(tmp_path / "checkpoints")) == before


def test_train_raw_and_labels_with_different_voxel_sizes(work, tmp_path):
    sample = tmp_path / "sample.zarr"
    write_array(sample, "volumes/raw", np.zeros((40, 160, 160), np.uint8), (40, 4, 4))
    write_array(sample, "volumes/labels/neuron_ids", np.ones((40, 320, 320), np.uint64), (40, 2, 2))
    before = tree_bytes(str(sample))
    config = write_yaml(tmp_path / "train.yaml", train_doc(work, samples=[str(sample)]))
    result = run_cli(["train", "--config", config, "--scheduler", work["scheduler"]])
    assert_clear_failure(result, str(sample), "raw has voxel size (40, 4, 4) but labels have (40, 2, 2)")
    assert tree_bytes(str(sample)) == before
    assert not os.path.exists(tmp_path / "checkpoints" / "train_net_checkpoint_1")


# --- requests larger than the data --------------------------------------------------------------
def test_pipeline_request_larger_than_the_data_fails_on_the_cluster_with_its_type(work):
    raw = gp.ArrayKey("RAW")
    pipeline = gp.ZarrSource(work["samples"][0], {raw: "volumes/raw"}) + gp.PreCache(
        cache_size=2, client=work["scheduler"]
    )
    request = gp.BatchRequest()
    request[raw] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (2000, 640, 640)))
    with gp.build(pipeline):
        with pytest.raises(RequestError, match=r"requested ROI \[0:2000, 0:640, 0:640\].* lies outside the provided "
                                                 r"ROI \[0:1600, 0:640, 0:640\]"):
            pipeline.request_batch(request)
    wait_until_idle(work["scheduler"])


def test_train_network_bigger_than_the_samples(work, tmp_path):
    write_sample(tmp_path / "small.zarr", (20, 60, 60), seed=0)
    config = write_yaml(tmp_path / "train.yaml", train_doc(work, samples=[str(tmp_path / "small.zarr")]))
    result = run_cli(["train", "--config", config, "--scheduler", work["scheduler"]], timeout=300)
    # refused at setup, naming the sample and what one batch reads (issue 11 item 12)
    assert_clear_failure(result, "SampleTooSmallError", f"{tmp_path / 'small.zarr'} is too small for one training "
                         "batch", "the sample has (20, 60, 60)", "short along z, y, x")
    assert not os.path.exists(tmp_path / "checkpoints")


# --- networks and checkpoints -------------------------------------------------------------------
def test_predict_network_config_not_matching_the_checkpoint(work, previous, tmp_path):
    create_networks(tmp_path / "other", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84),
                    **dict(NET, num_fmaps=6))
    before = earlier_result(previous)
    result = run_cli(["predict", "--network", str(tmp_path / "other" / "test_net_config.json"),
                      "--checkpoint", f"{work['checkpoints']}/train_net_checkpoint_2", "--raw", work["raw"],
                      "--out", f"{previous}/volumes/pred", "--roi", PREDICT_ROI, "--block-shape", PREDICT_BLOCK,
                      "--scheduler", work["scheduler"], "--no-progress"], timeout=300)
    assert_clear_failure(result, "CheckpointError", "train_net_checkpoint_2")  # on the client, no worker tried
    assert earlier_result(previous) == before


def test_predict_with_a_named_corrupted_checkpoint_fails_clearly(work, previous, tmp_path):
    checkpoint = tmp_path / "train_net_checkpoint_2"
    shutil.copy(f"{work['checkpoints']}/train_net_checkpoint_2", checkpoint)
    garble(str(checkpoint))
    before = earlier_result(previous)
    result = run_cli(["predict", "--network", work["test_net"], "--checkpoint", str(checkpoint), "--raw", work["raw"],
                      "--out", f"{previous}/volumes/pred", "--roi", PREDICT_ROI, "--block-shape", PREDICT_BLOCK,
                      "--scheduler", work["scheduler"], "--no-progress"], timeout=300)
    assert_clear_failure(result, f"CheckpointError: checkpoint '{checkpoint}' could not be read")
    assert earlier_result(previous) == before


def test_training_resumes_from_the_previous_checkpoint_when_the_newest_is_corrupted(work, tmp_path):
    shutil.copytree(work["checkpoints"], tmp_path / "checkpoints")
    first, newest = (str(tmp_path / "checkpoints" / f"train_net_checkpoint_{i}") for i in (1, 2))
    garble(newest)
    first_bytes = tree_bytes(first)
    config = write_yaml(tmp_path / "train.yaml", train_doc(work, iterations=3))
    result = run_cli(["-v", "train", "--config", config, "--scheduler", work["scheduler"]], timeout=300,
                     **work["jax_env"])
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line and "checkpoint" in line]
    assert any("skipping unreadable checkpoint" in w and newest in w for w in warnings), result.stderr
    assert f"resuming from {first} (iteration 1)" in result.stderr
    assert "trained to iteration 3" in result.stdout
    assert tree_bytes(first) == first_bytes
    assert load_checkpoint(newest).iteration == 2  # trained again from 1 and rewritten
    assert load_checkpoint(str(tmp_path / "checkpoints" / "train_net_checkpoint_3")).iteration == 3
    with open(tmp_path / "checkpoints" / "train_net_log.csv") as f:
        assert [int(line.split(",")[0]) for line in f.read().splitlines()[1:]] == [1, 2, 3]


# --- unreachable scheduler ----------------------------------------------------------------------
@pytest.mark.slow
def test_unreachable_scheduler_fails_within_the_connect_timeout_naming_the_address(work, previous):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    before = tree_bytes(previous)
    start = time.monotonic()
    cli = start_cli(["predict", "--raw", work["raw"], "--out", f"{previous}/volumes/pred", "--processor", MAX3,
                     "--scheduler", address, "--no-progress"])
    try:
        pipeline = gp.ZarrSource(work["samples"][0], {gp.ArrayKey("RAW"): "volumes/raw"}) + gp.PreCache(client=address)
        with pytest.raises(ClusterError, match=f"could not reach a Dask scheduler at '{address}'"):
            with gp.build(pipeline):
                pass
        precache_seconds = time.monotonic() - start
        stdout, stderr = cli.communicate(timeout=120)
        cli_seconds = time.monotonic() - start
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    margin = 15  # process start-up and imports on a busy machine
    assert precache_seconds < DEFAULT_CONNECT_TIMEOUT + margin
    assert cli_seconds < DEFAULT_CONNECT_TIMEOUT + margin
    assert cli.returncode == 1
    assert "Traceback" not in stderr
    assert f"could not reach a Dask scheduler at '{address}'" in stderr
    assert tree_bytes(previous) == before


# --- outputs that cannot be written -------------------------------------------------------------
def test_predict_output_under_a_regular_file_fails_clearly(work, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output's parent directory should be\n")
    result = run_cli(["predict", "--raw", work["raw"], "--out", f"{blocker}/out.zarr/volumes/pred",
                      "--processor", MAX3, "--scheduler", work["scheduler"], "--no-progress"])
    assert_clear_failure(result, str(blocker))
    assert blocker.read_text() == "a file where the output's parent directory should be\n"


def test_predict_existing_output_of_another_shape_needs_overwrite(work, previous):
    existing = f"{previous}/volumes/pred"
    write_array(previous, "volumes/pred", np.full((2, 5, 5), 7, np.float32), (40, 4, 4), offset=(400, 80, 80))
    before = tree_bytes(previous)
    result = run_cli(["predict", "--raw", work["raw"], "--out", existing, "--processor", MAX3,
                      "--scheduler", work["scheduler"], "--no-progress"])
    assert_clear_failure(result, "DatasetError", "exists but does not fit", "--overwrite")
    assert tree_bytes(previous) == before


# --- the OS refuses writes ----------------------------------------------------------------------
def test_predict_refused_writes_lose_nothing_and_a_rerun_finishes(tmp_path):
    """Workers whose chunk writes the OS refuses (a file size limit, standing in for a full disk):
    the failed blocks are named, blocks that were written stay recorded, and the same command run
    again with room to write does only the failed blocks, ending with the whole-volume result."""
    raw = np.zeros((16, 40, 40), np.uint8)
    raw[9:] = np.random.default_rng(3).integers(0, 255, (7, 40, 40), dtype=np.uint8)
    write_array(tmp_path / "raw.zarr", "raw", raw, (1, 1, 1))
    out = f"{tmp_path}/out.zarr/max3"
    args = ["predict", "--raw", f"{tmp_path}/raw.zarr/raw", "--out", out, "--processor", MAX3, "--workers", "1",
            "--roi", "1:15,1:39,1:39", "--block-shape", "7,19,19", "--retries", "0", "--no-progress"]
    # blocks z 1..8 read only zeros: their chunks equal the fill value and are not stored, so their
    # writes succeed; blocks z 8..15 have chunks of about 1 KB, which a limit of 200 bytes refuses
    limited = run_cli(args, DASK_DISTRIBUTED__WORKER__PRELOAD='["integration.file_size_limit"]',
                      DASKSEG_TEST_FSIZE_LIMIT="200")
    assert_clear_failure(limited, "4 of 8 blocks failed", "File too large", worker_traceback=True)
    for z, y, x in [(1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]:
        assert f"predict-block-{z}-{y}-{x}-" in limited.stderr
    assert done_marks(f"{tmp_path}/out.zarr/max3").tolist() == [1, 1, 1, 1, 0, 0, 0, 0]

    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stderr
    assert "4 blocks" in rerun.stdout and "4 done before" in rerun.stdout
    np.testing.assert_array_equal(open_dataset(f"{tmp_path}/out.zarr", "max3").read(), expected_max3(raw))


# --- scheduler addresses that cannot work -------------------------------------------------------
@pytest.fixture(scope="module")
def http_server():
    """A real HTTP server process (as the dashboard's port would be): accepts, never speaks Dask."""
    import socket
    import subprocess
    import sys

    from .helpers import poll

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        poll(listening, 30, "the HTTP server to listen", 0.05)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait(timeout=30)


@pytest.fixture
def small_job(tmp_path):
    """A raw volume to predict from, and a training config whose samples and network exist."""
    raw = np.random.default_rng(0).random((10, 12, 12)).astype(np.float32)
    write_array(tmp_path / "raw.zarr", "raw", raw, (1, 1, 1))
    write_sample(tmp_path / "sample.zarr", (40, 160, 160), seed=0)
    create_networks(tmp_path / "nets", train_input_shape=(28, 84, 84), predict_input_shape=(28, 84, 84), **NET)
    doc = train_doc({"samples": [str(tmp_path / "sample.zarr")], "train_net": str(tmp_path / "nets" / "train_net_config.json")})
    return {"raw": f"{tmp_path}/raw.zarr/raw", "out": f"{tmp_path}/out.zarr/pred",
            "config": write_yaml(tmp_path / "train.yaml", doc), "checkpoints": tmp_path / "checkpoints"}


def scheduler_cases(http_address: str) -> list[tuple[list[str], list[str], int]]:
    """(extra arguments, fragments of the one error line, exit code) of each bad cluster choice."""
    return [
        (["--scheduler", http_address], [f"something listens at '{http_address}'", "give the scheduler's address"], 1),
        (["--scheduler", "not-an-address"], ["'not-an-address' (as given) is not a Dask scheduler address",
                                             "give tcp://HOST:PORT"], 1),
        (["--workers", "0"], ["'--workers'", "0 is not in the range x>=1"], 2),
    ]


@pytest.mark.parametrize("command", ["predict", "train"])
def test_a_scheduler_that_cannot_work_ends_in_seconds_with_one_line(http_server, small_job, command):
    if command == "predict":
        base = ["predict", "--raw", small_job["raw"], "--out", small_job["out"], "--processor", MAX3, "--no-progress"]
    else:
        base = ["train", "--config", small_job["config"]]
    for extra, fragments, code in scheduler_cases(http_server):
        start = time.monotonic()
        result = run_cli([*base, *extra], timeout=60, DASK_DASKSEG__CLUSTER__CONNECT_TIMEOUT="2s")
        seconds = time.monotonic() - start
        assert result.returncode == code, (extra, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        errors = error_lines(result.stderr)
        assert len(errors) == 1, result.stderr
        for fragment in fragments:
            assert fragment in errors[0], (fragment, errors[0])
        assert seconds < 2 + 15, (extra, seconds)  # the connect timeout, plus start-up on a busy machine
        assert "TimeoutError" not in result.stderr  # no Client finaliser waiting on a dead connection
        assert not os.path.exists(small_job["out"].rsplit("/", 1)[0])
        # nothing trained or logged (the basename lock, taken before connecting, may be there)
        leftover = os.listdir(small_job["checkpoints"]) if os.path.exists(small_job["checkpoints"]) else []
        assert [f for f in leftover if not f.endswith(".lock")] == []


# --- inputs the network cannot use: refused on the client, before the output exists -------------
@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    """A tiny U-Net (input (14, 28, 28) voxels) with a checkpoint of random weights, and another network."""
    from daskseg.jax.checkpoint import save_checkpoint
    from daskseg.jax.model import FlaxUNetModel

    d = tmp_path_factory.mktemp("tiny-net")
    shapes = dict(train_input_shape=(14, 24, 24), predict_input_shape=(14, 28, 28), fmap_inc_factor=2,
                  downsample_factors=[(1, 2, 2)])
    create_networks(d, num_fmaps=2, **shapes)
    create_networks(d / "other", num_fmaps=3, **shapes)
    state = FlaxUNetModel(str(d / "train_net_config.json"), seed=3).initialize()
    checkpoint = save_checkpoint(str(d / "train_net"), 1, state)
    return {"config": str(d / "test_net_config.json"), "other": str(d / "other" / "test_net_config.json"),
            "checkpoint": checkpoint, "dir": d}


def raw_of(tmp_path, data, voxel_size=(40, 4, 4), **attrs) -> str:
    write_array(tmp_path / "raw.zarr", "raw", data, voxel_size)
    if attrs:
        import zarr

        zarr.open_array(str(tmp_path / "raw.zarr" / "raw" / "s0"), mode="r+").attrs.update(attrs)  # level 0
    return f"{tmp_path}/raw.zarr/raw"


def corrupt(tiny_net, tmp_path, how: str) -> str:
    path = tmp_path / "train_net_checkpoint_1"
    shutil.copy(tiny_net["checkpoint"], path)
    if how == "truncated":
        garble(str(path))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    return str(path)


SHAPE = (28, 64, 64)
UINT8 = np.random.default_rng(1).integers(0, 255, SHAPE, dtype=np.uint8)
CASES = {
    "int8": (lambda t, n: {"raw": raw_of(t, UINT8.astype(np.int8) // 2)},
             ["has dtype int8, which has no default normalisation", "--normalize-factor"]),
    "bool": (lambda t, n: {"raw": raw_of(t, UINT8 > 100)}, ["has dtype bool", "--normalize-factor"]),
    "4d": (lambda t, n: {"raw": raw_of(t, np.stack([UINT8, UINT8]))},
           ["has shape (2, 28, 64, 64): 1 channel dimension(s) (2,)", "single-channel 3-D raw"]),
    "other-network": (lambda t, n: {"network": n["other"]}, ["CheckpointError", "does not fit the network config"]),
    "truncated": (lambda t, n: {"checkpoint": corrupt(n, t, "truncated")}, ["CheckpointError", "could not be read"]),
    "zero-bytes": (lambda t, n: {"checkpoint": corrupt(n, t, "empty")}, ["CheckpointError", "the file is empty"]),
    "random-bytes": (lambda t, n: {"checkpoint": corrupt(n, t, "random")},
                     ["CheckpointError", "not a daskseg checkpoint"]),
    "float-0-255": (lambda t, n: {"raw": raw_of(t, UINT8.astype(np.float32))},
                    ["normalised intensities range over [0, 254], outside [0, 1]", "--normalize-factor"]),
    "all-nan": (lambda t, n: {"raw": raw_of(t, np.full(SHAPE, np.nan, np.float32))}, ["holds only NaN"]),
    "resolution-vs-voxel-size": (lambda t, n: {"raw": raw_of(t, UINT8, resolution=[8, 8, 8])},
                                 ["resolution [8, 8, 8] and voxel_size [40, 4, 4]", "disagree"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_predict_refuses_inputs_the_network_cannot_use_before_writing(tiny_net, tmp_path, case):
    make, fragments = CASES[case]
    given = {"raw": raw_of(tmp_path, UINT8), "network": tiny_net["config"], "checkpoint": tiny_net["checkpoint"]}
    given.update(make(tmp_path, tiny_net))
    out = tmp_path / "out.zarr"
    result = run_cli(["predict", "--network", given["network"], "--checkpoint", given["checkpoint"], "--raw",
                      given["raw"], "--out", f"{out}/pred", "--workers", "1", "--no-progress"], timeout=120)
    assert_clear_failure(result, *fragments)
    assert "Dask dashboard" not in result.stderr  # refused before any cluster started
    assert not out.exists()


def test_a_normalisation_factor_makes_int8_raw_usable(tiny_net, tmp_path):
    from daskseg.blockwise.network import NetworkProcessor
    from daskseg.errors import InputDataError
    from daskseg.io import open_dataset as open_ds

    path = raw_of(tmp_path, (UINT8 // 2).astype(np.int8))
    raw = open_ds(path.rsplit("/", 1)[0], "raw")
    NetworkProcessor(tiny_net["config"], tiny_net["checkpoint"], normalize_factor=1 / 127).check_input(raw)
    with pytest.raises(InputDataError, match=r"range over \[0, 1.00794\]"):
        NetworkProcessor(tiny_net["config"], tiny_net["checkpoint"], normalize_factor=1 / 126).check_input(raw)


def test_a_raw_without_voxel_size_names_the_cli_option(tmp_path):
    import zarr

    zarr.open_group(str(tmp_path / "raw.zarr"), mode="w").create_array("raw", shape=(8, 8, 8), dtype="uint8")
    result = run_cli(["predict", "--raw", f"{tmp_path}/raw.zarr/raw", "--out", f"{tmp_path}/out.zarr/p",
                      "--processor", MAX3, "--workers", "1", "--no-progress"])
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "give it with --voxel-size, e.g. --voxel-size 40,4,4" in result.stderr
    assert "array_specs" not in result.stderr
