"""The layers to show: one ``LayerSpec`` per dataset, with what it holds and where it lies."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ViewerError
from ..geometry import Coordinate, Roi
from ..io import Dataset, list_datasets, open_dataset, read_image, split_dataset_path
from ..io.kinds import CHANNELS, LABELS, array_kind

CONTAINER_SUFFIXES = (".zarr", ".n5", ".hdf", ".h5", ".hdf5")


@dataclass(frozen=True)
class LayerSpec:
    """One dataset as a viewer layer.

    Attributes:
        name: the layer's name (the dataset's name, made unique).
        kind: ``'labels'`` (a segmentation layer), ``'channels'`` (an image with a channel
            dimension: affinities) or ``'intensities'`` (an image: raw), by ``daskseg.io.kinds``.
        dataset: the open dataset.
    """

    name: str
    kind: str
    dataset: Dataset

    @property
    def voxel_size(self) -> Coordinate:
        return self.dataset.voxel_size

    @property
    def offset(self) -> Coordinate:
        """World coordinates of the corner of voxel 0 (daskseg's and funlib's offset)."""
        return self.dataset.roi.offset

    @property
    def roi(self) -> Roi:
        return self.dataset.roi

    @property
    def levels(self) -> list[Dataset]:
        """The coarser resolution levels of the dataset's OME-Zarr image (``s1``, ...), finest first."""
        return pyramid_levels(self.dataset)

    @property
    def value_range(self) -> tuple[float, float]:
        """The range shown from black to white: the integer dtype's range, or [0, 1] for floats."""
        dtype = self.dataset.dtype
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return float(info.min), float(info.max)
        return 0.0, 1.0


def pyramid_levels(ds: Dataset) -> list[Dataset]:
    """The levels below level 0 of the OME-Zarr image whose level 0 ``ds`` is (none for HDF5 and
    plain arrays)."""
    if ds.format != "zarr" or "/" not in ds.array_name:
        return []
    group = ds.array_name.rpartition("/")[0]
    image = read_image(ds.container, group)
    if image is None or image.level_name(0) != ds.array_name:
        return []
    return [open_dataset(ds.container, image.level_name(k)) for k in range(1, len(image.levels))]


def _expand(path: str) -> list[tuple[str, str]]:
    """``(container, name)`` of the dataset ``path`` names, or of every dataset of a container."""
    text = os.fspath(path).rstrip("/")
    if text.lower().endswith(CONTAINER_SUFFIXES):
        if not os.path.exists(text):
            raise ViewerError(f"nothing to show at {text!r}: it does not exist")
        return [(text, name) for name in list_datasets(text)]
    return [split_dataset_path(text)]


def layer_specs(paths: Sequence[str], kinds: dict[str, str] | None = None) -> list[LayerSpec]:
    """A ``LayerSpec`` for each dataset of ``paths`` (``C.zarr/volumes/raw``, or a container: all
    its datasets), in the order given.

    Args:
        paths (Sequence[str]): datasets or containers.
        kinds (dict[str, str], optional): a kind per path given, replacing the one found.

    Raises:
        ViewerError: no paths, or a container without datasets.
        DatasetError: a path that names no dataset (or one without a voxel size).
    """
    if not paths:
        raise ViewerError("nothing to show: give one or more datasets, e.g. pred.zarr/volumes/pred_affs")
    specs: list[LayerSpec] = []
    used: set[str] = set()
    for path in paths:
        found = _expand(path)
        if not found:
            raise ViewerError(f"nothing to show in {path!r}: it holds no datasets")
        for container, name in found:
            ds = open_dataset(container, name)
            kind = (kinds or {}).get(path) or array_kind(ds)
            layer_name = name.strip("/").split("/")[-1]
            if layer_name in used:
                layer_name = f"{os.path.basename(container.rstrip('/'))}/{name}"
            used.add(layer_name)
            if specs and ds.voxel_size.dims != specs[0].voxel_size.dims:
                raise ViewerError(
                    f"{container}/{name} has {ds.voxel_size.dims} spatial dimensions, {specs[0].dataset} has "
                    f"{specs[0].voxel_size.dims}: layers of one view share their world axes"
                )
            specs.append(LayerSpec(layer_name, kind, ds))
    return specs


def bounding_roi(specs: Sequence[LayerSpec]) -> Roi:
    """The smallest ROI containing every layer."""
    roi = specs[0].roi
    for spec in specs[1:]:
        roi = roi.union(spec.roi)
    return roi


def finest_voxel_size(specs: Sequence[LayerSpec]) -> Coordinate:
    """The smallest voxel size per axis among the layers (the viewer's display resolution)."""
    return Coordinate(min(v) for v in zip(*(s.voxel_size for s in specs)))


__all__ = ["CHANNELS", "LABELS", "LayerSpec", "bounding_roi", "finest_voxel_size", "layer_specs"]
