"""World-unit geometry: integer ``Coordinate`` tuples and axis-aligned ``Roi`` boxes.

Both are small values with exact integer arithmetic, as in funlib.geometry. ``None`` in a
coordinate means "unbounded" in that dimension; arithmetic with ``None`` yields ``None``.

funlib.geometry interop: daskseg's ``Coordinate`` and ``Roi`` *are* funlib.geometry's (subclasses),
so third-party gunpowder code that checks ``isinstance(x, funlib.geometry.Roi)`` or calls any funlib
method (``get_bounding_box``, ``get_center``, ``set_offset``, ``squeeze``, ``freeze``, ...) works
unchanged, and funlib objects are accepted (and converted with :func:`as_roi`) wherever daskseg
takes one. Subclassing rather than converting at every entry was chosen because objects flow both
ways: a daskseg ROI handed to a funlib-typed third-party node must pass its checks too.

Deliberate differences from funlib, kept because they catch bugs: ``/`` must divide exactly (it
raises :class:`GeometryError` instead of truncating; use ``//`` or ``floor_division`` to floor),
coordinates reject non-integer entries, and a ROI's shape cannot become negative. Like funlib's,
a ``Roi`` is mutable through ``set_offset``/``set_shape`` (and the ``offset``/``shape`` setters),
so ported code that mutates in place keeps working; every other operation returns a new ROI, and
``copy()`` returns an independent copy. A ROI stays hashable (funlib's is not): do not mutate one
while it is a dict key.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import funlib.geometry as _fg

from .errors import GeometryError

Number = int | None
# what arithmetic with a Coordinate takes: another coordinate (any iterable of entries) or a scalar
# that broadcasts (``None``: unbounded); entries must be integers (checked when converted)
CoordinateLike = Iterable[int | float | None] | int | float | None


def _op(a: Number, b: Number, fn: Callable[[int, int], int]) -> Number:
    if a is None or b is None:
        return None
    return fn(a, b)


class Coordinate(_fg.Coordinate):
    """An n-dimensional integer point or extent with element-wise arithmetic.

    ``Coordinate((40, 4, 4)) * 2 == Coordinate((80, 8, 8))``; scalars broadcast, ``None`` entries
    stay ``None`` (unbounded).
    """

    def __new__(cls, *values: int | float | None | Iterable[int | float | None]) -> Coordinate:
        entries: tuple[Any, ...] = values
        if len(values) == 1 and isinstance(values[0], Iterable) and not isinstance(values[0], (str, bytes)):
            entries = tuple(values[0])
        out: list[int | None] = []
        for v in entries:
            if v is None:
                out.append(None)
            else:
                iv = int(v)
                if iv != v:
                    raise GeometryError(f"Coordinate entries must be integers, got {v!r} in {entries!r}")
                out.append(iv)
        return tuple.__new__(cls, out)

    @property
    def dims(self) -> int:
        return len(self)

    def squeeze(self, dim: int = 0) -> Coordinate:
        """This coordinate without axis ``dim``."""
        if not -len(self) <= dim < len(self):
            raise GeometryError(f"cannot squeeze axis {dim} of the {len(self)}D coordinate {self}")
        dim %= len(self)
        return Coordinate(c for i, c in enumerate(self) if i != dim)

    def is_multiple_of(self, other: CoordinateLike) -> bool:
        other = self._as_coord(other)
        return all(a is None or b is None or a % b == 0 for a, b in zip(self, other))

    def round_division(self, other: CoordinateLike) -> Coordinate:
        """Division rounded to the nearest integer; an exact half rounds down (as funlib)."""
        other = self._as_coord(other)
        return Coordinate(_op(a, b, lambda x, y: (x + (y - 1) // 2) // y) for a, b in zip(self, other))

    def floor_division(self, other: CoordinateLike) -> Coordinate:
        """Division rounded down (``self // other``)."""
        return self // other

    def ceil_division(self, other: CoordinateLike) -> Coordinate:
        other = self._as_coord(other)
        return Coordinate(_op(a, b, lambda x, y: -(-x // y)) for a, b in zip(self, other))

    def _as_coord(self, other: CoordinateLike) -> Coordinate:
        if isinstance(other, numbers.Number) and not isinstance(other, bool) or other is None:
            return Coordinate((other,) * len(self))
        other = Coordinate(other)
        if len(other) != len(self):
            raise GeometryError(f"dimension mismatch: {self} ({len(self)}D) and {other} ({len(other)}D)")
        return other

    def _binary(self, other: CoordinateLike, fn: Callable[[int, int], int]) -> Coordinate:
        other = self._as_coord(other)
        return Coordinate(_op(a, b, fn) for a, b in zip(self, other))

    def __add__(self, other: CoordinateLike) -> Coordinate:  # type: ignore[override]
        if isinstance(other, tuple) and not isinstance(other, _fg.Coordinate) and len(other) != len(self):
            return NotImplemented
        return self._binary(other, lambda a, b: a + b)

    def __sub__(self, other: CoordinateLike) -> Coordinate:
        return self._binary(other, lambda a, b: a - b)

    def __rsub__(self, other: CoordinateLike) -> Coordinate:
        return self._as_coord(other)._binary(self, lambda a, b: a - b)

    def __radd__(self, other: CoordinateLike) -> Coordinate:
        if isinstance(other, tuple) and not isinstance(other, _fg.Coordinate) and len(other) != len(self):
            return NotImplemented
        return self._as_coord(other)._binary(self, lambda a, b: a + b)

    def __mul__(self, other: CoordinateLike) -> Coordinate:  # type: ignore[override]
        return self._binary(other, lambda a, b: a * b)

    def __rmul__(self, other: CoordinateLike) -> Coordinate:  # type: ignore[override]
        return self._as_coord(other)._binary(self, lambda a, b: a * b)

    def __floordiv__(self, other: CoordinateLike) -> Coordinate:
        return self._binary(other, lambda a, b: a // b)

    def __rfloordiv__(self, other: CoordinateLike) -> Coordinate:
        return self._as_coord(other)._binary(self, lambda a, b: a // b)

    def __rtruediv__(self, other: CoordinateLike) -> Coordinate:
        return self._as_coord(other).__truediv__(self)

    def __rmod__(self, other: CoordinateLike) -> Coordinate:
        return self._as_coord(other)._binary(self, lambda a, b: a % b)

    def __pow__(self, other: CoordinateLike) -> Coordinate:
        return self._binary(other, lambda a, b: a**b)

    def __truediv__(self, other: CoordinateLike) -> Coordinate:
        """Division that must be exact (as with world units / voxel size); raises otherwise."""
        other = self._as_coord(other)
        if not self.is_multiple_of(other):
            raise GeometryError(f"{self} is not divisible by {other}; use // to floor-divide")
        return self // other

    def __mod__(self, other: CoordinateLike) -> Coordinate:
        return self._binary(other, lambda a, b: a % b)

    def __neg__(self) -> Coordinate:
        return Coordinate(None if a is None else -a for a in self)

    def __abs__(self) -> Coordinate:
        return Coordinate(None if a is None else abs(a) for a in self)

    def __repr__(self) -> str:
        return "(" + ", ".join(str(v) for v in self) + ("," if len(self) == 1 else "") + ")"


def _lcm(values: Iterable[int]) -> int:
    return math.lcm(*values)


class Roi(_fg.Roi):
    """An axis-aligned box ``[offset, offset + shape)`` in world units.

    A ``None`` in ``shape`` makes the ROI unbounded in that dimension (its offset is then ``None``
    too). Operations return new ROIs; only ``set_offset``/``set_shape`` (and assigning ``offset`` or
    ``shape``) change a ROI in place, as in funlib.geometry.

    Args:

        offset (array-like of ``int``):

            The first point inside the ROI, in world units (``None`` where unbounded).

        shape (array-like of ``int``):

            The extent per axis, in world units (``None`` for unbounded).
    """

    _offset: Coordinate
    _shape: Coordinate

    def __init__(self, offset: Iterable[Number], shape: Iterable[Number]):
        offset, shape = self._validated(offset, shape)
        object.__setattr__(self, "_offset", offset)
        object.__setattr__(self, "_shape", shape)
        self.freeze()

    @staticmethod
    def _validated(offset: Iterable[Number], shape: Iterable[Number]) -> tuple[Coordinate, Coordinate]:
        offset = Coordinate(offset)
        shape = Coordinate(shape)
        if len(offset) != len(shape):
            raise GeometryError(f"ROI offset {offset} and shape {shape} have different dimensions")
        offset = Coordinate(None if s is None else o for o, s in zip(offset, shape))
        if any(s is not None and s < 0 for s in shape):
            raise GeometryError(f"ROI shape must be non-negative, got {shape}")
        return offset, shape

    # --- accessors -------------------------------------------------------------------------
    @property
    def offset(self) -> Coordinate:
        return self._offset

    @offset.setter
    def offset(self, offset: Iterable[Number]) -> None:
        self.set_offset(offset)

    @property
    def shape(self) -> Coordinate:
        return self._shape

    @shape.setter
    def shape(self, shape: Iterable[Number]) -> None:
        self.set_shape(shape)

    def set_offset(self, new_offset: Iterable[Number]) -> None:
        """Move this ROI in place (funlib.geometry's mutator; prefer ``shift`` for a new ROI)."""
        offset, _ = self._validated(new_offset, self._shape)
        object.__setattr__(self, "_offset", offset)

    def set_shape(self, new_shape: Iterable[Number]) -> None:
        """Resize this ROI in place, keeping its offset (funlib.geometry's mutator).

        A dimension that was unbounded has no offset; it gets offset 0 when it becomes bounded.
        """
        new_shape = Coordinate(new_shape)
        if len(new_shape) != self.dims:
            raise GeometryError(f"new shape {new_shape} has {len(new_shape)} dimensions, {self} has {self.dims}")
        bounded = [0 if o is None and s is not None else o for o, s in zip(self._offset, new_shape)]
        offset, shape = self._validated(bounded, new_shape)
        object.__setattr__(self, "_offset", offset)
        object.__setattr__(self, "_shape", shape)

    def squeeze(self, dim: int = 0) -> Roi:
        """This ROI without axis ``dim``."""
        return Roi(self._offset.squeeze(dim), self._shape.squeeze(dim))

    @property
    def begin(self) -> Coordinate:
        return self._offset

    @property
    def end(self) -> Coordinate:
        return self._offset + self._shape

    @property
    def dims(self) -> int:
        return len(self._shape)

    @property
    def center(self) -> Coordinate:
        return self._offset + self._shape // 2

    @property
    def size(self) -> int | None:
        if self.unbounded:
            return None
        return math.prod(self._shape)

    @property
    def empty(self) -> bool:
        return any(s == 0 for s in self._shape)

    @property
    def unbounded(self) -> bool:
        return any(s is None for s in self._shape)

    def get_begin(self) -> Coordinate:
        return self.begin

    def get_end(self) -> Coordinate:
        return self.end

    def get_shape(self) -> Coordinate:
        return self.shape

    def get_offset(self) -> Coordinate:
        return self.offset

    def get_center(self) -> Coordinate:
        return self.center

    def get_size(self) -> int | None:
        return self.size

    def get_bounding_box(self) -> tuple[slice, ...]:
        """Alias of ``to_slices()`` (funlib.geometry's name)."""
        return self.to_slices()

    # --- operations ------------------------------------------------------------------------
    def _check_dims(self, other: _fg.Roi | tuple[object, ...]) -> None:
        d = other.dims if isinstance(other, _fg.Roi) else len(other)
        if d != self.dims:
            raise GeometryError(f"dimension mismatch between {self} and {other}")

    def contains(self, other: _fg.Roi | Iterable[float | None]) -> bool:
        """Whether ``other`` (a ROI or a point, integer or real) lies completely inside this ROI."""
        if isinstance(other, _fg.Roi):
            other = as_roi(other)
            self._check_dims(other)
            if other.empty:
                # as funlib: an empty ROI contains an empty one
                if self.empty:
                    return True
                return self.contains(other.begin)
            return all(
                _lo_le(sb, ob) and _hi_ge(se, oe)
                for sb, ob, se, oe in zip(self.begin, other.begin, self.end, other.end)
            )
        # a point may have real entries (a graph node's location), as with funlib
        point = tuple(other)
        self._check_dims(point)
        return all(
            (b is None or (p is not None and b <= p)) and (e is None or (p is not None and p < e))
            for b, p, e in zip(self.begin, point, self.end)
        )

    def intersects(self, other: _fg.Roi) -> bool:
        other = as_roi(other)
        self._check_dims(other)
        return not self.intersect(other).empty

    def intersect(self, other: _fg.Roi) -> Roi:
        """The largest ROI contained in both (empty with shape 0 where they do not overlap)."""
        other = as_roi(other)
        self._check_dims(other)
        begin, end = [], []
        for sb, ob, se, oe in zip(self.begin, other.begin, self.end, other.end):
            b = ob if sb is None else sb if ob is None else max(sb, ob)
            e = oe if se is None else se if oe is None else min(se, oe)
            if b is not None and e is not None and e < b:
                e = b
            begin.append(b)
            end.append(e)
        return _from_bounds(begin, end)

    def union(self, other: _fg.Roi) -> Roi:
        """The smallest ROI containing both."""
        other = as_roi(other)
        self._check_dims(other)
        if self.empty:
            return other
        if other.empty:
            return self
        begin = [None if a is None or b is None else min(a, b) for a, b in zip(self.begin, other.begin)]
        end = [None if a is None or b is None else max(a, b) for a, b in zip(self.end, other.end)]
        return _from_bounds(begin, end)

    def shift(self, by: CoordinateLike) -> Roi:
        return Roi(self._offset + by, self._shape)

    def grow(
        self, amount_neg: Iterable[int | None] | int | None = 0, amount_pos: Iterable[int | None] | int | None = 0
    ) -> Roi:
        """Grow by ``amount_neg`` towards lower and ``amount_pos`` towards higher coordinates
        (negative amounts shrink)."""
        amount_neg = Coordinate((0,) * self.dims) + (0 if amount_neg is None else amount_neg)
        amount_pos = Coordinate((0,) * self.dims) + (0 if amount_pos is None else amount_pos)
        offset = self._offset - amount_neg
        shape = self._shape + amount_neg + amount_pos
        if any(s is not None and s < 0 for s in shape):
            raise GeometryError(f"cannot shrink {self} by {amount_neg}/{amount_pos}: shape would be negative")
        return Roi(offset, shape)

    def snap_to_grid(self, voxel_size: Iterable[int | None], mode: str = "grow") -> Roi:
        """Align begin and end to multiples of ``voxel_size``.

        ``grow`` snaps outwards, ``shrink`` inwards, ``closest`` to the nearest grid lines.
        """
        vs = Coordinate(voxel_size)
        self._check_dims(vs)
        if mode not in ("grow", "shrink", "closest"):
            raise GeometryError(f"snap_to_grid mode must be 'grow', 'shrink' or 'closest', not {mode!r}")

        def lo(v: int | None, s: int) -> int | None:
            if v is None:
                return None
            if mode == "grow":
                return (v // s) * s
            if mode == "shrink":
                return -(-v // s) * s
            return (v + (s - 1) // 2) // s * s  # nearest, an exact half down (as funlib)

        def hi(v: int | None, s: int) -> int | None:
            if v is None:
                return None
            if mode == "grow":
                return -(-v // s) * s
            if mode == "shrink":
                return (v // s) * s
            return (v + (s - 1) // 2) // s * s  # nearest, an exact half down (as funlib)

        begin = [lo(b, s) for b, s in zip(self.begin, vs)]
        end = [hi(e, s) for e, s in zip(self.end, vs)]
        end = [e if b is None or e is None or e >= b else b for b, e in zip(begin, end)]
        return _from_bounds(begin, end)

    def is_aligned(self, voxel_size: Iterable[int | None]) -> bool:
        """Whether offset and shape are multiples of ``voxel_size``."""
        vs = Coordinate(voxel_size)
        return self._offset.is_multiple_of(vs) and self._shape.is_multiple_of(vs)

    def to_slices(self) -> tuple[slice, ...]:
        return tuple(
            slice(None) if b is None else slice(b, e) for b, e in zip(self.begin, self.end)
        )

    def copy(self) -> Roi:
        """An independent copy (ROIs can be changed in place with ``set_offset``/``set_shape``)."""
        return Roi(self._offset, self._shape)

    def __deepcopy__(self, memo: dict[int, object]) -> Roi:
        return self.copy()

    def __copy__(self) -> Roi:
        return self.copy()

    def __add__(self, other: CoordinateLike) -> Roi:
        return self.shift(other)

    def __sub__(self, other: CoordinateLike) -> Roi:
        return self.shift(-self._offset._as_coord(other))

    def __mul__(self, other: CoordinateLike) -> Roi:
        return Roi(self._offset * other, self._shape * other)

    def __floordiv__(self, other: CoordinateLike) -> Roi:
        return Roi(self._offset // other, self._shape // other)

    def __truediv__(self, other: CoordinateLike) -> Roi:
        """Exact division of offset and shape (raises if either is not divisible)."""
        return Roi(self._offset / other, self._shape / other)

    def __mod__(self, other: CoordinateLike) -> Roi:
        return Roi(self._offset % other, self._shape % other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _fg.Roi):
            return False
        return tuple(self._offset) == tuple(other.offset) and tuple(self._shape) == tuple(other.shape)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self._offset, self._shape))

    def __repr__(self) -> str:
        if self.empty:
            return f"[empty ROI at {self.begin}]"
        parts = []
        for b, e, s in zip(self.begin, self.end, self.shape):
            parts.append(":" if s is None else f"{b}:{e}")
        return "[" + ", ".join(parts) + "] (" + ", ".join("inf" if s is None else str(s) for s in self.shape) + ")"

    def __reduce__(self) -> tuple[type[Roi], tuple[tuple[int | None, ...], tuple[int | None, ...]]]:
        return (Roi, (tuple(self._offset), tuple(self._shape)))


def _lo_le(a: int | None, b: int | None) -> bool:
    return a is None or (b is not None and a <= b)


def _hi_ge(a: int | None, b: int | None) -> bool:
    return a is None or (b is not None and a >= b)


def _from_bounds(begin: Sequence[int | None], end: Sequence[int | None]) -> Roi:
    offset: list[int | None] = []
    shape: list[int | None] = []
    for b, e in zip(begin, end):
        if b is None or e is None:
            offset.append(None)
            shape.append(None)
        else:
            offset.append(b)
            shape.append(e - b)
    return Roi(offset, shape)


def as_roi(roi: object) -> Roi:
    """A daskseg :class:`Roi` from a daskseg or funlib.geometry ROI (the same object if already ours).

    Args:

        roi (:class:`Roi` or ``funlib.geometry.Roi``):

            The ROI to convert.
    """
    if type(roi) is Roi:
        return roi
    if isinstance(roi, _fg.Roi):
        return Roi(roi.offset, roi.shape)
    raise GeometryError(f"expected a Roi (daskseg or funlib.geometry), got {type(roi).__name__} {roi!r}")


def as_roi_or_none(roi: object) -> Roi | None:
    """:func:`as_roi`, passing ``None`` through."""
    return None if roi is None else as_roi(roi)


def lcm_voxel_size(voxel_sizes: Iterable[Iterable[int]]) -> Coordinate:
    """The element-wise least common multiple of several voxel sizes."""
    sizes = [Coordinate(v) for v in voxel_sizes]
    if not sizes:
        raise GeometryError("lcm_voxel_size needs at least one voxel size")
    return Coordinate(_lcm(vals) for vals in zip(*sizes))
