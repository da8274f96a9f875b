"""``RasterizeGraph``: draw a graph's nodes (and edges) into an array as balls, tubes or peaks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ..array import Array, ArrayKey, ArraySpec
from ..batch import Batch, BatchRequest
from ..errors import ArgumentError, SpecError
from ..geometry import Coordinate, Roi
from ..graph import Graph, GraphKey, GraphSpec
from ..pipeline import BatchFilter

logger = logging.getLogger(__name__)


class RasterizationSettings:
    """How :class:`RasterizeGraph` draws a graph.

    Args:

        radius (``float`` or ``tuple`` of ``float``):

            The radius (for balls or tubes) or sigma (for peaks) in world units, one for all axes or
            one per axis.

        mode (``string``):

            One of ``ball`` or ``peak``. If ``ball`` (the default), a ball with the given ``radius``
            will be drawn. If ``peak``, the point will be rasterized as a peak with values
            :math:`\\exp(-|x-p|^2/\\sigma)` with sigma set by ``radius`` (a Gaussian, normalised so
            that the highest value is 1).

        mask (:class:`ArrayKey`, optional):

            Used to mask the rasterization of points. The array is assumed to contain discrete
            labels. The object id at the specific point being rasterized is used to intersect the
            rasterization to keep it inside the specific object.

        inner_radius_fraction (``float``, optional):

            Only for mode ``ball``. If set, instead of a ball, a hollow sphere is rastered. The
            radius of the whole sphere corresponds to the radius specified with ``radius``. This
            parameter sets the radius of the hollow area, as a fraction of ``radius`` (in (0, 1)).

        fg_value (``int``, optional):

            Only for mode ``ball``. The value to use to rasterize points, defaults to 1.

        bg_value (``int``, optional):

            Only for mode ``ball``. The value to use to for the background in the output array,
            defaults to 0.

        edges (``bool``, optional):

            Whether to rasterize edges by linearly interpolating between nodes (tubes in mode
            ``ball``). Default is True.

        color_attr (``str``, optional):

            Only for mode ``ball``: which node and edge attribute gives the value to draw them with
            (e.g. ``component``); nodes and edges without it are skipped.
    """

    def __init__(
        self,
        radius: float | Sequence[float],
        mode: str = "ball",
        mask: ArrayKey | None = None,
        inner_radius_fraction: float | None = None,
        fg_value: Any = 1,
        bg_value: Any = 0,
        edges: bool = True,
        color_attr: str | None = None,
    ):
        radii = np.array([radius], dtype=np.float64).flatten()
        if np.any(radii <= 0):
            raise ArgumentError(f"RasterizationSettings: radius must be positive, got {radii.tolist()}")
        if mode not in ("ball", "peak"):
            raise ArgumentError(f"RasterizationSettings: mode must be 'ball' or 'peak', got {mode!r}")
        if inner_radius_fraction is not None and not 0.0 < inner_radius_fraction < 1.0:
            raise ArgumentError(
                f"RasterizationSettings: inner_radius_fraction has to be between (excluding) 0 and 1, got {inner_radius_fraction}"
            )
        self.radius = radii
        self.mode = mode
        self.mask = mask
        self.inner_radius_fraction = inner_radius_fraction
        self.fg_value = fg_value
        self.bg_value = bg_value
        self.edges = edges
        self.color_attr = color_attr

    def context(self, dims: int) -> Coordinate:
        """How far (world units, per axis) a node can reach into the array: ``ceil(radius)`` for balls,
        ``ceil(2 * radius)`` for peaks."""
        reach = np.ceil(self.radius * (1 if self.mode == "ball" else 2)).astype(int)
        if reach.size == 1:
            reach = reach.repeat(dims)
        if reach.size != dims:
            raise SpecError(f"RasterizationSettings: radius {self.radius.tolist()} does not fit {dims} dimensions")
        return Coordinate(reach)


class RasterizeGraph(BatchFilter):
    """Draw graphs into an array as balls/tubes (or Gaussian peaks) of a given radius.

    Nodes up to the rasterization's reach outside the requested array ROI are requested too, so a
    ball whose centre lies just outside still shows; an edge that leaves the graph's ROI is drawn up
    to the border (its outside end is kept, see :meth:`Graph.crop`). A node is drawn in the voxel
    that contains it (``floor(location / voxel_size)``).

    Args:

        graph (:class:`GraphKey`):

            The key of the graph to rasterize.

        array (:class:`ArrayKey`):

            The key of the binary array to create.

        array_spec (:class:`ArraySpec`, optional):

            The spec of the array to create. Use this to set the datatype and voxel size (default: 1
            per axis; ``uint8`` for balls, ``float32`` for peaks).

        settings (:class:`RasterizationSettings`, optional):

            Which settings to use to rasterize the graph (default: balls of radius 1).
    """

    thread_safe = True

    def __init__(
        self,
        graph: GraphKey,
        array: ArrayKey,
        array_spec: ArraySpec | None = None,
        settings: RasterizationSettings | None = None,
    ):
        if not isinstance(graph, GraphKey) or not isinstance(array, ArrayKey):
            raise ArgumentError(f"RasterizeGraph takes a GraphKey and an ArrayKey, got {graph!r} and {array!r}")
        self.graph = graph
        self.array = array
        self.array_spec = ArraySpec() if array_spec is None else array_spec.copy()
        self.settings = RasterizationSettings(1) if settings is None else settings

    def setup(self) -> None:
        if self.graph not in self.spec:
            raise SpecError(f"RasterizeGraph: {self.graph} is not provided upstream: {sorted(self.spec)}")
        graph_roi = self.spec[self.graph].roi
        if graph_roi is None:
            raise SpecError(f"RasterizeGraph: {self.graph} is provided without a ROI; give its source a graph spec with one")
        spec = self.array_spec.copy()
        if spec.voxel_size is None:
            spec.voxel_size = Coordinate((1,) * graph_roi.dims)
        if spec.dtype is None:
            spec.dtype = np.dtype(np.uint8 if self.settings.mode == "ball" else np.float32)
        if spec.interpolatable is None:
            spec.interpolatable = self.settings.mode == "peak"
        spec.roi = graph_roi if graph_roi.unbounded else graph_roi.snap_to_grid(spec.voxel_size, mode="shrink")
        self.settings.context(graph_roi.dims)  # fail early on a radius of the wrong length
        mask = self.settings.mask
        if mask is not None:
            if mask not in self.spec:
                raise SpecError(f"RasterizeGraph: mask {mask} is not provided upstream: {sorted(self.spec)}")
            if self.spec[mask].voxel_size != spec.voxel_size:
                raise SpecError(
                    f"RasterizeGraph: voxel size of mask {mask} ({self.spec[mask].voxel_size}) and rasterized "
                    f"{self.array} ({spec.voxel_size}) need to be equal"
                )
        self.provides(self.array, spec)
        self.enable_autoskip()

    def prepare(self, request: BatchRequest) -> BatchRequest:
        roi = request[self.array].checked_roi(f"the request for RasterizeGraph's {self.array}")
        context = self.settings.context(roi.dims)
        graph_roi = roi.grow(context, context).intersect(self._graph_roi(self.spec[self.graph].roi))
        deps = BatchRequest()
        deps[self.graph] = GraphSpec(roi=graph_roi)
        mask = self.settings.mask
        if mask is not None:
            vs = self.spec[mask].checked_voxel_size(f"RasterizeGraph's mask {mask}")
            mask_roi = graph_roi.snap_to_grid(vs, mode="grow")
            provided = self.spec[mask].roi
            if provided is not None:
                mask_roi = mask_roi.intersect(provided)
            deps[mask] = ArraySpec(roi=mask_roi)
        return deps

    def process(self, batch: Batch, request: BatchRequest) -> Batch:
        graph = batch[self.graph]
        spec = self.spec[self.array].copy()
        vs = spec.checked_voxel_size(f"RasterizeGraph's {self.array}")
        requested = request[self.array].checked_roi(f"the request for RasterizeGraph's {self.array}")
        work = self._graph_roi(graph.spec.roi).snap_to_grid(vs, mode="grow").union(requested)
        labels = None
        if self.settings.mask is not None:
            mask = batch[self.settings.mask]
            labels = np.zeros(work.shape / vs, dtype=mask.data.dtype)
            inside = mask.spec.checked_roi(f"RasterizeGraph's mask {self.settings.mask}").intersect(work)
            if not inside.empty:
                labels[_slices(inside, work, vs)] = mask.crop(inside).data
        data = rasterize(graph, work, vs, spec.dtype, self.settings, labels)
        spec.roi = work
        batch = Batch()
        batch[self.array] = Array(data, spec).crop(requested)
        return batch

    def _graph_roi(self, roi: Roi | None) -> Roi:
        if roi is None:
            raise SpecError(f"RasterizeGraph: {self.graph} has no ROI")
        return roi


def _slices(roi: Roi, within: Roi, voxel_size: Coordinate) -> tuple[slice, ...]:
    begin = (roi.begin - within.begin) / voxel_size
    return tuple(slice(b, b + s) for b, s in zip(begin, roi.shape / voxel_size))


def rasterize(
    graph: Graph,
    roi: Roi,
    voxel_size: Coordinate,
    dtype: Any,
    settings: RasterizationSettings,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """``graph`` drawn on the voxel grid of ``roi`` (see :class:`RasterizeGraph`).

    With ``labels`` (an array on the same grid), each node is drawn inside the object it lies in:
    the drawing of the nodes of each label is intersected with that label's voxels.
    """
    shape = tuple(roi.shape / voxel_size)
    dims = len(shape)
    origin = np.asarray(roi.begin, dtype=np.float64)
    vs = np.asarray(voxel_size, dtype=np.float64)

    def voxel(location) -> np.ndarray:
        return np.floor((np.asarray(location[-dims:], dtype=np.float64) - origin) / vs).astype(int)

    def inside(v: np.ndarray) -> bool:
        return bool(np.all(v >= 0) and np.all(v < shape))

    nodes = {n.id: (n, voxel(n.location)) for n in graph.nodes}
    if labels is None:
        groups: dict[Any, set] = {None: set(nodes)}
    else:
        groups = {}
        for node_id, (_, v) in nodes.items():
            if inside(v) and labels[tuple(v)] != 0:
                groups.setdefault(labels[tuple(v)].item(), set()).add(node_id)
    out = np.zeros(shape, dtype=dtype)
    for label, members in groups.items():
        drawn = _draw(graph, nodes, members, shape, settings, np.dtype(dtype))
        if settings.mode == "ball":
            drawn = _grow(drawn, settings, vs)
        else:
            drawn = drawn.astype(np.float64)
            ndimage.gaussian_filter(drawn, settings.radius / vs, output=drawn, mode="constant")
            top = drawn.max(initial=0)
            if top > 0:
                drawn /= top
        if label is not None:
            drawn = np.where(labels == label, drawn, 0)
        np.copyto(out, drawn.astype(dtype), where=drawn != 0)
    if settings.mode == "ball" and (settings.bg_value != 0 or settings.fg_value != 1):
        zero, one = out == 0, out == 1
        out = out.astype(np.result_type(dtype, np.asarray(settings.fg_value).dtype, np.asarray(settings.bg_value).dtype))
        out[zero] = settings.bg_value
        out[one] = settings.fg_value
        out = out.astype(dtype)
    return out


def _draw(graph: Graph, nodes: dict, members: set, shape: tuple, settings: RasterizationSettings, dtype: np.dtype) -> np.ndarray:
    """The voxels of the nodes ``members`` and (with ``settings.edges``) the lines between them."""
    drawn = np.zeros(shape, dtype=np.float64 if settings.color_attr is None else np.result_type(dtype, np.float64))

    def color(attrs: dict) -> Any:
        return 1 if settings.color_attr is None else attrs.get(settings.color_attr)

    def put(points: np.ndarray, c) -> None:
        keep = np.all((points >= 0) & (points < np.asarray(shape)), axis=1)
        if np.any(keep):
            drawn[tuple(points[keep].T)] = c

    for node_id in members:
        node, v = nodes[node_id]
        c = color(node.attrs)
        if c is not None:
            put(v[None], c)
    if settings.edges:
        for edge in graph.edges:
            if edge.u not in members and edge.v not in members:
                continue
            c = color(edge.attrs)
            if c is None or edge.u not in nodes or edge.v not in nodes:
                continue
            put(_line(nodes[edge.u][1], nodes[edge.v][1]), c)
    return drawn


def _line(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The voxels of the straight line from voxel ``a`` to voxel ``b`` (both included)."""
    steps = int(np.abs(b - a).max(initial=0))
    t = np.linspace(0.0, 1.0, steps + 1)[:, None]
    return np.rint(a[None] + t * (b - a)[None]).astype(int)


def _grow(drawn: np.ndarray, settings: RasterizationSettings, voxel_size: np.ndarray) -> np.ndarray:
    """Every voxel within ``radius`` (world units, an ellipsoid for per-axis radii) of a drawn voxel
    gets its value; with ``inner_radius_fraction``, those within that fraction of the radius are
    left empty (a hollow sphere)."""
    if not np.any(drawn):
        return drawn
    sampling = voxel_size / settings.radius
    out = np.zeros_like(drawn)
    for value in np.unique(drawn[drawn != 0]):
        # distance (in radii) of every voxel to the nearest voxel drawn with this value
        distance = ndimage.distance_transform_edt(drawn != value, sampling=sampling)
        region = distance <= 1.0
        if settings.inner_radius_fraction is not None:
            region &= distance > settings.inner_radius_fraction
        out[region] = value
    return out
