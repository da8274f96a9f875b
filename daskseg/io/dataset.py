"""Zarr and HDF5 datasets addressed in world units: ``open_dataset``, ``create_dataset``, ``Dataset``.

A ``Dataset`` knows its ROI and voxel size and reads or writes any voxel-aligned sub-ROI, touching
only the chunks that ROI covers. The format follows the container's extension (``.zarr``/``.n5`` →
Zarr, ``.hdf``/``.h5``/``.hdf5`` → HDF5). Datasets pickle by path, so Dask workers reopen them.

Zarr datasets are OME-Zarr image groups (``ome.py``): ``create_dataset('OUT.zarr', 'volumes/affs')``
makes the group ``volumes/affs`` and its level ``volumes/affs/s0``; ``open_dataset`` opens a name
that is an image group as its level 0 (``Dataset.array_name``), and plain arrays as they are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, GeometryError, MissingVoxelSizeError
from ..geometry import Coordinate, Roi
from .metadata import SpatialMetadata, funlib_attrs, read_attrs_metadata, read_ome_metadata
from .ome import create_image, read_image, redirect_target, resolve_array

logger = logging.getLogger(__name__)

HDF5_SUFFIXES = (".hdf", ".h5", ".hdf5")


def container_format(path: str | os.PathLike) -> str:
    """``'zarr'`` or ``'hdf5'`` from the container's extension."""
    p = str(path).rstrip("/").lower()
    if p.endswith(HDF5_SUFFIXES):
        return "hdf5"
    if p.endswith((".zarr", ".n5")):
        return "zarr"
    raise DatasetError(
        f"cannot tell the format of {path!r}: use a .zarr (or .n5) directory or a .hdf/.h5/.hdf5 file"
    )


def split_dataset_path(path: str) -> tuple[str, str]:
    """Split ``'sample.zarr/volumes/raw'`` into container ``'sample.zarr'`` and dataset ``'volumes/raw'``."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part.lower().endswith((".zarr", ".n5") + HDF5_SUFFIXES):
            container = str(Path(*parts[: i + 1]))
            name = "/".join(parts[i + 1 :])
            if not name:
                raise DatasetError(f"{path!r} names a container but no dataset inside it (e.g. {path}/volumes/raw)")
            return container, name
    raise DatasetError(f"{path!r} contains no .zarr, .n5 or .hdf/.h5 container")


class Dataset:
    """A spatial array in a Zarr or HDF5 container, with its ROI and voxel size in world units."""

    def __init__(
        self,
        container: str | os.PathLike,
        name: str,
        metadata: SpatialMetadata,
        mode: str = "r",
        array_name: str | None = None,
    ):
        # absolute, so that a copy sent to a worker (whose working directory may differ) finds it
        self.container = os.path.abspath(os.fspath(container))
        self.name = name.strip("/")
        # the array holding the voxels: the name itself, or level 0 of the image group ``name``
        self.array_name = (array_name or name).strip("/")
        self.mode = mode
        self.format = container_format(container)
        self._handle: Any = None
        self._pid: int | None = None
        array = self._array()
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.chunk_shape = tuple(array.chunks) if array.chunks is not None else self.shape
        vs = metadata.voxel_size
        if vs is None:
            raise DatasetError(f"{self}: no voxel size (give one, e.g. voxel_size=(40, 4, 4))")
        dims = len(vs)
        if dims > len(self.shape):
            raise DatasetError(
                f"{self}: voxel size {vs} has {dims} dimensions but the data has shape {self.shape}"
            )
        self.voxel_size = Coordinate(vs)
        self.num_channel_dims = len(self.shape) - dims
        offset = metadata.offset if metadata.offset is not None else Coordinate((0,) * dims)
        if not Coordinate(offset).is_multiple_of(self.voxel_size):
            raise DatasetError(f"{self}: offset {offset} is not a multiple of the voxel size {self.voxel_size}")
        self.roi = Roi(offset, Coordinate(self.shape[self.num_channel_dims :]) * self.voxel_size)
        self.axis_names = metadata.axis_names
        self.units = metadata.units

    # --- backend access ---------------------------------------------------------------------
    def _array(self):
        """The open zarr array / h5py dataset, reopened after a fork or unpickling."""
        if self._handle is None or self._pid != os.getpid():
            self._handle = _open_backend(self.container, self.array_name, self.mode)
            self._pid = os.getpid()
        return self._handle[1]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = None
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._handle is not None and self._handle[0] is not None:
            self._handle[0].close()
        self._handle = None

    # --- world-unit access ------------------------------------------------------------------
    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def attrs(self) -> dict:
        """The dataset's attributes (a copy)."""
        return dict(self._array().attrs)

    def update_attrs(self, attrs: dict) -> None:
        """Add or replace attributes of the dataset (opened for writing)."""
        self._array().attrs.update(attrs)

    @property
    def shard_shape(self) -> tuple[int, ...] | None:
        """The shape of the dataset's Zarr shards, or ``None`` when it is not sharded (HDF5 never is)."""
        shards = getattr(self._array(), "shards", None)
        return tuple(shards) if shards is not None else None

    @property
    def channel_shape(self) -> tuple[int, ...]:
        return self.shape[: self.num_channel_dims]

    def _slices(self, roi: Roi) -> tuple[slice, ...]:
        if not roi.is_aligned(self.voxel_size) or not (roi.offset - self.roi.offset).is_multiple_of(self.voxel_size):
            raise GeometryError(
                f"{self}: ROI {roi} is not aligned with the voxel grid (voxel size {self.voxel_size}, "
                f"dataset offset {self.roi.offset})"
            )
        if not self.roi.contains(roi):
            raise DatasetError(f"{self}: ROI {roi} lies outside the dataset's ROI {self.roi}")
        begin = (roi.begin - self.roi.begin) // self.voxel_size
        end = (roi.end - self.roi.begin) // self.voxel_size
        return (slice(None),) * self.num_channel_dims + tuple(slice(b, e) for b, e in zip(begin, end))

    def read(self, roi: Roi | None = None) -> np.ndarray:
        """Read the voxels in ``roi`` (the whole dataset if None) as a numpy array."""
        roi = self.roi if roi is None else roi
        return np.asarray(self._array()[self._slices(roi)])

    def write(self, roi: Roi, data: np.ndarray) -> None:
        """Write ``data`` into ``roi``; its shape must be the ROI's in voxels (plus channel dims)."""
        slices = self._slices(roi)
        expected = self.channel_shape + tuple(roi.shape / self.voxel_size)
        if tuple(data.shape) != expected:
            raise DatasetError(f"{self}: data of shape {data.shape} does not fit ROI {roi} (expected {expected})")
        self._array()[slices] = data.astype(self.dtype, copy=False)

    def __repr__(self) -> str:
        return f"Dataset({self.container}/{self.name})"


