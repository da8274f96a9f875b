"""Named arrays with their world-unit specs: ``ArrayKey``, ``ArraySpec`` and ``Array``.

As in gunpowder, the spatial dimensions of ``Array.data`` are its last ``roi.dims`` axes; any
leading axes are channels (or a batch dimension) and are kept whole by cropping.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .errors import GeometryError, SpecError
from .geometry import Coordinate, Roi, as_roi
from .keys import DataKey


class ArrayKey(DataKey):
    """A name for an array in a batch; the same name always gives the same key."""

    @classmethod
    def namespace(cls) -> type:
        return ArrayKeys


class ArrayKeys:
    """gunpowder's namespace of every :class:`ArrayKey` made so far: after ``ArrayKey("RAW")``,
    ``ArrayKeys.RAW`` is that key."""


@dataclass
class ArraySpec:
    """What is known about an array: ROI and voxel size in world units, dtype, interpolatability.

    ``nonspatial`` arrays (e.g. a loss value) have no ROI or voxel size.
    """

    roi: Roi | None = None
    voxel_size: Coordinate | None = None
    interpolatable: bool | None = None
    nonspatial: bool = False
    dtype: Any = None
    placeholder: bool = False

    def __setattr__(self, name: str, value: Any) -> None:
        # funlib.geometry ROIs and plain tuples are accepted wherever a spec is filled in
        if name == "roi" and value is not None:
            value = as_roi(value)
        elif name == "voxel_size" and value is not None:
            value = Coordinate(value)
        object.__setattr__(self, name, value)

    def __post_init__(self) -> None:
        if self.dtype is not None:
            self.dtype = np.dtype(self.dtype)
        if self.nonspatial and (self.roi is not None or self.voxel_size is not None):
            raise SpecError("a nonspatial ArraySpec has neither a ROI nor a voxel size")

    def copy(self) -> ArraySpec:
        out = copy.copy(self)
        if self.roi is not None:  # ROIs can be changed in place (set_offset), so copies do not share one
            out.roi = self.roi.copy()
        return out

    def checked_roi(self, what: str) -> Roi:
        """The ROI, for code that needs one; a ``SpecError`` naming ``what`` (e.g. "Resample's source RAW") if
        there is none."""
        if self.roi is None:
            raise SpecError(f"{what} has no ROI")
        return self.roi

    def checked_voxel_size(self, what: str) -> Coordinate:
        """The voxel size, for code that needs one; a ``SpecError`` naming ``what`` if there is none."""
        if self.voxel_size is None:
            raise SpecError(f"{what} has no voxel size")
        return self.voxel_size

    def update_with(self, other: ArraySpec) -> ArraySpec:
        """A copy with every field that ``other`` sets (not None) taken from ``other``."""
        out = self.copy()
        for f in fields(other):
            value = getattr(other, f.name)
            if value is not None and f.name not in ("nonspatial", "placeholder"):
                setattr(out, f.name, value)
        return out

    def __repr__(self) -> str:
        parts = [f"ROI: {self.roi}", f"voxel size: {self.voxel_size}", f"interpolatable: {self.interpolatable}"]
        parts += [f"dtype: {self.dtype}"] if self.dtype is not None else []
        parts += ["nonspatial"] if self.nonspatial else []
        return ", ".join(parts)


class Array:
    """A numpy array together with its ``ArraySpec``; shape and spec are checked to agree."""

    def __init__(self, data: np.ndarray, spec: ArraySpec | None = None, attrs: dict[str, Any] | None = None):
        self.data = data
        self.spec = spec.copy() if spec is not None else ArraySpec()
        self.attrs = attrs or {}
        if self.spec.dtype is None:
            self.spec.dtype = np.dtype(getattr(data, "dtype", np.float32))
        self._check()

    def _grid(self) -> tuple[Roi, Coordinate]:
        """The ROI and voxel size of this spatial array (a SpecError if it has none)."""
        roi, voxel_size = self.spec.roi, self.spec.voxel_size
        if roi is None or voxel_size is None:
            raise SpecError(f"array {self.spec} has no ROI or no voxel size")
        return roi, voxel_size

    def _check(self) -> None:
        spec = self.spec
        if spec.nonspatial or spec.roi is None:
            return
        if spec.voxel_size is None:
            raise SpecError(f"array with ROI {spec.roi} has no voxel size")
        if not spec.roi.is_aligned(spec.voxel_size):
            raise GeometryError(f"array ROI {spec.roi} is not a multiple of its voxel size {spec.voxel_size}")
        dims = spec.roi.dims
        expected = tuple(spec.roi.shape / spec.voxel_size)
        if self.data.ndim < dims or tuple(self.data.shape[-dims:]) != expected:
            raise SpecError(
                f"data of shape {self.data.shape} does not match ROI {spec.roi} at voxel size "
                f"{spec.voxel_size} (expected spatial shape {expected})"
            )

    def crop(self, roi: Roi, copy: bool = True) -> Array:
        """The part of this array inside ``roi``, which must be contained and on its voxel grid."""
        roi = as_roi(roi)
        if self.spec.nonspatial:
            return Array(self.data, self.spec, self.attrs)
        own, vs = self._grid()
        if not own.contains(roi):
            raise GeometryError(f"cannot crop to {roi}: it is not contained in the array's ROI {own}")
        if not roi.is_aligned(vs) or not (roi.offset - own.offset).is_multiple_of(vs):
            raise GeometryError(f"cannot crop to {roi}: not on the voxel grid of the array (ROI {own}, voxel size {vs})")
        begin = (roi.begin - own.begin) // vs
        end = begin + roi.shape // vs
        channel_dims = self.data.ndim - roi.dims
        slices = (slice(None),) * channel_dims + tuple(slice(b, e) for b, e in zip(begin, end))
        data = self.data[slices]
        spec = self.spec.copy()
        spec.roi = roi
        return Array(np.array(data) if copy else data, spec, self.attrs)

    def merge(self, other: Array, copy_from_self: bool = False, copy: bool = False) -> Array:
        """Paste ``other`` into (a copy of) this array where their ROIs overlap; ``other`` wins."""
        merged = Array(np.array(self.data) if copy else self.data, self.spec, self.attrs)
        if self.spec.nonspatial:
            return other
        own, vs = self._grid()
        other_roi, _ = other._grid()
        if not own.contains(other_roi):
            return other
        begin = (other_roi.begin - own.begin) // vs
        end = begin + other_roi.shape // vs
        channel_dims = self.data.ndim - own.dims
        slices = (slice(None),) * channel_dims + tuple(slice(b, e) for b, e in zip(begin, end))
        merged.data[slices] = other.data
        return merged

    def copy(self) -> Array:
        return Array(np.array(self.data), self.spec, dict(self.attrs))

    def __repr__(self) -> str:
        return f"Array(shape={getattr(self.data, 'shape', None)}, dtype={getattr(self.data, 'dtype', None)}, {self.spec})"
