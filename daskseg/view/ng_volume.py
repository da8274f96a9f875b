"""``PyramidVolume``: a neuroglancer ``LocalVolume`` that serves zoomed-out views from the image's
pyramid levels (``daskseg pyramid``) instead of downsampling level 0 on the fly.

Neuroglancer asks a ``LocalVolume`` for chunks at downsampling factors it chooses itself (near
isotropic: for 40x4x4 nm 1,2,2 then 1,4,4, 1,8,8, 2,16,16, the factors ``daskseg pyramid`` uses
by default). A request at factor ``D`` is answered from the coarsest level whose factor ``F``
divides ``D`` and whose voxels line up with level 0's (its offset equals level 0's: levels lie on
the world grid of their voxel size, so an image whose offset is not a multiple of a level's voxel
size cannot use that level), downsampled by ``D / F`` where that is more than 1 (mean for images,
non-zero mode for segmentations, as the levels were made). So a zoomed-out view reads about as
many voxels as it shows, and neuroglancer may zoom out as far as the coarsest level allows.
Imported only once neuroglancer is known to be installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import neuroglancer
import numpy as np
from neuroglancer.chunks import encode_jpeg, encode_npz, encode_raw
from neuroglancer.downsample_scales import DEFAULT_MAX_DOWNSAMPLING

from ..pyramid import downsample_mean, downsample_mode


class PyramidVolume(neuroglancer.LocalVolume):
    """A ``LocalVolume`` over level 0 that answers coarser requests from pyramid levels.

    Args:
        data: level 0 (an array-like ``LocalVolume`` takes).
        levels (Sequence[tuple[Sequence[int], Any]]): ``(factor, array)`` per usable level: its
            downsampling factor from level 0 over all axes (1 for channels) and its voxels, which
            start where level 0's start.
        **kwargs: as for ``LocalVolume``.
    """

    def __init__(self, data: Any, levels: Sequence[tuple[Sequence[int], Any]] = (), **kwargs: Any):
        self.levels = [(np.asarray(f, dtype=np.int64), array) for f, array in levels]
        if self.levels:
            coarsest = max(math.prod(int(v) for v in f) for f, _ in self.levels)
            kwargs.setdefault("max_downsampling", max(DEFAULT_MAX_DOWNSAMPLING, coarsest * 8))
        super().__init__(data, **kwargs)

    def level_for(self, factor: np.ndarray) -> tuple[np.ndarray, Any] | None:
        """The coarsest level whose factor divides ``factor`` (None: level 0 is the best)."""
        usable = [(f, a) for f, a in self.levels if np.all(factor % f == 0)]
        return max(usable, key=lambda fa: int(np.prod(fa[0])), default=None)

    def get_encoded_subvolume(self, data_format, start, end, scale_key):
        factor = np.array(scale_key.split(","), dtype=np.int64)
        level = self.level_for(factor) if len(factor) == self.rank else None
        if level is None:
            return super().get_encoded_subvolume(data_format, start, end, scale_key)
        start, end = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
        downsampled_shape = -(-np.asarray(self.shape, dtype=np.int64) // factor)
        if np.prod(factor) > self.max_downsampling:
            raise ValueError("Invalid downsampling factor.")
        if len(start) != self.rank or np.any(end < start) or np.any(start < 0) or np.any(end > downsampled_shape):
            raise ValueError("Out of bounds data request.")
        level_factor, array = level
        rest = factor // level_factor
        selection = tuple(slice(int(s * r), int(min(n, e * r))) for s, e, r, n in zip(start, end, rest, array.shape))
        subvol = np.asarray(array[selection])
        if np.any(rest > 1):
            reduce = downsample_mode if self.volume_type == "segmentation" else downsample_mean
            subvol = reduce(subvol, tuple(int(r) for r in rest))
        subvol = subvol[tuple(slice(0, int(e - s)) for s, e in zip(start, end))]
        if subvol.dtype == np.float64:
            subvol = subvol.astype(np.float32)
        if data_format == "jpeg":
            return encode_jpeg(subvol), "image/jpeg"
        if data_format == "npz":
            return encode_npz(subvol), "application/octet-stream"
        if data_format == "raw":
            return encode_raw(subvol), "application/octet-stream"
        raise ValueError("Invalid data format requested.")