def _open_backend(container: str, name: str, mode: str):
    name = name.strip("/")
    fmt = container_format(container)
    if fmt == "hdf5":
        import h5py

        if not os.path.exists(container):
            raise DatasetError(f"HDF5 file {container!r} does not exist")
        f = h5py.File(container, "r" if mode == "r" else "r+")
        if name not in f:
            available = _list_hdf5(f)
            f.close()
            raise DatasetError(f"no dataset {name!r} in {container!r}; datasets there: {available}")
        return f, f[name]
    import zarr

    if not os.path.exists(container):
        raise DatasetError(f"Zarr container {container!r} does not exist")
    try:
        array = zarr.open_array(os.path.join(container, name), mode="r" if mode == "r" else "r+")
    except (FileNotFoundError, KeyError, zarr.errors.NodeTypeValidationError, zarr.errors.ArrayNotFoundError) as e:
        raise DatasetError(
            f"no array {name!r} in {container!r}; arrays there: {list_datasets(container)}"
        ) from e
    return None, array


def _list_hdf5(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    return names


def list_datasets(container: str | os.PathLike, redirects: bool = False) -> list[str]:
    """Names of the datasets in a Zarr or HDF5 container: the arrays of an HDF5 file; in Zarr, OME
    image groups (not their level arrays), their label images and arrays outside images, and with
    ``redirects`` the redirects too (other names of the same data, see ``ome.add_redirect``)."""
    container = str(container)
    if container_format(container) == "hdf5":
        import h5py

        with h5py.File(container, "r") as f:
            return _list_hdf5(f)
    import zarr

    return sorted(_zarr_dataset_names(container, zarr.open_group(container, mode="r"), "", redirects))


def _zarr_dataset_names(container: str, group, prefix: str, redirects: bool) -> list[str]:
    names: list[str] = []
    for name, node in group.members():
        path = f"{prefix}{name}"
        if not hasattr(node, "members"):
            names.append(path)
            continue
        if redirect_target(container, path) is not None:
            names += [path] if redirects else []
        elif read_image(container, path) is not None:
            names.append(path)
            if "labels" in node:
                names += _zarr_dataset_names(container, node["labels"], f"{path}/labels/", redirects)
        else:
            names += _zarr_dataset_names(container, node, f"{path}/", redirects)
    return names


def read_metadata(container: str, name: str, voxel_size_given: bool = False) -> SpatialMetadata:
    """Voxel size and offset of a dataset from funlib attrs, else from OME-Zarr multiscales.

    Attributes ``resolution`` and ``voxel_size`` that disagree are refused (a ``DatasetError``
    naming both), unless ``voxel_size_given`` (the caller's voxel size replaces both; a warning).
    """
    name = name.strip("/")
    fmt = container_format(container)
    if fmt == "zarr":
        name = resolve_array(container, name)
    _, array = _open_backend(container, name, "r")
    try:
        attrs = dict(array.attrs)
        both = [attrs.get("resolution"), attrs.get("voxel_size")]
        if both[0] is not None and both[1] is not None and [int(v) for v in both[0]] != [int(v) for v in both[1]]:
            message = (f"{container}/{name} has attributes resolution {[int(v) for v in both[0]]} and voxel_size "
                       f"{[int(v) for v in both[1]]}, "
                       f"which disagree")
            if not voxel_size_given:
                raise DatasetError(f"{message}: fix the attributes, or give the voxel size (--voxel-size)")
            logger.warning("%s; using the voxel size given", message)
        meta = read_attrs_metadata(attrs)
        if meta.voxel_size is None and fmt == "zarr":
            import zarr

            parent, _, base = name.strip("/").rpartition("/")
            group = zarr.open_group(os.path.join(container, parent) if parent else container, mode="r")
            ome = read_ome_metadata(dict(group.attrs), base)
            meta = SpatialMetadata(
                voxel_size=ome.voxel_size,
                offset=meta.offset if meta.offset is not None else ome.offset,
                axis_names=meta.axis_names or ome.axis_names,
                units=meta.units or ome.units,
            )
        return meta
    finally:
        if fmt == "hdf5":
            array.file.close()


def open_dataset(
    container: str | os.PathLike,
    name: str,
    mode: str = "r",
    voxel_size: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
) -> Dataset:
    """Open an existing dataset; ``voxel_size``/``offset`` override (or stand in for) its metadata."""
    container = str(container)
    array_name = resolve_array(container, name) if container_format(container) == "zarr" else name
    meta = read_metadata(container, array_name, voxel_size_given=voxel_size is not None)
    vs = Coordinate(voxel_size) if voxel_size is not None else meta.voxel_size
    off = Coordinate(offset) if offset is not None else meta.offset
    if vs is None:
        raise MissingVoxelSizeError(
            f"{container}/{name} has no voxel size: neither 'resolution'/'voxel_size' attributes nor "
            f"OME-Zarr multiscales metadata were found; pass voxel_size (e.g. array_specs=ArraySpec(voxel_size=...))"
        )
    if voxel_size is not None and meta.voxel_size is not None and Coordinate(voxel_size) != meta.voxel_size:
        logger.warning(
            "%s/%s: given voxel size %s overrides the stored %s", container, name, voxel_size, meta.voxel_size
        )
    return Dataset(
        container, name, SpatialMetadata(vs, off, meta.axis_names, meta.units), mode=mode, array_name=array_name
    )


def create_dataset(
    container: str | os.PathLike,
    name: str,
    roi: Roi,
    voxel_size: Sequence[int],
    dtype: Any,
    channel_shape: Sequence[int] = (),
    chunk_shape: Sequence[int] | None = None,
    compression: str | None = "default",
    fill_value: Any = 0,
    overwrite: bool = False,
    label: bool = False,
) -> Dataset:
    """Create (or reopen, if it already matches) a dataset covering ``roi`` at ``voxel_size``.

    ``chunk_shape`` counts spatial voxels (channel dims are stored whole in each chunk).
    ``compression`` is ``'gzip'``, ``'zstd'``, ``'default'`` or None. An existing dataset with a
    different shape, dtype or voxel size raises rather than being silently replaced. In Zarr the
    dataset is an OME-Zarr image group with the data as its level ``s0``; ``label`` makes it an
    ``image-label`` (segmentations, ground truth).
    """
    container = str(container)
    name = name.strip("/")
    voxel_size = Coordinate(voxel_size)
    if not roi.is_aligned(voxel_size):
        raise GeometryError(f"cannot create {container}/{name}: ROI {roi} is not a multiple of voxel size {voxel_size}")
    channel_shape = tuple(int(c) for c in channel_shape)
    spatial_shape = tuple(roi.shape / voxel_size)
    shape = channel_shape + spatial_shape
    dtype = np.dtype(dtype)
    if chunk_shape is None:
        chunk_shape = tuple(min(s, c) for s, c in zip(spatial_shape, _default_chunks(len(spatial_shape))))
    chunks = channel_shape + tuple(min(int(c), max(s, 1)) for c, s in zip(chunk_shape, spatial_shape))
    fmt = container_format(container)

    if not overwrite and _exists(container, name):
        existing = open_dataset(container, name, mode="r+")
        if existing.shape != shape or existing.dtype != dtype or existing.voxel_size != voxel_size or existing.roi != roi:
            raise DatasetError(
                f"{container}/{name} exists with shape {existing.shape}, dtype {existing.dtype}, voxel size "
                f"{existing.voxel_size}, ROI {existing.roi}; wanted shape {shape}, dtype {dtype}, voxel size "
                f"{voxel_size}, ROI {roi}. Remove it or choose another dataset name."
            )
        return existing

    if fmt == "hdf5":
        import h5py

        Path(container).parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(container, "a") as f:
            if name in f:
                del f[name]
            kwargs = {}
            if compression in ("gzip", "default"):
                kwargs["compression"] = "gzip"
            elif compression not in (None, "none"):
                kwargs["compression"] = compression
            ds = f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, fillvalue=fill_value, **kwargs)
            ds.attrs.update(funlib_attrs(voxel_size, roi.offset, len(channel_shape)))
    else:
        create_image(
            container, name, shape, voxel_size, roi.offset, dtype, chunks, num_channel_dims=len(channel_shape),
            compressors=_zarr_compressors(compression), fill_value=fill_value, label=label,
        )
    logger.debug("created %s/%s: shape %s, chunks %s, dtype %s", container, name, shape, chunks, dtype)
    return open_dataset(container, name, mode="r+")


