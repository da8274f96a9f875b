"""``ZarrSource``: arrays from a Zarr (v2/v3) or N5 container."""

from __future__ import annotations

import os

from ..array import ArrayKey, ArraySpec
from ..errors import ArgumentError
from .dataset_source import DatasetSource


class ZarrSource(DatasetSource):
    """Provide arrays from datasets of a Zarr container, reading only the requested ROIs.

    Args:

        store (``str``):

            The ``.zarr`` container (gunpowder 1.5's name; only paths, not store objects).

        datasets (``dict[ArrayKey, str]``):

            Which dataset provides which array, e.g. ``{raw: 'volumes/raw'}``.

        array_specs (``dict[ArrayKey, ArraySpec]``, optional):

            Override what is read from the file's metadata (voxel size and offset come from
            ``resolution``/``voxel_size``/``offset`` attributes or OME-Zarr ``multiscales``; without any,
            voxel size 1 per axis is assumed with a warning, as gunpowder does). A dataset
            that is an OME-Zarr image group is read at its level 0.

        channels_first (``bool``):

            Channel axes lead the spatial axes (the only supported layout).

        filename (``str``):

            Gunpowder's older name for ``store``.
    """

    def __init__(
        self,
        store: str | os.PathLike | None = None,
        datasets: dict[ArrayKey, str] | None = None,
        array_specs: dict[ArrayKey, ArraySpec] | None = None,
        channels_first: bool = True,
        filename: str | os.PathLike | None = None,
    ):
        if (store is None) == (filename is None):
            raise ArgumentError("ZarrSource: give the container as store= (or filename=), exactly one of them")
        path = store if store is not None else filename
        if not isinstance(path, (str, os.PathLike)):
            raise ArgumentError(f"ZarrSource: store must be a path, not a {type(path).__name__}")
        if datasets is None:
            raise ArgumentError("ZarrSource: datasets (dict from ArrayKey to dataset name) is required")
        super().__init__(path, datasets, array_specs, channels_first)
