"""What an array holds, from its metadata and dtype: labels, channels (affinities) or intensities.

Viewers show labels as segmentation layers and the rest as images; pyramids downsample labels by
their mode and the rest by the mean. An array holds **labels** when it, or the group it belongs to,
carries an OME-Zarr ``image-label`` marker (``daskseg segment`` writes one; ``image-label`` at the
top of the attributes or under ``ome``), or when it is a 32- or 64-bit integer array without
channels (neuron ids); 8- and 16-bit integers are intensities (EM raw), floats are intensities, and
an array with a channel dimension (affinities) is **channels**.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .dataset import Dataset

LABELS = "labels"
CHANNELS = "channels"
INTENSITIES = "intensities"
KINDS = (LABELS, CHANNELS, INTENSITIES)


def _marked(attrs: Mapping[str, Any]) -> bool:
    ome = attrs.get("ome")
    return "image-label" in attrs or (isinstance(ome, Mapping) and "image-label" in ome)


def has_label_marker(ds: Dataset) -> bool:
    """Whether ``ds`` or the group holding its array (Zarr: the OME-Zarr image group, or the parent
    of an old-layout array) carries an OME-Zarr ``image-label`` marker."""
    if _marked(ds.attrs):
        return True
    if ds.format != "zarr" or "/" not in ds.array_name:
        return False
    import zarr

    parent = ds.array_name.rpartition("/")[0]
    try:
        group = zarr.open_group(os.path.join(ds.container, parent), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        return False
    return _marked(dict(group.attrs))


def array_kind(ds: Dataset) -> str:
    """``'labels'``, ``'channels'`` or ``'intensities'`` (the rule in the module docstring)."""
    if has_label_marker(ds):
        return LABELS
    if ds.num_channel_dims:
        return CHANNELS
    if np.issubdtype(ds.dtype, np.integer) and ds.dtype.itemsize >= 4:
        return LABELS
    return INTENSITIES