def _exists(container: str, name: str) -> bool:
    if not os.path.exists(container):
        return False
    if container_format(container) == "hdf5":
        import h5py

        with h5py.File(container, "r") as f:
            return name in f
    return os.path.exists(os.path.join(container, name.strip("/"), "zarr.json")) or os.path.exists(
        os.path.join(container, name.strip("/"), ".zarray")
    )


def _default_chunks(dims: int) -> tuple[int, ...]:
    return (64,) * dims


def _zarr_compressors(compression: str | None):
    import zarr.codecs

    if compression in (None, "none"):
        return None
    if compression == "gzip":
        return zarr.codecs.GzipCodec(level=5)
    if compression in ("default", "zstd", "blosc"):
        return zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")
    raise DatasetError(f"unknown compression {compression!r}: use 'gzip', 'zstd', 'default' or None")


def write_array(
    container: str | os.PathLike,
    name: str,
    data: np.ndarray,
    voxel_size: Sequence[int],
    offset: Sequence[int] | None = None,
    chunk_shape: Sequence[int] | None = None,
    compression: str | None = "default",
    label: bool = False,
) -> Dataset:
    """Write a whole numpy array as a new dataset (replacing one of the same name); ``label`` makes a
    Zarr dataset an OME-Zarr ``image-label``."""
    voxel_size = Coordinate(voxel_size)
    dims = len(voxel_size)
    offset = Coordinate(offset) if offset is not None else Coordinate((0,) * dims)
    roi = Roi(offset, Coordinate(data.shape[-dims:]) * voxel_size)
    ds = create_dataset(
        container,
        name,
        roi,
        voxel_size,
        data.dtype,
        channel_shape=data.shape[:-dims],
        chunk_shape=chunk_shape,
        compression=compression,
        overwrite=True,
        label=label,
    )
    ds.write(roi, data)
    return ds


