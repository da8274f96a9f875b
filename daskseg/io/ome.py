"""OME-Zarr 0.5 image groups: the layout of every Zarr dataset daskseg writes.

A dataset name users pass (``pred.zarr/volumes/pred_affs``) names an *image group*; its resolution
levels are arrays inside it::

    pred.zarr/volumes/pred_affs/        group, attributes {"ome": {"version": "0.5", "multiscales": [...]}}
    pred.zarr/volumes/pred_affs/s0      level 0 (full resolution): a Zarr v3 array
    pred.zarr/volumes/pred_affs/s1 ...  coarser levels, added with :func:`add_level`

The image's single ``multiscales`` entry lists its levels, each with a ``scale`` (its voxel size)
and a ``translation`` (its offset: the world position of the corner of its first voxel, as
funlib's ``offset``), in nanometres. Every level array carries:

* Zarr v3 ``dimension_names`` equal to the OME axis names: ``z, y, x`` (``y, x`` in 2D), preceded
  by ``c^`` when the data has one channel axis (``c0^, c1^`` for two). The channel axis has no OME
  ``type`` (a custom axis, which OME-Zarr 0.5 allows): neuroglancer reads the ``^`` suffix as a
  channel dimension whether it is pointed at the group or at the array, whereas an OME
  ``type: channel`` axis becomes a local ``c'`` dimension there.
* ``dimension_units`` (``["40 nm", "4 nm", "4 nm"]``, ``null`` for channels): neuroglancer's voxel
  size when it is pointed at the array itself.
* funlib/gunpowder attributes (``voxel_size``/``resolution``, ``offset``, ``axis_names``,
  ``units``, ``types``), so that ``funlib.persistence.open_ds('pred.zarr/volumes/pred_affs/s0')`` and
  gunpowder read the level in world units.

Label images (segmentations, fragments, ground truth) are ``image-label`` groups. A label image
created at ``<image>/labels/<name>``, where ``<image>`` is an image group, is listed in
``<image>/labels``' ``labels`` attribute, as OME-Zarr wants; the image and its labels then must keep
the same number of levels. Synthetic samples put their ground truth there
(``volumes/raw/labels/neuron_ids``) and keep the CREMI path ``volumes/labels/neuron_ids`` working
through a *redirect*: a group whose ``daskseg.redirect`` attribute names the dataset it stands for.

:func:`resolve_array` turns any name users pass into the array to read: an image group gives its
level 0, a redirect its target, an array itself (older files: funlib attributes on a plain array,
``multiscales`` on the parent group). The public functions here are the API for other commands
(viewers, pyramids): :func:`create_image`, :func:`add_level`, :func:`read_image`,
:func:`mark_label`, :func:`add_redirect`, :func:`resolve_array`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DatasetError
from ..geometry import Coordinate

logger = logging.getLogger(__name__)

OME_VERSION = "0.5"
SPATIAL_AXIS_NAMES = ("z", "y", "x")
UNIT_NAMES = {"nm": "nanometer", "um": "micrometer", "µm": "micrometer", "mm": "millimeter", "m": "meter"}


def is_label(interpolatable: bool | None, dtype: Any) -> bool:
    """Whether an array is a label image (written as an ``image-label``): not interpolatable
    (gunpowder's mark of ids and masks) and of an integer type."""
    import numpy as np

    return interpolatable is False and np.dtype(dtype).kind in "iu"


def level_path(level: int) -> str:
    """The path of resolution level ``level`` inside its image group: ``'s0'``, ``'s1'``, ..."""
    return f"s{int(level)}"


def dimension_names(num_channel_dims: int, spatial_dims: int) -> list[str]:
    """Axis names of an array: ``['c^', 'z', 'y', 'x']`` for one channel axis and three spatial ones."""
    if num_channel_dims == 1:
        channels = ["c^"]
    else:
        channels = [f"c{i}^" for i in range(num_channel_dims)]
    spatial = list(SPATIAL_AXIS_NAMES[-spatial_dims:]) if spatial_dims <= 3 else [f"d{i}" for i in range(spatial_dims)]
    return channels + spatial


def ome_axes(num_channel_dims: int, spatial_dims: int, units: str = "nm") -> list[dict]:
    """OME-Zarr 0.5 ``axes``: custom (untyped) channel axes, then ``space`` axes in ``units``."""
    names = dimension_names(num_channel_dims, spatial_dims)
    unit = UNIT_NAMES.get(units, units)
    return [{"name": n} for n in names[:num_channel_dims]] + [
        {"name": n, "type": "space", "unit": unit} for n in names[num_channel_dims:]
    ]


def level_attrs(voxel_size: Coordinate, offset: Coordinate, num_channel_dims: int, units: str = "nm") -> dict:
    """Attributes of a level array: funlib/gunpowder's (``resolution``, ``voxel_size``, ``offset``,
    ``axis_names``, ``units``, ``types``) and neuroglancer's ``dimension_units``."""
    dims = len(voxel_size)
    return {
        "resolution": list(voxel_size),
        "voxel_size": list(voxel_size),
        "offset": list(offset),
        "axis_names": dimension_names(num_channel_dims, dims),
        "units": [units] * dims,
        "types": ["channel"] * num_channel_dims + ["space"] * dims,
        "dimension_units": [None] * num_channel_dims + [f"{v} {units}" for v in voxel_size],
    }


def ome_dataset(path: str, voxel_size: Coordinate, offset: Coordinate, num_channel_dims: int) -> dict:
    """One ``multiscales`` ``datasets`` entry: the level's scale (voxel size) and translation (offset)."""
    return {
        "path": path,
        "coordinateTransformations": [
            {"type": "scale", "scale": [1.0] * num_channel_dims + [float(v) for v in voxel_size]},
            {"type": "translation", "translation": [0.0] * num_channel_dims + [float(o) for o in offset]},
        ],
    }


@dataclass(frozen=True)
class Level:
    """One resolution level of an image: its array path inside the group, voxel size and offset."""

    path: str
    voxel_size: Coordinate
    offset: Coordinate


@dataclass(frozen=True)
class OmeImage:
    """An OME-Zarr image group as :func:`read_image` finds it.

    Args:
        container (str): the Zarr container.
        name (str): the group's path in the container (``'volumes/pred_affs'``).
        levels (tuple of :class:`Level`): the resolution levels, finest first.
        axis_names (tuple of str): the OME axis names (= the arrays' ``dimension_names``).
        num_channel_dims (int): how many leading axes are not spatial.
        is_label (bool): whether the group is an ``image-label``.
        labels (tuple of str): the label images listed in ``<name>/labels``.
    """

    container: str
    name: str
    levels: tuple[Level, ...]
    axis_names: tuple[str, ...]
    num_channel_dims: int
    is_label: bool
    labels: tuple[str, ...] = ()

    def level_name(self, level: int = 0) -> str:
        """The dataset name of level ``level`` (``'volumes/pred_affs/s0'``)."""
        return f"{self.name}/{self.levels[level].path}" if self.name else self.levels[level].path


def _join(container: str, name: str) -> str:
    return os.path.join(container, name.strip("/")) if name.strip("/") else container


def _node_attrs(container: str, name: str) -> tuple[str | None, dict]:
    """``('array' | 'group' | None, attributes)`` of the Zarr node at ``name``, read from its metadata file."""
    import json

    path = _join(container, name)
    meta = os.path.join(path, "zarr.json")
    if os.path.exists(meta):
        with open(meta) as f:
            doc = json.load(f)
        return doc.get("node_type"), dict(doc.get("attributes") or {})
    if os.path.exists(os.path.join(path, ".zarray")) or os.path.exists(os.path.join(path, ".zgroup")):
        import zarr

        node = zarr.open(path, mode="r")
        return ("array" if isinstance(node, zarr.Array) else "group"), dict(node.attrs)
    return None, {}


def _ome(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    ome = attrs.get("ome")
    return ome if isinstance(ome, Mapping) else attrs


def read_image(container: str | os.PathLike, name: str) -> OmeImage | None:
    """The OME-Zarr image group at ``name``, or ``None`` when ``name`` is not one (an array, a plain
    group, a group whose ``multiscales`` describe arrays outside it, or nothing)."""
    container, name = str(container), name.strip("/")
    kind, attrs = _node_attrs(container, name)
    if kind != "group":
        return None
    ome = _ome(attrs)
    multiscales = ome.get("multiscales") or []
    if not multiscales:
        return None
    if any(_describes_sibling(m) for m in multiscales):
        return None
    ms = multiscales[0]
    axes = ms.get("axes") or []
    names = tuple(str(a.get("name")) if isinstance(a, Mapping) else str(a) for a in axes)
    spatial = [i for i, a in enumerate(axes) if isinstance(a, Mapping) and a.get("type") == "space"]
    if not spatial:
        spatial = list(range(max(0, len(axes) - 3), len(axes)))
    levels = []
    for ds in ms.get("datasets") or []:
        path = str(ds.get("path", "")).strip("/")
        scale = translation = None
        for t in ds.get("coordinateTransformations") or []:
            if t.get("type") == "scale":
                scale = t.get("scale")
            elif t.get("type") == "translation":
                translation = t.get("translation")
        vs = Coordinate(int(round(scale[i])) for i in spatial) if scale else Coordinate((1,) * len(spatial))
        off = Coordinate(int(round(translation[i])) for i in spatial) if translation else Coordinate((0,) * len(spatial))
        levels.append(Level(path, vs, off))
    if not levels or _node_attrs(container, f"{name}/{levels[0].path}")[0] != "array":
        # the old layout: multiscales on a parent group describing sibling arrays
        return None
    labels_kind, labels_attrs = _node_attrs(container, f"{name}/labels")
    labels = tuple(_ome(labels_attrs).get("labels") or []) if labels_kind == "group" else ()
    return OmeImage(
        container=container,
        name=name,
        levels=tuple(levels),
        axis_names=names,
        num_channel_dims=min(spatial) if spatial else 0,
        is_label="image-label" in ome,
        labels=labels,
    )


def _describes_sibling(multiscale: Mapping[str, Any]) -> bool:
    """Whether a ``multiscales`` entry is daskseg's old layout: an entry on the parent group, named
    after the one sibling array it describes."""
    datasets = multiscale.get("datasets") or []
    return len(datasets) == 1 and datasets[0].get("path") == multiscale.get("name")


def redirect_target(container: str | os.PathLike, name: str) -> str | None:
    """The dataset a redirect group at ``name`` stands for, or ``None`` when ``name`` is no redirect."""
    kind, attrs = _node_attrs(str(container), name)
    if kind != "group":
        return None
    target = (attrs.get("daskseg") or {}).get("redirect")
    return str(target).strip("/") if target else None


def resolve_array(container: str | os.PathLike, name: str) -> str:
    """The array to read for dataset ``name``: an image group's level 0, a redirect's target
    (resolved in turn), or ``name`` itself when it is an array (or does not exist)."""
    container, name = str(container), name.strip("/")
    seen = set()
    while name not in seen:
        seen.add(name)
        target = redirect_target(container, name)
        if target is not None:
            name = target
            continue
        image = read_image(container, name)
        if image is not None:
            return image.level_name(0)
        return name
    raise DatasetError(f"{container}/{name}: the redirects form a cycle ({sorted(seen)})")


def create_image(
    container: str | os.PathLike,
    name: str,
    shape: Sequence[int],
    voxel_size: Sequence[int],
    offset: Sequence[int],
    dtype: Any,
    chunks: Sequence[int],
    num_channel_dims: int = 0,
    compressors: Any = "auto",
    fill_value: Any = 0,
    label: bool = False,
    units: str = "nm",
) -> str:
    """Create (replacing whatever is at ``name``) an image group with its level 0 array; return the
    level's dataset name (``'<name>/s0'``).

    Args:
        container (str): the Zarr container (created if missing).
        name (str): the image group's path (``'volumes/pred_affs'``).
        shape (tuple of int): the level-0 array's shape, channel axes first.
        voxel_size, offset (tuple of int): world units of the spatial axes.
        dtype: the data type.
        chunks (tuple of int): the array's chunk shape (all axes).
        num_channel_dims (int): leading non-spatial axes.
        compressors: Zarr v3 compressors (``'auto'``: zarr's default).
        fill_value: what unwritten chunks read as.
        label (bool): make it an ``image-label`` (see :func:`mark_label`).
        units (str): the spatial unit (``'nm'``).
    """
    import zarr

    container, name = str(container), name.strip("/")
    if not name:
        raise DatasetError(f"{container}: an image needs a name inside the container (e.g. volumes/raw)")
    voxel_size, offset = Coordinate(voxel_size), Coordinate(offset)
    root = zarr.open_group(container, mode="a")
    _forget_old_multiscale(container, name)
    group = root.create_group(name, overwrite=True)
    spatial_dims = len(voxel_size)
    base = name.rpartition("/")[2]
    group.attrs.put({
        "ome": {
            "version": OME_VERSION,
            "multiscales": [{
                "name": base,
                "axes": ome_axes(num_channel_dims, spatial_dims, units),
                "datasets": [ome_dataset(level_path(0), voxel_size, offset, num_channel_dims)],
            }],
        }
    })
    array = group.create_array(
        level_path(0),
        shape=tuple(shape),
        chunks=tuple(chunks),
        dtype=dtype,
        fill_value=fill_value,
        compressors=compressors,
        dimension_names=dimension_names(num_channel_dims, spatial_dims),
        overwrite=True,
    )
    array.attrs.update(level_attrs(voxel_size, offset, num_channel_dims, units))
    if label:
        mark_label(container, name)
    return f"{name}/{level_path(0)}"


def add_level(
    container: str | os.PathLike,
    name: str,
    voxel_size: Sequence[int],
    offset: Sequence[int] | None = None,
    shape: Sequence[int] | None = None,
    chunks: Sequence[int] | None = None,
    compressors: Any = "auto",
) -> str:
    """Add a coarser resolution level to the image group ``name`` (replacing one of the same voxel
    size) and return its dataset name (``'<name>/s1'``, ...). The caller writes its data (e.g.
    ``open_dataset(container, '<name>/s1', mode='r+').write(...)``). OME-Zarr wants an image and its
    labels (``read_image(...).labels``) to have the same number of levels: add them to both.

    Args:
        voxel_size (tuple of int): the level's voxel size, a multiple of level 0's.
        offset (tuple of int): the level's offset; level 0's by default (it must be a multiple of
            ``voxel_size``).
        shape (tuple of int): the level's spatial shape; by default level 0's extent divided by the
            voxel size, rounded up.
        chunks (tuple of int): the spatial chunk shape; level 0's by default.
    """
    import zarr

    container, name = str(container), name.strip("/")
    image = read_image(container, name)
    if image is None:
        raise DatasetError(f"{container}/{name} is not an OME-Zarr image group; cannot add a level to it")
    base = zarr.open_array(_join(container, image.level_name(0)), mode="r")
    level0 = image.levels[0]
    vs = Coordinate(voxel_size)
    if not vs.is_multiple_of(level0.voxel_size):
        raise DatasetError(f"{container}/{name}: level voxel size {tuple(vs)} is not a multiple of {tuple(level0.voxel_size)}")
    off = Coordinate(offset) if offset is not None else level0.offset
    if not off.is_multiple_of(vs):
        raise DatasetError(f"{container}/{name}: level offset {tuple(off)} is not a multiple of its voxel size {tuple(vs)}")
    nc = image.num_channel_dims
    extent = Coordinate(base.shape[nc:]) * level0.voxel_size + level0.offset - off
    spatial = tuple(shape) if shape is not None else tuple(-(-e // v) for e, v in zip(extent, vs))
    base_chunks = tuple(base.chunks)
    chunk_spatial = tuple(chunks) if chunks is not None else base_chunks[nc:]
    levels = [lv for lv in image.levels if lv.voxel_size != vs]
    index = len(levels)
    path = level_path(index)
    group = zarr.open_group(_join(container, name), mode="r+")
    array = group.create_array(
        path,
        shape=tuple(base.shape[:nc]) + spatial,
        chunks=base_chunks[:nc] + tuple(min(c, max(s, 1)) for c, s in zip(chunk_spatial, spatial)),
        dtype=base.dtype,
        fill_value=base.fill_value,
        compressors=base.compressors if compressors == "auto" else compressors,
        dimension_names=list(image.axis_names),
        overwrite=True,
    )
    base_attrs: dict[str, Any] = dict(base.attrs)
    units = str((base_attrs.get("units") or ["nm"])[0])
    array.attrs.update(level_attrs(vs, off, nc, units))
    attrs: dict[str, Any] = dict(group.attrs)
    ome: dict[str, Any] = dict(attrs["ome"])
    ms: dict[str, Any] = dict(ome["multiscales"][0])
    entries = [d for d in ms["datasets"] if d["path"] in {lv.path for lv in levels}]
    entries.append(ome_dataset(path, vs, off, nc))
    entries.sort(key=lambda d: d["coordinateTransformations"][0]["scale"])
    ms["datasets"] = entries
    ome["multiscales"] = [ms] + list(ome["multiscales"][1:])
    group.attrs.put({**attrs, "ome": ome})
    return f"{name}/{path}"


def mark_label(container: str | os.PathLike, name: str, **properties: Any) -> None:
    """Make the image group ``name`` an OME-Zarr ``image-label``; when it lies at
    ``<image>/labels/<label>`` and ``<image>`` is an image group, list it in ``<image>/labels``.

    Args:
        properties: extra ``image-label`` members (``colors``, ``properties``).
    """
    import zarr

    container, name = str(container), name.strip("/")
    group = zarr.open_group(_join(container, name), mode="r+")
    attrs: dict[str, Any] = dict(group.attrs)
    ome: dict[str, Any] = dict(attrs.get("ome") or {})
    parent, _, label = name.rpartition("/")
    image_name, _, labels_dir = parent.rpartition("/")
    under_image = labels_dir == "labels" and read_image(container, image_name) is not None
    image_label: dict[str, Any] = {**properties}
    if under_image:
        image_label.setdefault("source", {"image": "../../"})
    ome["image-label"] = image_label
    group.attrs.put({**attrs, "ome": ome})
    if under_image:
        labels_group = zarr.open_group(_join(container, parent), mode="a")
        labels_attrs: dict[str, Any] = dict(labels_group.attrs)
        labels_ome: dict[str, Any] = dict(labels_attrs.get("ome") or {})
        listed = [x for x in labels_ome.get("labels") or [] if x != label]
        labels_group.attrs.put({**labels_attrs, "ome": {**labels_ome, "version": OME_VERSION, "labels": listed + [label]}})


def add_redirect(container: str | os.PathLike, name: str, target: str) -> None:
    """Make ``name`` a redirect group standing for the dataset ``target`` (both paths in the container),
    so that ``name`` keeps working for daskseg's readers after the data moved to ``target``."""
    import zarr

    container = str(container)
    root = zarr.open_group(container, mode="a")
    _forget_old_multiscale(container, name.strip("/"))
    group = root.create_group(name.strip("/"), overwrite=True)
    group.attrs.put({"daskseg": {"redirect": target.strip("/")}})


def _forget_old_multiscale(container: str, name: str) -> None:
    """Drop the parent group's old-layout ``multiscales`` entry for ``name``, which would describe a
    group once ``name`` becomes an image (an invalid OME image on the parent)."""
    parent, _, base = name.rpartition("/")
    kind, attrs = _node_attrs(container, parent)
    if kind != "group":
        return
    ome = _ome(attrs)
    multiscales = ome.get("multiscales") or []
    if not any(d.get("path") == base for m in multiscales for d in m.get("datasets") or []):
        return
    import zarr

    kept = [m for m in multiscales if not any(d.get("path") == base for d in m.get("datasets") or [])]
    rest = {k: v for k, v in ome.items() if k != "multiscales"}
    if kept:
        rest["multiscales"] = kept
    new = {**attrs, "ome": rest} if "ome" in attrs else rest
    zarr.open_group(_join(container, parent), mode="r+").attrs.put(new)
