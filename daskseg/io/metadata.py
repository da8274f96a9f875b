"""Voxel size, offset and axis metadata conventions shared with gunpowder, funlib and OME-Zarr.

Arrays carry funlib/gunpowder attributes (``resolution``/``voxel_size``, ``offset`` in world units,
``axis_names``, ``units``). Zarr outputs additionally get an OME-Zarr 0.5 ``multiscales`` entry on
the parent group, so napari and neuroglancer place the data in nanometres.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..geometry import Coordinate

SPATIAL_AXIS_NAMES = ("z", "y", "x")


@dataclass(frozen=True)
class SpatialMetadata:
    """Where an array sits in the world: voxel size and offset (world units) of its spatial axes."""

    voxel_size: Coordinate | None
    offset: Coordinate | None
    axis_names: tuple[str, ...] | None = None
    units: tuple[str, ...] | None = None


def read_attrs_metadata(attrs: Mapping[str, Any]) -> SpatialMetadata:
    """Read funlib/gunpowder style attributes (``resolution`` or ``voxel_size``, ``offset``)."""
    vs = attrs.get("voxel_size", attrs.get("resolution"))
    offset = attrs.get("offset")
    axis_names = attrs.get("axis_names")
    units = attrs.get("units")
    return SpatialMetadata(
        voxel_size=None if vs is None else Coordinate(vs),
        offset=None if offset is None else Coordinate(offset),
        axis_names=None if axis_names is None else tuple(axis_names),
        units=None if units is None else tuple(units),
    )


def read_ome_metadata(group_attrs: Mapping[str, Any], array_name: str) -> SpatialMetadata:
    """Find ``array_name`` among the OME-Zarr ``multiscales`` datasets of its parent group."""
    ome = group_attrs.get("ome", group_attrs)
    for ms in ome.get("multiscales", []) or []:
        axes = ms.get("axes", [])
        for ds in ms.get("datasets", []):
            if ds.get("path") != array_name:
                continue
            scale = translation = None
            for t in ds.get("coordinateTransformations", []):
                if t.get("type") == "scale":
                    scale = t["scale"]
                elif t.get("type") == "translation":
                    translation = t["translation"]
            spatial = [i for i, a in enumerate(axes) if _axis_type(a) == "space"] or list(range(len(scale or [])))
            return SpatialMetadata(
                voxel_size=None if scale is None else Coordinate(int(round(scale[i])) for i in spatial),
                offset=None if translation is None else Coordinate(int(round(translation[i])) for i in spatial),
                axis_names=tuple(_axis_name(axes[i]) for i in spatial) if axes else None,
                units=tuple(_axis_unit(axes[i]) for i in spatial) if axes else None,
            )
    return SpatialMetadata(None, None)


def _axis_type(axis) -> str:
    return axis.get("type", "space") if isinstance(axis, dict) else "space"


def _axis_name(axis) -> str:
    return str(axis.get("name")) if isinstance(axis, dict) else str(axis)


def _axis_unit(axis) -> str:
    return axis.get("unit", "") if isinstance(axis, dict) else ""


def funlib_attrs(voxel_size: Coordinate, offset: Coordinate, num_channel_dims: int, units: str = "nm") -> dict:
    """Attributes gunpowder (``resolution``) and funlib.persistence (``voxel_size``) both read."""
    dims = len(voxel_size)
    names = list(SPATIAL_AXIS_NAMES[-dims:]) if dims <= 3 else [f"d{i}" for i in range(dims)]
    channel_names = [f"c{i}^" for i in range(num_channel_dims)]
    return {
        "resolution": list(voxel_size),
        "voxel_size": list(voxel_size),
        "offset": list(offset),
        "axis_names": channel_names + names,
        "units": [units] * dims,
    }


def ome_multiscale_entry(
    array_name: str, voxel_size: Coordinate, offset: Coordinate, num_channel_dims: int, units: str = "nm"
) -> dict:
    """One single-scale OME-Zarr ``multiscales`` entry describing ``array_name``."""
    dims = len(voxel_size)
    names = list(SPATIAL_AXIS_NAMES[-dims:]) if dims <= 3 else [f"d{i}" for i in range(dims)]
    axes = [{"name": f"c{i}", "type": "channel"} for i in range(num_channel_dims)]
    axes += [{"name": n, "type": "space", "unit": "nanometer" if units == "nm" else units} for n in names]
    scale = [1.0] * num_channel_dims + [float(v) for v in voxel_size]
    translation = [0.0] * num_channel_dims + [float(o) for o in offset]
    return {
        "name": array_name,
        "axes": axes,
        "datasets": [
            {
                "path": array_name,
                "coordinateTransformations": [
                    {"type": "scale", "scale": scale},
                    {"type": "translation", "translation": translation},
                ],
            }
        ],
    }


def add_ome_multiscale(group_attrs: dict, entry: dict) -> dict:
    """Return the group attributes with ``entry`` added to (or replacing its namesake in) ``multiscales``."""
    ome = dict(group_attrs.get("ome", {}))
    ome["version"] = "0.5"
    multiscales = [m for m in ome.get("multiscales", []) if m.get("name") != entry["name"]]
    multiscales.append(entry)
    ome["multiscales"] = multiscales
    return {**group_attrs, "ome": ome}
