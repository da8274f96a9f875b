"""Shared machinery of ``ZarrWrite`` and ``Hdf5Write``: assemble passing arrays in one container."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..array import ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import DatasetError, SpecError
from ..io import Dataset, container_format, create_dataset, is_label
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)

# chunks of written datasets hold at most this many voxels (per channel)
MAX_CHUNK_VOXELS = 64**3


def dataset_name(name: str) -> str:
    """A dataset path inside a container without leading/trailing slashes (``'/volumes/raw'`` → ``'volumes/raw'``)."""
    stripped = str(name).strip("/")
    if not stripped:
        raise DatasetError(f"{name!r} is not a dataset name; use e.g. 'volumes/raw'")
    return stripped


def compression_option(compression_type: Any) -> str | None:
    """Translate gunpowder's ``compression_type`` into ``daskseg.io.create_dataset``'s ``compression``.

    ``None`` stores uncompressed; an integer (an HDF5 gzip level in gunpowder) means ``'gzip'``;
    strings (``'gzip'``, ``'zstd'``, ``'lzf'`` for HDF5, ...) are passed on.
    """
    if compression_type is None:
        return None
    if isinstance(compression_type, (int, np.integer)) and not isinstance(compression_type, bool):
        return "gzip"
    if isinstance(compression_type, str):
        return compression_type
    raise DatasetError(f"compression_type must be None, a string such as 'gzip', or an int, not {compression_type!r}")


def block_chunk_shape(block_shape: tuple[int, ...], max_voxels: int = MAX_CHUNK_VOXELS) -> tuple[int, ...]:
    """Chunks that tile one written block: the block's spatial shape, halved along its largest
    axis until a chunk holds at most ``max_voxels`` voxels.

    Writers receive blocks on a regular grid (``Scan``'s stride), so chunks that tile a block keep
    most writes from touching chunks they share with a neighbour.
    """
    chunk = [max(1, int(s)) for s in block_shape]
    while math.prod(chunk) > max_voxels and max(chunk) > 1:
        d = int(np.argmax(chunk))
        chunk[d] = -(-chunk[d] // 2)
    return tuple(chunk)


class DatasetWrite(BatchFilter):
    """Write arrays of passing batches into datasets of one Zarr or HDF5 container.

    See ``ZarrWrite`` and ``Hdf5Write`` for the user manual; subclasses set ``_format`` and
    ``_default_filename``.
    """

    thread_safe = True

    _format: str = ""
    _default_filename: str = ""

    def __init__(
        self,
        dataset_names: Mapping[ArrayKey, str],
        output_dir: str | os.PathLike = ".",
        output_filename: str | None = None,
        compression_type: Any = None,
        dataset_dtypes: Mapping[ArrayKey, Any] | None = None,
        store: str | os.PathLike | None = None,
    ):
        if store is not None:
            if not isinstance(store, (str, os.PathLike)):
                raise SpecError(
                    f"{type(self).__name__}: store must be a path, not a {type(store).__name__} (daskseg reopens "
                    f"containers by path, also on Dask workers); pass store='path/to/output"
                    f"{'.zarr' if self._format == 'zarr' else '.hdf'}'"
                )
            store = os.path.abspath(os.fspath(store))
            output_dir, output_filename = os.path.dirname(store), os.path.basename(store)
        self.dataset_names = {key: dataset_name(name) for key, name in dict(dataset_names).items()}
        self.output_dir = str(output_dir)
        self.output_filename = str(output_filename if output_filename is not None else self._default_filename)
        self.compression_type = compression_type
        self.dataset_dtypes = {key: np.dtype(dt) for key, dt in dict(dataset_dtypes or {}).items()}
        self._compression = compression_option(compression_type)
        self._datasets: dict[ArrayKey, Dataset] = {}
        self._lock = threading.Lock()
        fmt = container_format(self.output_filename)
        if fmt != self._format:
            raise DatasetError(
                f"{type(self).__name__} writes {self._format} containers, but {self.output_filename!r} names a "
                f"{fmt} one; change the extension or use {'ZarrWrite' if fmt == 'zarr' else 'Hdf5Write'}"
            )
        for key in self.dataset_dtypes:
            if key not in self.dataset_names:
                raise SpecError(f"{type(self).__name__}: dataset_dtypes names {key}, which is not in dataset_names")

    @property
    def filename(self) -> str:
        """The path of the container written to."""
        return os.path.join(self.output_dir, self.output_filename)

    def setup(self) -> None:
        for key in self.dataset_names:
            if key not in self.spec:
                raise SpecError(
                    f"{self.name()} should write {key}, but it is not provided upstream; provided: {sorted(self.spec)}"
                )
            if self.spec[key].nonspatial:
                raise SpecError(f"{self.name()} cannot write {key}: it is nonspatial (has no ROI)")
        self._datasets = {}

    def process(self, batch: Batch, request: BatchRequest) -> None:
        with self._lock:
            for key, name in self.dataset_names.items():
                if key not in batch:
                    logger.debug("%s: %s is not in this batch, nothing to write", self.name(), key)
                    continue
                array = batch[key]
                ds = self._datasets.get(key)
                if ds is None:
                    ds = self._datasets[key] = self._create(key, name, array)
                if array.spec.roi is None:
                    raise SpecError(f"{self.name()}: {key} is nonspatial (no ROI) and cannot be written to {name}")
                common = array.spec.roi.intersect(ds.roi)
                if common.empty:
                    logger.warning(
                        "%s: %s with ROI %s lies outside the dataset ROI %s of %s/%s; nothing written",
                        self.name(), key, array.spec.roi, ds.roi, self.filename, name,
                    )
                    continue
                ds.write(common, array.crop(common, copy=False).data)

    def _create(self, key: ArrayKey, name: str, array) -> Dataset:
        """Create (or reopen, if it matches) the dataset for ``key``, covering what upstream provides."""
        provided = self.spec[key]
        roi = provided.roi
        if roi is None or roi.unbounded:
            raise SpecError(
                f"{self.name()}: cannot create {self.filename}/{name} for {key}: upstream provides it with ROI "
                f"{roi}, not a bounded one; give the node that provides {key} a ROI (e.g. array_specs={{ {key}: "
                f"ArraySpec(roi=...) }})"
            )
        voxel_size = array.spec.voxel_size
        dims = roi.dims
        channel_shape = tuple(array.data.shape[:-dims])
        dtype = self.dataset_dtypes.get(key, array.data.dtype)
        block = tuple(array.spec.roi.shape / voxel_size)
        chunk_shape = block_chunk_shape(block)
        os.makedirs(self.output_dir, exist_ok=True)
        logger.info(
            "%s: creating %s/%s for %s: ROI %s, voxel size %s, dtype %s, channels %s, chunks %s",
            self.name(), self.filename, name, key, roi, voxel_size, np.dtype(dtype), channel_shape, chunk_shape,
        )
        return create_dataset(
            self.filename,
            name,
            roi,
            voxel_size,
            dtype,
            channel_shape=channel_shape,
            chunk_shape=chunk_shape,
            compression=self._compression,
            label=is_label(array.spec.interpolatable, dtype),
        )

    def teardown(self) -> None:
        for ds in self._datasets.values():
            ds.close()
        self._datasets = {}

    def name(self) -> str:
        return f"{type(self).__name__}[{self.output_filename}]"
