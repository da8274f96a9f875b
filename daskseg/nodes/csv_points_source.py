"""``CsvPointsSource``: provide the points listed in a CSV file as a graph without edges."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence

import numpy as np

from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, DatasetError, RequestError
from ..geometry import Coordinate, Roi
from ..graph import Graph, GraphKey, GraphSpec, Node
from ..pipeline import BatchProvider

logger = logging.getLogger(__name__)


class CsvPointsSource(BatchProvider):
    """Read a set of points from a comma-separated-values text file. Each line in the file
    represents one point, e.g. ``z y x (id)``. A header line is detected and skipped. All points are
    read into memory in ``setup``; a request gets the points inside its ROI (``begin <= p < end``).

    Args:

        filename (``string``):

            The file to read from.

        points (:class:`GraphKey`):

            The key of the points set to create.

        spatial_cols (``list`` of ``int``):

            The columns of the csv that hold the coordinates of the points (in the order that you
            want them to be used in training).

        points_spec (:class:`GraphSpec`, optional):

            An optional :class:`GraphSpec` to overwrite the points specs automatically determined
            from the CSV file (the bounding box of the points, whole world units, end exclusive).
            This is useful to set the :class:`Roi` manually.

        scale (scalar or array-like):

            An optional scaling to apply to the coordinates of the points read from the CSV file.
            This is useful if the points refer to voxel positions to convert them to world units.

        id_col (``int``, optional):

            The column of the csv that holds an id for each point. If not provided, the index of the
            rows are used as the ids. When read from file, ids are left as strings (as gunpowder).

        delimiter (``str``, optional):

            Delimiter to pass to the csv reader. Defaults to ",".
    """

    thread_safe = True

    def __init__(
        self,
        filename: str | os.PathLike,
        points: GraphKey,
        spatial_cols: Sequence[int],
        points_spec: GraphSpec | None = None,
        scale: float | Sequence[float] | np.ndarray | None = None,
        id_col: int | None = None,
        delimiter: str = ",",
    ):
        if not isinstance(points, GraphKey):
            raise ArgumentError(f"CsvPointsSource: points must be a GraphKey, got {points!r}")
        if not spatial_cols:
            raise ArgumentError("CsvPointsSource: spatial_cols must name at least one column")
        self.filename = os.path.abspath(os.fspath(filename))
        self.points = points
        self.points_spec = points_spec
        self.scale = scale
        self.spatial_cols = list(spatial_cols)
        self.id_col = id_col
        self.delimiter = delimiter
        self.data: np.ndarray | None = None
        self.ids: np.ndarray | None = None

    def _parsed(self) -> tuple[np.ndarray, np.ndarray]:
        """The points' locations ``(n, dims)`` and ids ``(n,)``, read at setup."""
        if self.data is None or self.ids is None:
            raise RuntimeError(f"CsvPointsSource: {self.filename} is read at setup()")
        return self.data, self.ids

    def setup(self) -> None:
        self._parse_csv()
        if self.points_spec is not None:
            self.provides(self.points, self.points_spec)
            return
        data, _ = self._parsed()
        if len(data) == 0:
            raise DatasetError(f"CsvPointsSource: {self.filename} holds no points; give points_spec with a ROI")
        lo = Coordinate(np.floor(data.min(axis=0)).astype(int))
        hi = Coordinate(np.ceil(data.max(axis=0)).astype(int) + 1)
        self.provides(self.points, GraphSpec(roi=Roi(lo, hi - lo)))

    def provide(self, request: BatchRequest) -> Batch:
        roi = request[self.points].roi
        if roi is None:
            raise RequestError(f"CsvPointsSource: the request for {self.points} has no ROI")
        data, ids = self._parsed()
        inside = np.ones(len(data), dtype=np.bool_)
        for d, (b, e) in enumerate(zip(roi.begin, roi.end)):
            if b is not None:
                inside &= data[:, d] >= b
            if e is not None:
                inside &= data[:, d] < e
        nodes = [Node(id=i, location=p) for i, p in zip(ids[inside], data[inside])]
        logger.debug("CsvPointsSource: %d of %d points in %s", len(nodes), len(data), roi)
        batch = Batch()
        batch[self.points] = Graph(nodes, [], GraphSpec(roi=roi.copy()))
        return batch

    def _parse_csv(self) -> None:
        try:
            with open(self.filename, newline="") as f:
                sample = f.read(1024)
                try:
                    has_header = csv.Sniffer().has_header(sample) if sample else False
                except csv.Error:
                    has_header = False
                f.seek(0)
                rows = list(csv.reader(f, delimiter=self.delimiter))
        except OSError as e:
            raise DatasetError(f"CsvPointsSource: cannot read {self.filename}: {e.strerror}") from None
        if has_header:
            rows = rows[1:]
        rows = [r for r in rows if r]
        try:
            data = [[float(r[c]) for c in self.spatial_cols] for r in rows]
        except (IndexError, ValueError) as e:
            raise DatasetError(
                f"CsvPointsSource: {self.filename}: spatial_cols {self.spatial_cols} are not numbers in every line ({e})"
            ) from None
        self.data = np.array(data, dtype=np.float32).reshape(-1, len(self.spatial_cols))
        if self.id_col is not None:
            self.ids = np.array([r[self.id_col] for r in rows])
        else:
            self.ids = np.arange(len(self.data))
        if self.scale is not None:
            self.data = self.data * np.asarray(self.scale, dtype=np.float32)
