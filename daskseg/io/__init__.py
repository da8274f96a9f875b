"""Zarr and HDF5 datasets in world units, and the metadata conventions daskseg reads and writes."""

from .dataset import (
    Dataset,
    container_format,
    create_dataset,
    list_datasets,
    open_dataset,
    read_metadata,
    set_attrs,
    split_dataset_path,
    write_array,
    write_plain,
)
from .metadata import SpatialMetadata
from .ome import (
    Level,
    OmeImage,
    add_level,
    add_redirect,
    create_image,
    is_label,
    level_path,
    mark_label,
    read_image,
    resolve_array,
)

__all__ = [
    "Dataset",
    "Level",
    "OmeImage",
    "SpatialMetadata",
    "add_level",
    "add_redirect",
    "create_image",
    "is_label",
    "level_path",
    "mark_label",
    "read_image",
    "resolve_array",
    "container_format",
    "create_dataset",
    "list_datasets",
    "open_dataset",
    "read_metadata",
    "set_attrs",
    "split_dataset_path",
    "write_array",
    "write_plain",
]
