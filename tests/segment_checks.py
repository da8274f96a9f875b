"""Test data and checks shared by the segmentation tests: random Voronoi labellings, partition
equality, reading a dataset back by its ``container.zarr/name`` path.

Import from a test module (``from segment_checks import same_partition``); the ``tests`` folder is
on ``sys.path`` because ``tests/conftest.py`` lives there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from daskseg.io import open_dataset


def voronoi_labels(rng: np.random.Generator, shape: Sequence[int], cells: int) -> np.ndarray:
    """uint64 labels 1..``cells`` of a random Voronoi partition of ``shape`` (seed points from ``rng``)."""
    seeds = np.zeros(shape, np.int64)
    seeds[tuple(rng.integers(0, shape, (cells, 3)).T)] = np.arange(1, cells + 1)
    _, index = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    return seeds[tuple(index)].astype(np.uint64)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label arrays split the voxels the same way (ids may differ)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


def read(path: str) -> np.ndarray:
    """The whole dataset at ``'<container>.zarr/<name>'``."""
    container, _, name = path.partition(".zarr/")
    return open_dataset(container + ".zarr", name).read()
