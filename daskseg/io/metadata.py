"""Voxel size, offset and axis metadata conventions shared with gunpowder, funlib and OME-Zarr.

Arrays carry funlib/gunpowder attributes (``resolution``/``voxel_size``, ``offset`` in world units,
``axis_names``, ``units``, ``types``). Zarr datasets are OME-Zarr 0.5 image groups (see ``ome.py``);
``read_ome_metadata`` also reads the older layout, a ``multiscales`` entry on the parent group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..geometry import Coordinate
from .ome import level_attrs


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
            spatial = _spatial_axes(axes) or list(range(len(scale or [])))
            return SpatialMetadata(
                voxel_size=None if scale is None else Coordinate(int(round(scale[i])) for i in spatial),
                offset=None if translation is None else Coordinate(int(round(translation[i])) for i in spatial),
                axis_names=tuple(_axis_name(axes[i]) for i in spatial) if axes else None,
                units=tuple(_axis_unit(axes[i]) for i in spatial) if axes else None,
            )
    return SpatialMetadata(None, None)


def _spatial_axes(axes: list) -> list[int]:
    """Indices of the spatial axes: those typed ``space``, or all when no axis has a type (OME 0.3)."""
    typed = any(isinstance(a, dict) and "type" in a for a in axes)
    return [i for i, a in enumerate(axes) if not typed or (isinstance(a, dict) and a.get("type") == "space")]


def _axis_name(axis) -> str:
    return str(axis.get("name")) if isinstance(axis, dict) else str(axis)


def _axis_unit(axis) -> str:
    return axis.get("unit", "") if isinstance(axis, dict) else ""


def funlib_attrs(voxel_size: Coordinate, offset: Coordinate, num_channel_dims: int, units: str = "nm") -> dict:
    """Attributes gunpowder (``resolution``) and funlib.persistence (``voxel_size``, ``offset``,
    ``axis_names``, ``units``, ``types``) read."""
    attrs = level_attrs(voxel_size, offset, num_channel_dims, units)
    del attrs["dimension_units"]
    return attrs
