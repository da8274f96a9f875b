"""Shared fixtures: small synthetic containers in tmp_path and keys."""

from __future__ import annotations

import dask.config
import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array


@pytest.fixture(scope="session", autouse=True)
def _jax_compilation_cache(tmp_path_factory):
    """Compiled XLA programs go to one temporary cache for the session, not to ~/.cache; the worker
    and CLI processes the tests start (which inherit the environment) share it."""
    directory = str(tmp_path_factory.mktemp("jax_compilation_cache"))
    with pytest.MonkeyPatch.context() as mp, dask.config.set({"daskseg.jax.compilation-cache": directory}):
        mp.setenv("DASK_DASKSEG__JAX__COMPILATION_CACHE", directory)
        yield


@pytest.fixture
def keys():
    return gp.ArrayKey("RAW"), gp.ArrayKey("LABELS")


@pytest.fixture(params=["zarr", "hdf"])
def small_sample(tmp_path, request):
    """A (10, 40, 40)-voxel sample at (40, 4, 4) nm with a known ramp raw and striped labels."""
    path = tmp_path / f"sample.{request.param}"
    raw = (np.arange(10 * 40 * 40) % 251).astype(np.uint8).reshape(10, 40, 40)
    labels = np.repeat((np.arange(40) // 10 + 1).astype(np.uint64)[None, None, :], 10, axis=0)
    labels = np.repeat(labels, 40, axis=1)
    write_array(path, "volumes/raw", raw, (40, 4, 4), offset=(400, 40, 40))
    write_array(path, "volumes/labels/neuron_ids", labels, (40, 4, 4), offset=(400, 40, 40))
    return path, raw, labels
