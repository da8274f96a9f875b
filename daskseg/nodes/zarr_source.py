"""``ZarrSource``: arrays from a Zarr (v2/v3) or N5 container."""

from .dataset_source import DatasetSource


class ZarrSource(DatasetSource):
    """Provide arrays from datasets of a Zarr container, reading only the requested ROIs.

    Args:
        filename (str): the ``.zarr`` container.
        datasets (dict[ArrayKey, str]): which dataset provides which array, e.g. ``{raw: 'volumes/raw'}``.
        array_specs (dict[ArrayKey, ArraySpec], optional): override what is read from the file's
            metadata (voxel size and offset come from ``resolution``/``voxel_size``/``offset``
            attributes or OME-Zarr ``multiscales``; a voxel size must be given here when absent).
        channels_first (bool): channel axes lead the spatial axes (the only supported layout).
    """