def set_attrs(container: str | os.PathLike, name: str | None, attrs: dict) -> None:
    """Set attributes of dataset ``name`` of a Zarr or HDF5 container (or, if None, of its root); for
    a Zarr image group, of its level-0 array."""
    container = str(container)
    if container_format(container) == "hdf5":
        import h5py

        with h5py.File(container, "a") as f:
            target = f if name is None else f[name]
            for k, v in attrs.items():
                target.attrs[k] = v
    else:
        import zarr

        if name is None:
            target = zarr.open_group(container, mode="a")
        else:
            target = zarr.open_array(os.path.join(container, resolve_array(container, name)), mode="r+")
        target.attrs.update(attrs)


def write_plain(container: str | os.PathLike, name: str, data: np.ndarray, compression: str | None = "default") -> None:
    """Write ``data`` as a dataset without spatial metadata (a graph's node ids, locations, edges),
    replacing one of the same name. Strings are stored as UTF-8 bytes."""
    container = str(container)
    name = name.strip("/")
    data = np.asarray(data)
    if data.dtype.kind in "UO":
        data = np.char.encode(data.astype(str), "utf-8")
    if container_format(container) == "hdf5":
        import h5py

        Path(container).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"compression": "gzip"} if compression in ("gzip", "default") and data.size else {}
        with h5py.File(container, "a") as f:
            if name in f:
                del f[name]
            f.create_dataset(name, data=data, **kwargs)
    else:
        import zarr

        group = zarr.open_group(container, mode="a")
        array = group.create_array(
            name, shape=data.shape, dtype=data.dtype,
            chunks=tuple(max(1, s) for s in data.shape) or None,  # type: ignore[arg-type]  # None: 0-d, zarr's default
            compressors=_zarr_compressors(compression), overwrite=True,
        )
        if data.size:
            array[...] = data
