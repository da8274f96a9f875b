"""`daskseg evaluate` as a subprocess against a separately started scheduler and worker processes
(whose working directory is not the client's): the scores equal the in-memory evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from distributed import Client

from daskseg.io import write_array
from daskseg.segment import cremi_scores

from .helpers import run_cli, workers_import_tests  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.integration

VS = (40, 4, 4)


def test_cli_evaluate_on_separate_workers_with_relative_paths(process_cluster, tmp_path):
    rng = np.random.default_rng(11)
    gt = np.kron(rng.integers(0, 12, size=(4, 6, 6)), np.ones((3, 8, 8), int)).astype(np.uint64)
    seg = np.kron(rng.integers(0, 15, size=(6, 8, 8)), np.ones((2, 6, 6), int)).astype(np.uint32)
    mask = np.ones(gt.shape, np.uint8)
    mask[:, :5] = 0
    write_array(tmp_path / "seg.zarr", "volumes/segmentation", seg, VS, chunk_shape=(4, 16, 16))
    write_array(tmp_path / "gt.hdf", "volumes/labels", gt, VS)
    write_array(tmp_path / "mask.zarr", "mask", mask, VS)
    out = run_cli(["evaluate", "--seg", "seg.zarr/volumes/segmentation", "--gt", "gt.hdf/volumes/labels",
                   "--mask", "mask.zarr/mask", "--block-shape", "4,16,16", "--scheduler", process_cluster.address,
                   "--json", "--no-progress"], cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    numbers = json.loads(out.stdout)
    for name, value in cremi_scores(seg, gt, mask=mask).items():
        assert numbers[name] == pytest.approx(value, abs=1e-9, rel=0), name
    assert numbers["num_blocks"] == 3 * 3 * 3 and numbers["processed"] == 27
    with Client(process_cluster.address, timeout=30) as client:
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert {"evaluate-block", "evaluate-sum", "evaluate-scores"} <= set(prefixes), prefixes
