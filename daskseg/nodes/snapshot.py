"""``Snapshot``: save every N-th passing batch to its own Zarr or HDF5 file for inspection."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from ..array import ArrayKey
from ..batch import Batch, BatchRequest
from ..errors import SpecError
from ..graph import Graph, GraphKey
from ..io import container_format, is_label, set_attrs, write_array, write_plain
from ..pipeline import BatchFilter
from .dataset_write import compression_option, dataset_name

logger = logging.getLogger(__name__)


class Snapshot(BatchFilter):
    """Save a passing batch in a Zarr or HDF5 file, every ``every``-th batch.

    Each snapshot is a new container named by ``output_filename``; every array of ``dataset_names``
    that is in the batch is stored as its own dataset, placed in world units (``resolution``/
    ``voxel_size`` and ``offset`` attributes, and OME-Zarr metadata for Zarr), so that a viewer or
    ``ZarrSource``/``Hdf5Source`` overlays raw, labels and predictions correctly. The batch's loss
    and iteration, when set, are stored as attributes of the container's root.

    For batches that are snapshot, ``additional_request`` is added to the request sent upstream
    (keys already requested keep their requested ROIs), e.g. to also save the predictions and loss
    gradients of a training node. These additional arrays are not passed downstream.

    Args:

        dataset_names (``dict[ArrayKey or GraphKey, str]``):

            Which array is stored in which dataset, e.g. ``{raw: 'volumes/raw', pred_affs:
            'volumes/pred_affs'}`` (a leading ``/`` is allowed). A graph is stored as gunpowder does, in
            ``<name>-ids``, ``<name>-locations`` and ``<name>-edges``.

        output_dir (``str``):

            Directory of the snapshots; created if missing.

        output_filename (``str``):

            Template of the snapshot names; ``{id}`` is replaced by the batch ID (zero-padded to 8 digits) and
            ``{iteration}`` by the batch's training iteration, or, where no node set one, by the number of
            batches this node has seen (1 for the first). The extension picks the format: ``.zarr`` or
            ``.hdf``/``.h5``/``.hdf5``. Datasets of a snapshot with the name of an existing one replace it.

        every (``int``):

            Save every ``every``-th batch, starting with the first; 0 or less never saves.

        additional_request (:class:`BatchRequest`, optional):

            Arrays to request in addition when a snapshot is made, with absolute ROIs (typically those of the
            request, e.g. ``snapshot_request[pred_affs] = request[gt_affs]``).

        compression_type (``str`` or ``int``, optional):

            ``'gzip'`` (an int also means gzip), ``'zstd'`` (Zarr), ``'lzf'`` (HDF5), or None for no
            compression.

        dataset_dtypes (``dict[ArrayKey, dtype]``, optional):

            Store these arrays with this dtype.

        store_value_range (``bool``):

            Also store each dataset's ``value_range`` attribute ``[min, max]``.
    """

    thread_safe = True

    def __init__(
        self,
        dataset_names: Mapping[ArrayKey, str] | Mapping[GraphKey, str] | Mapping[ArrayKey | GraphKey, str],
        output_dir: str | os.PathLike = "snapshots",
        output_filename: str = "{id}.zarr",
        every: int = 1,
        additional_request: BatchRequest | None = None,
        compression_type: Any = None,
        dataset_dtypes: Mapping[ArrayKey, Any] | None = None,
        store_value_range: bool = False,
    ):
        self.dataset_names = {key: dataset_name(name) for key, name in dict(dataset_names).items()}
        self.output_dir = str(output_dir)
        self.output_filename = str(output_filename)
        self.every = int(every)
        self.additional_request = BatchRequest() if additional_request is None else additional_request.copy()
        self.compression_type = compression_type
        self.dataset_dtypes = {key: np.dtype(dt) for key, dt in dict(dataset_dtypes or {}).items()}
        self.store_value_range = bool(store_value_range)
        self._compression = compression_option(compression_type)
        container_format(self.output_filename)  # fail early on an extension that names no format
        try:
            self.output_filename.format(id="0", iteration=0)
        except (KeyError, IndexError, ValueError) as e:
            raise SpecError(
                f"Snapshot: output_filename {self.output_filename!r} may only use the fields {{id}} and "
                f"{{iteration}}: {e!r}"
            ) from None
        self._count = 0
        self._lock = threading.Lock()

    def setup(self) -> None:
        for key in self.additional_request:
            if key not in self.spec:
                raise SpecError(
                    f"{self.name()}: additional_request asks for {key}, but it is not provided upstream; "
                    f"provided: {sorted(self.spec)}"
                )
        missing = [key for key in self.dataset_names if key not in self.spec]
        if missing:
            logger.warning("%s: %s are not provided upstream and will never be saved", self.name(), missing)
        self._count = 0

    def prepare(self, request: BatchRequest) -> None:
        with self._lock:
            index = self._count
            self._count += 1
        record = self.every > 0 and index % self.every == 0
        request.plan = (record, index + 1)
        if record:
            for key, spec in self.additional_request.items():
                if key not in request:
                    request[key] = spec

    def process(self, batch: Batch, request: BatchRequest) -> None:
        record, count = cast(tuple[bool, int], request.plan)
        if record:
            self._save(batch, count)

    def snapshot_path(self, batch: Batch, count: int) -> str:
        """The file a snapshot of ``batch``, the ``count``-th batch seen, is written to."""
        iteration = batch.iteration if batch.iteration is not None else count
        filename = self.output_filename.format(id=str(batch.id).zfill(8), iteration=int(iteration))
        return os.path.join(self.output_dir, filename)

    def _save(self, batch: Batch, count: int) -> None:
        path = self.snapshot_path(batch, count)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        logger.info("%s: saving batch %d to %s", self.name(), batch.id, path)
        written = []
        for key, name in self.dataset_names.items():
            if key not in batch:
                continue
            if isinstance(key, GraphKey):
                self._save_graph(path, name, batch[key])
                written.append(name)
                continue
            array = batch[key]
            roi, voxel_size = array.spec.roi, array.spec.voxel_size
            if array.spec.nonspatial or roi is None or voxel_size is None:
                logger.warning("%s: %s is nonspatial (no ROI); not saved", self.name(), key)
                continue
            data = array.data
            if key in self.dataset_dtypes:
                data = data.astype(self.dataset_dtypes[key], copy=False)
            ds = write_array(
                path,
                name,
                np.ascontiguousarray(data),
                voxel_size,
                offset=roi.offset,
                compression=self._compression,
                label=is_label(array.spec.interpolatable, data.dtype),
            )
            ds.close()
            if self.store_value_range and data.size:
                set_attrs(path, name, {"value_range": [float(np.min(data)), float(np.max(data))]})
            written.append(name)
        root_attrs = {}
        if batch.loss is not None:
            root_attrs["loss"] = float(batch.loss)
        if batch.iteration is not None:
            root_attrs["iteration"] = int(batch.iteration)
        if root_attrs and written:
            set_attrs(path, None, root_attrs)
        if not written:
            logger.warning(
                "%s: batch %d holds none of %s; nothing saved", self.name(), batch.id, sorted(self.dataset_names)
            )

    def _save_graph(self, path: str, name: str, graph: Graph) -> None:
        """Store a graph as gunpowder does: ``<name>-ids`` (n), ``<name>-locations`` (n x dims, world
        units) and ``<name>-edges`` (m x 2 node ids); the locations carry the graph's ROI as
        ``roi_offset``/``roi_shape`` attributes."""
        nodes = list(graph.nodes)
        dims = graph.spec.roi.dims if graph.spec.roi is not None else (len(nodes[0].location) if nodes else 0)
        ids = np.array([n.id for n in nodes])
        locations = np.array([n.location for n in nodes], dtype=graph.spec.dtype).reshape(len(nodes), dims)
        edges = np.array([(e.u, e.v) for e in graph.edges], dtype=ids.dtype if len(ids) else np.int64).reshape(-1, 2)
        write_plain(path, f"{name}-ids", ids if len(ids) else np.zeros(0, dtype=np.int64), compression=self._compression)
        write_plain(path, f"{name}-locations", locations, compression=self._compression)
        write_plain(path, f"{name}-edges", edges, compression=self._compression)
        if graph.spec.roi is not None:
            roi = graph.spec.roi
            set_attrs(path, f"{name}-locations", {"roi_offset": list(roi.offset), "roi_shape": list(roi.shape)})

    def name(self) -> str:
        return f"Snapshot[{self.output_dir}]"
