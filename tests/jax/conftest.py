"""Helpers of the JAX node tests: a tiny network config and an in-memory source."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.models import UNetConfig

#: a tiny U-Net: two levels, few feature maps; compiles and trains in seconds on a CPU
TINY = UNetConfig(num_fmaps=4, fmap_inc_factor=2, downsample_factors=[(1, 2, 2)])


class ArraysSource(gp.BatchProvider):
    """Provides fixed numpy arrays (spatial axes last) at a voxel size, offset 0."""

    def __init__(self, arrays: dict, voxel_size=(1, 1, 1)):
        self.arrays = arrays
        self.voxel_size = gp.Coordinate(voxel_size)

    def setup(self):
        for key, data in self.arrays.items():
            shape = gp.Coordinate(data.shape[-3:]) * self.voxel_size
            self.provides(
                key,
                gp.ArraySpec(roi=gp.Roi((0, 0, 0), shape), voxel_size=self.voxel_size, dtype=data.dtype,
                             interpolatable=data.dtype.kind == "f"),
            )

    def provide(self, request):
        batch = gp.Batch()
        for key, spec in request.items():
            array = gp.Array(self.arrays[key], self.spec[key])
            batch[key] = array.crop(spec.roi)
        return batch


@pytest.fixture
def tiny():
    return TINY


def boundary_volume(shape, seed=0):
    """A learnable toy: raw is dark on the faces of random boxes, gt affinities are 0 across them."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint64)
    z = np.arange(shape[0])[:, None, None]
    y = np.arange(shape[1])[None, :, None]
    x = np.arange(shape[2])[None, None, :]
    labels = (y // 7) * 1000 + (x // 9) * 10 + z // 5 + 1
    raw = np.ones(shape, np.float32) * 0.8
    for axis in (1, 2):
        edge = np.diff(labels, axis=axis, prepend=np.take(labels, [0], axis=axis)) != 0
        raw[edge] = 0.1
    raw += rng.normal(0, 0.05, shape).astype(np.float32)
    affs = np.stack(
        [np.concatenate([np.ones_like(np.take(labels, [0], axis=a)), (np.diff(labels, axis=a) == 0)], axis=a)
         for a in range(3)]
    ).astype(np.float32)
    return raw.astype(np.float32), labels, affs


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Share compiled programs between the tests' Train/Predict nodes (each builds its own jit)."""
    import jax

    old = {
        name: getattr(jax.config, name)
        for name in ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                     "jax_persistent_cache_min_entry_size_bytes")
    }
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for name, value in old.items():
        jax.config.update(name, value)
