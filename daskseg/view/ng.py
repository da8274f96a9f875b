"""Neuroglancer layers of ``LayerSpec``s, served from this process (neuroglancer's ``LocalVolume``).

Each dataset becomes a ``LocalVolume`` whose coordinate space is the world's: axes ``z, y, x`` in
nanometres with the dataset's voxel size as scales, and ``voxel_offset = offset / voxel_size``; a
channel dimension is named ``c^``, which neuroglancer shows as channels. Neuroglancer places voxel
``i`` of a ``LocalVolume`` from ``offset + i * voxel_size`` to ``offset + (i + 1) * voxel_size``:
the funlib/daskseg convention, so every layer lands exactly where daskseg says it lies, whatever
its voxel size, and HDF5 inputs (CREMI's ``.hdf``) show as well as Zarr outputs. The viewer reads
only the chunks the browser asks for; zoomed out, it serves the image's pyramid levels
(``daskseg pyramid``) where they line up with level 0, else downsamples level 0 on the fly.

Labels are segmentation layers, affinities images whose three channels are shown as RGB, raw a
grey image. ``open_viewer`` serves them on 127.0.0.1; its ``viewer.state`` is the JSON state (the
layers' sources are ``python://volume/<key>``, whose ``/neuroglancer/info/<key>`` the server answers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ViewerError
from ..geometry import Roi
from ..io import Dataset
from .layers import CHANNELS, LABELS, LayerSpec, bounding_roi, finest_voxel_size

logger = logging.getLogger(__name__)

SPATIAL_NAMES = ("z", "y", "x")


def _neuroglancer():
    try:
        import neuroglancer
    except ImportError:
        raise ViewerError(
            "neuroglancer is not installed: pip install 'daskseg[view]' (or pip install neuroglancer)"
        ) from None
    return neuroglancer


def spatial_names(dims: int) -> list[str]:
    return list(SPATIAL_NAMES[-dims:]) if dims <= 3 else [f"d{i}" for i in range(dims)]


class VoxelArray:
    """A ``Dataset`` as the array ``LocalVolume`` slices: voxel indices from the dataset's origin."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.shape = tuple(dataset.shape)
        self.dtype = dataset.dtype

    def __getitem__(self, item: tuple[slice, ...]) -> np.ndarray:
        ds = self.dataset
        channels = item[: ds.num_channel_dims]
        spatial = item[ds.num_channel_dims :]
        begin = [s.start or 0 for s in spatial]
        end = [n if s.stop is None else min(s.stop, n) for s, n in zip(spatial, self.shape[ds.num_channel_dims :])]
        roi = Roi(ds.roi.offset + ds.voxel_size * begin, ds.voxel_size * [e - b for b, e in zip(begin, end)])
        return ds.read(roi)[tuple(channels)]


def local_volume(spec: LayerSpec) -> Any:
    """The ``LocalVolume`` of one layer (world coordinate space, voxel offset, volume type), serving
    zoomed-out views from the image's pyramid levels where they line up (``ng_volume.py``)."""
    ng = _neuroglancer()
    ds = spec.dataset
    dims = spec.voxel_size.dims
    names = [f"c{i}^" if i else "c^" for i in range(ds.num_channel_dims)] + spatial_names(dims)
    units = [""] * ds.num_channel_dims + ["nm"] * dims
    scales = [1] * ds.num_channel_dims + [int(v) for v in spec.voxel_size]
    offset = [0] * ds.num_channel_dims + [int(o) for o in spec.offset / spec.voxel_size]
    from .ng_volume import PyramidVolume

    levels = []
    for level in spec.levels:
        factor = level.voxel_size / spec.voxel_size
        if level.roi.offset == spec.offset:  # its voxels line up with level 0's
            levels.append(([1] * ds.num_channel_dims + list(factor), VoxelArray(level)))
    return PyramidVolume(
        VoxelArray(ds),
        levels,
        dimensions=ng.CoordinateSpace(names=names, units=units, scales=scales),
        voxel_offset=offset,
        volume_type="segmentation" if spec.kind == LABELS else "image",
    )


def image_shader(spec: LayerSpec) -> str:
    """Grey for one channel, RGB of the first three channels (affinities z, y, x) otherwise."""
    low, high = spec.value_range
    control = f"#uicontrol invlerp normalized(range=[{low:g}, {high:g}])\n"
    if spec.kind == CHANNELS and spec.dataset.channel_shape[0] >= 3:
        return control + (
            "void main() {\n"
            "  emitRGB(vec3(toNormalized(getDataValue(0)), toNormalized(getDataValue(1)), "
            "toNormalized(getDataValue(2))));\n}\n"
        )
    return control + "void main() {\n  emitGrayscale(toNormalized());\n}\n"


def make_layer(spec: LayerSpec, volume: Any) -> Any:
    """A ``SegmentationLayer`` (labels) or ``ImageLayer`` (the rest) over ``volume``."""
    ng = _neuroglancer()
    if spec.kind == LABELS:
        return ng.SegmentationLayer(source=volume)
    return ng.ImageLayer(source=volume, shader=image_shader(spec))


def set_layers(state: Any, specs: Sequence[LayerSpec], volumes: Sequence[Any]) -> None:
    """Put the layers into a neuroglancer ``ViewerState`` and centre the view on their union."""
    ng = _neuroglancer()
    dims = specs[0].voxel_size.dims
    display = finest_voxel_size(specs)
    state.dimensions = ng.CoordinateSpace(names=spatial_names(dims), units="nm", scales=[int(v) for v in display])
    # x across and y down in the "xy" panel, z through it: in-plane EM sections, as users expect
    # (neuroglancer's default would show the first two axes, z and y, in that panel)
    state.display_dimensions = list(reversed(spatial_names(dims)))
    for spec, volume in zip(specs, volumes):
        state.layers[spec.name] = make_layer(spec, volume)
    roi = bounding_roi(specs)
    state.position = [float(c) / float(v) for c, v in zip(roi.center, display)]
    state.layout = "4panel"


def open_viewer(specs: Sequence[LayerSpec], bind_address: str = "127.0.0.1", port: int = 0) -> Any:
    """Serve the layers in a neuroglancer viewer on ``bind_address:port`` (0: any free port); returns
    the ``neuroglancer.Viewer`` (its URL: ``str(viewer)``). The server runs in background threads
    of this process until it exits."""
    ng = _neuroglancer()
    ng.set_server_bind_address(bind_address, port)
    viewer = ng.Viewer()
    volumes = [local_volume(s) for s in specs]
    with viewer.txn() as state:
        set_layers(state, specs, volumes)
    logger.info("neuroglancer viewer at %s", viewer)
    return viewer
