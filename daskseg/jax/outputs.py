"""Where a network's outputs go in a batch: their specs and ROIs, shared by ``Train`` and ``Predict``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..array import Array, ArrayKey, ArraySpec
from ..errors import SpecError
from ..geometry import Coordinate, Roi


def output_roi(data_shape: tuple[int, ...], voxel_size: Coordinate, centre_of: Roi) -> Roi:
    """The ROI of network output ``data_shape`` (spatial last) centred on ``centre_of``, on its voxel grid.

    The margin between input and output is counted in whole voxels; where it is odd (an odd output
    shape in world units, e.g. voxel size 1 and output 45 in an input of 134) the extra voxel goes to
    the end, as valid convolutions crop it.

    Args:
        data_shape (tuple[int, ...]): the output array's shape, spatial axes last.
        voxel_size (Coordinate): the output's voxel size.
        centre_of (Roi): the input ROI the output is centred in.
    """
    dims = centre_of.dims
    voxel_size = Coordinate(voxel_size)
    out_voxels = Coordinate(data_shape[-dims:])
    in_voxels = centre_of.shape // voxel_size
    margin = (in_voxels - out_voxels) // 2
    return Roi(centre_of.offset + margin * voxel_size, out_voxels * voxel_size)


def output_spec(array_specs: Mapping[ArrayKey, ArraySpec], key: ArrayKey) -> ArraySpec:
    """The spec model output ``key`` is provided with: a copy of ``array_specs[key]`` (or an empty
    spec), not interpolatable and float32 where it does not say; the caller fills in the rest."""
    spec = array_specs[key].copy() if key in array_specs else ArraySpec()
    if spec.interpolatable is None:
        spec.interpolatable = False
    if spec.dtype is None:
        spec.dtype = np.float32
    return spec


def place_output(
    key: ArrayKey, data: np.ndarray, spec: ArraySpec, requested: Roi | None, centre_of: Roi | None
) -> Array:
    """``data`` as an Array on ``requested``: as is if the shapes agree, else centred on ``centre_of`` and cropped."""
    if requested is None:
        raise SpecError(f"output {key} is requested without a ROI")
    vs = spec.voxel_size
    if vs is None:
        raise SpecError(f"output {key} has no voxel size: give it in the node's array_specs")
    dims = requested.dims
    expected = tuple(requested.shape / vs)
    if data.ndim < dims:
        raise SpecError(f"output {key} has shape {data.shape}, fewer than the {dims} spatial dimensions of its ROI")
    spec = spec.copy()
    if tuple(data.shape[-dims:]) == expected:
        spec.roi = requested
        return Array(data, spec)
    if centre_of is None:
        raise SpecError(
            f"output {key} has spatial shape {tuple(data.shape[-dims:])}, but {requested} at voxel size {vs} "
            f"needs {expected}; request the ROI the network produces"
        )
    roi = output_roi(data.shape, vs, centre_of)
    if not roi.contains(requested):
        raise SpecError(
            f"output {key} of spatial shape {tuple(data.shape[-dims:])} covers {roi} (centred on the input "
            f"{centre_of}), which does not contain the requested {requested}; request the output inside the "
            f"input's ROI shrunk by the network's context"
        )
    spec.roi = roi
    return Array(data, spec).crop(requested)
