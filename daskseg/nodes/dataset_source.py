"""Shared machinery of ``ZarrSource`` and ``Hdf5Source``: datasets in a container as arrays."""

from __future__ import annotations

import logging
import os

import numpy as np

from ..array import Array, ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import DatasetError, SpecError
from ..geometry import Coordinate
from ..io import Dataset, container_format, open_dataset, read_metadata, resolve_array
from ..pipeline import BatchProvider

logger = logging.getLogger(__name__)

INTERPOLATABLE_DTYPES = (np.float16, np.float32, np.float64, np.uint8, np.uint16)


class DatasetSource(BatchProvider):
    """Provide arrays read from datasets of one Zarr or HDF5 container, reading only requested ROIs."""

    thread_safe = True

    def __init__(
        self,
        filename: str | os.PathLike,
        datasets: dict[ArrayKey, str],
        array_specs: dict[ArrayKey, ArraySpec] | None = None,
        channels_first: bool = True,
    ):
        # absolute, against this process's working directory: PreCache sets the node up on workers
        # that may run elsewhere
        self.filename = os.path.abspath(os.fspath(filename))
        self.datasets = dict(datasets)
        self.array_specs = dict(array_specs or {})
        if not channels_first:
            raise SpecError(f"{type(self).__name__}: only channels_first=True is supported (channels lead the spatial axes)")
        self._opened: dict[ArrayKey, Dataset] = {}

    def setup(self) -> None:
        if not os.path.exists(self.filename):
            raise DatasetError(f"{self.name()}: {self.filename!r} does not exist")
        for key, name in self.datasets.items():
            given = self.array_specs.get(key, ArraySpec())
            voxel_size = given.voxel_size
            if voxel_size is None and read_metadata(self.filename, name).voxel_size is None:
                # as gunpowder: no voxel size anywhere means 1 per axis (every axis spatial), with a warning
                voxel_size = Coordinate((1,) * self._ndim(name))
                logger.warning(
                    "%s: %s/%s has no voxel size metadata; assuming voxel size %s (give "
                    "array_specs={%s: ArraySpec(voxel_size=...)} if that is not what you want)",
                    self.name(), self.filename, name, voxel_size, key,
                )
            ds = open_dataset(self.filename, name, voxel_size=voxel_size)
            self._opened[key] = ds
            spec = ArraySpec(
                roi=ds.roi,
                voxel_size=ds.voxel_size,
                dtype=ds.dtype,
                interpolatable=ds.dtype.type in INTERPOLATABLE_DTYPES,
            ).update_with(given)
            if spec.dtype != ds.dtype:
                raise SpecError(
                    f"{self.name()}: array_specs says {key} is {spec.dtype}, but {self.filename}/{name} holds {ds.dtype}"
                )
            if spec.roi is not None and spec.roi != ds.roi and not ds.roi.contains(spec.roi):
                raise SpecError(
                    f"{self.name()}: array_specs ROI {spec.roi} of {key} lies outside the data's ROI {ds.roi} "
                    f"({self.filename}/{name})"
                )
            self.provides(key, spec)

    def _ndim(self, name: str) -> int:
        """The number of axes of dataset ``name``, read without its (missing) spatial metadata."""
        if container_format(self.filename) == "hdf5":
            import h5py

            with h5py.File(self.filename, "r") as f:
                return f[name].ndim
        import zarr

        return zarr.open_array(self.filename, path=resolve_array(self.filename, name), mode="r").ndim

    def provide(self, request: BatchRequest) -> Batch:
        batch = Batch()
        for key, req in request.items():
            ds = self._opened[key]
            spec = self.spec[key].copy()
            spec.roi = req.roi
            batch[key] = Array(ds.read(req.roi), spec)
        return batch

    def teardown(self) -> None:
        for ds in self._opened.values():
            ds.close()
        self._opened = {}

    def name(self) -> str:
        return f"{type(self).__name__}[{os.path.basename(self.filename)}]"
