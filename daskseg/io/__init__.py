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

__all__ = [
    "Dataset",
    "SpatialMetadata",
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
