"""Shape arithmetic of a valid-convolution U-Net: output shape, valid input shapes, context.

Pure Python (no JAX): the network factory and the CLI use it without loading a framework.

A U-Net with ``L = len(downsample_factors)`` levels maps an input of shape ``s`` as follows, in every
spatial dimension independently:

- down, level ``l = 0 .. L-1``: each valid convolution with kernel size ``k`` removes ``k - 1``
  voxels; the result must then be divisible by the level's downsample factor ``f_l`` (max pooling
  with stride = size = ``f_l``; a remainder would be silently dropped and break alignment);
- bottom, level ``L``: the convolutions remove their ``k - 1`` voxels;
- up, level ``l = L-1 .. 0``: upsampling multiplies by ``f_l``; the skip connection of level ``l``
  is centre-cropped to that size, which needs the size difference to be even (else the concatenated
  features would be half a voxel apart); the convolutions remove their ``k - 1`` voxels.

Every size that passes is a valid input size. Valid sizes of a dimension form the progression
``s_min + n * prod(f_l)``, so the context ``input - output`` is the same for every valid input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import ShapeError

Shape = tuple[int, ...]


def _as_shape(shape: Sequence[int], dims: int, what: str) -> Shape:
    out = tuple(int(s) for s in shape)
    if len(out) != dims:
        raise ShapeError(f"{what} {tuple(shape)} has {len(out)} dimensions, the network has {dims}")
    return out


class UNetShapes:
    """The shape arithmetic of one U-Net architecture (downsample factors and kernel sizes).

    Args:
        downsample_factors: one factor per spatial dimension for each of the ``L`` downsamplings,
            e.g. ``[(1, 3, 3)] * 3``.
        kernel_size_down: for each of the ``L + 1`` levels, the kernel shapes of its convolutions
            on the way down (the last entry is the bottom level).
        kernel_size_up: for each of the ``L`` upper levels, the kernel shapes of its convolutions on
            the way up (index 0 is the top level, as for ``kernel_size_down``).
    """

    def __init__(
        self,
        downsample_factors: Sequence[Sequence[int]],
        kernel_size_down: Sequence[Sequence[Sequence[int]]],
        kernel_size_up: Sequence[Sequence[Sequence[int]]],
    ):
        self.downsample_factors = tuple(tuple(int(f) for f in fs) for fs in downsample_factors)
        self.kernel_size_down = tuple(tuple(tuple(int(k) for k in ks) for ks in level) for level in kernel_size_down)
        self.kernel_size_up = tuple(tuple(tuple(int(k) for k in ks) for ks in level) for level in kernel_size_up)
        levels = len(self.downsample_factors)
        if not self.kernel_size_down:
            raise ShapeError("kernel_size_down is empty: the network needs at least one level")
        self.dims = len(self.kernel_size_down[0][0]) if self.kernel_size_down[0] else len(self.downsample_factors[0])
        if len(self.kernel_size_down) != levels + 1:
            raise ShapeError(
                f"kernel_size_down needs {levels + 1} levels for {levels} downsample factors, "
                f"got {len(self.kernel_size_down)}"
            )
        if len(self.kernel_size_up) != levels:
            raise ShapeError(
                f"kernel_size_up needs {levels} levels for {levels} downsample factors, got {len(self.kernel_size_up)}"
            )
        for fs in self.downsample_factors:
            if len(fs) != self.dims or any(f < 1 for f in fs):
                raise ShapeError(f"downsample factor {fs} must have {self.dims} entries >= 1")
        for level in self.kernel_size_down + self.kernel_size_up:
            for ks in level:
                if len(ks) != self.dims or any(k < 1 for k in ks):
                    raise ShapeError(f"kernel size {ks} must have {self.dims} entries >= 1")
        self._first = tuple(self._search_min_valid_1d(d) for d in range(self.dims))

    @property
    def levels(self) -> int:
        """The number of downsamplings ``L``."""
        return len(self.downsample_factors)

    @property
    def step(self) -> Shape:
        """Distance between consecutive valid input sizes, per dimension (product of the factors)."""
        return tuple(math.prod(fs[d] for fs in self.downsample_factors) for d in range(self.dims))

    # --- one dimension -----------------------------------------------------------------------
    def _trace_1d(self, size: int, d: int) -> tuple[int | None, str]:
        """The output size of dimension ``d`` for input ``size``, or None and the reason."""
        s = size
        skips = []
        for level in range(self.levels):
            s -= sum(ks[d] - 1 for ks in self.kernel_size_down[level])
            if s < 1:
                return None, f"the convolutions of level {level} leave no voxels"
            f = self.downsample_factors[level][d]
            if s % f:
                return None, f"size {s} before downsampling at level {level} is not divisible by {f}"
            skips.append(s)
            s //= f
        s -= sum(ks[d] - 1 for ks in self.kernel_size_down[self.levels])
        if s < 1:
            return None, "the convolutions of the bottom level leave no voxels"
        for level in reversed(range(self.levels)):
            s *= self.downsample_factors[level][d]
            diff = skips[level] - s
            if diff < 0:
                return None, f"the upsampled features of level {level} are larger than its skip connection"
            if diff % 2:
                return None, f"the skip connection of level {level} cannot be centre-cropped by an odd {diff}"
            s -= sum(ks[d] - 1 for ks in self.kernel_size_up[level])
            if s < 1:
                return None, f"the convolutions of level {level} on the way up leave no voxels"
        return s, ""

    def _min_valid_1d(self, d: int) -> int:
        return self._first[d]

    def _search_min_valid_1d(self, d: int) -> int:
        step = self.step[d]
        reasons = set()
        for size in range(1, 100_000):
            out, why = self._trace_1d(size, d)
            if out is not None:
                # sizes are valid in a progression from here on; check the next one to be sure
                assert self._trace_1d(size + step, d)[0] is not None
                return size
            if size > 1000:
                reasons.add(why)
        raise ShapeError(
            f"this U-Net accepts no input size in dimension {d} (tried up to 100000): " + "; ".join(sorted(reasons))
        )

    def _nearest_1d(self, size: int, d: int) -> tuple[int | None, int]:
        """The largest valid size <= ``size`` (None if there is none) and the smallest >= ``size``."""
        first, step = self._min_valid_1d(d), self.step[d]
        if size <= first:
            return (first if size == first else None), first
        below = first + (size - first) // step * step
        above = below if below == size else below + step
        return below, above

    # --- public ------------------------------------------------------------------------------
    def is_valid(self, input_shape: Sequence[int]) -> bool:
        """Whether the network can process ``input_shape`` exactly."""
        shape = _as_shape(input_shape, self.dims, "input shape")
        return all(self._trace_1d(s, d)[0] is not None for d, s in enumerate(shape))

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """The output shape for ``input_shape``; a ``ShapeError`` names the nearest valid inputs."""
        shape = _as_shape(input_shape, self.dims, "input shape")
        out, reasons = [], []
        for d, s in enumerate(shape):
            o, why = self._trace_1d(s, d)
            out.append(o)
            if o is None:
                reasons.append(f"dimension {d} (size {s}): {why}")
        if reasons:
            smaller, larger = self.nearest_valid_input_shapes(shape)
            nearest = [f"{larger} (larger)"] + ([f"{smaller} (smaller)"] if smaller is not None else [])
            raise ShapeError(
                f"input shape {shape} is not valid for this U-Net: " + "; ".join(reasons)
                + ". Nearest valid input shapes: " + ", ".join(nearest)
            )
        return tuple(o for o in out if o is not None)  # all are, since no dimension gave a reason

    def nearest_valid_input_shapes(self, shape: Sequence[int]) -> tuple[Shape | None, Shape]:
        """The largest valid input shape <= ``shape`` (None if none) and the smallest >= ``shape``."""
        shape = _as_shape(shape, self.dims, "shape")
        below, above = zip(*(self._nearest_1d(s, d) for d, s in enumerate(shape)))
        return (None if any(b is None for b in below) else tuple(below)), tuple(above)

    def valid_input_shape(self, near: Sequence[int], mode: str = "nearest") -> Shape:
        """A valid input shape near ``near``: ``mode`` is ``"floor"``, ``"ceil"`` or ``"nearest"`` per dimension."""
        near = _as_shape(near, self.dims, "shape")
        out = []
        for d, s in enumerate(near):
            below, above = self._nearest_1d(s, d)
            if mode == "ceil" or below is None:
                if mode == "floor":
                    raise ShapeError(
                        f"no valid input size <= {s} in dimension {d}; the smallest is {above}"
                    )
                out.append(above)
            elif mode == "floor":
                out.append(below)
            elif mode == "nearest":
                out.append(below if s - below <= above - s else above)
            else:
                raise ValueError(f"mode must be 'floor', 'ceil' or 'nearest', not {mode!r}")
        return tuple(out)

    @property
    def min_input_shape(self) -> Shape:
        """The smallest valid input shape."""
        return tuple(self._min_valid_1d(d) for d in range(self.dims))

    @property
    def context(self) -> Shape:
        """``input - output`` in voxels; the same for every valid input shape."""
        smallest = self.min_input_shape
        return tuple(i - o for i, o in zip(smallest, self.output_shape(smallest)))

    def input_shape_for_output(self, output_shape: Sequence[int]) -> Shape:
        """The input shape that gives exactly ``output_shape``; a ``ShapeError`` names the nearest if none does."""
        out = _as_shape(output_shape, self.dims, "output shape")
        candidate = tuple(o + c for o, c in zip(out, self.context))
        if not self.is_valid(candidate):
            smaller, larger = self.nearest_valid_input_shapes(candidate)
            options = [larger] + ([smaller] if smaller is not None else [])
            raise ShapeError(
                f"no input shape gives output shape {out}; nearest valid outputs: "
                + ", ".join(str(self.output_shape(s)) for s in options)
            )
        return candidate

    def level_shapes(self, input_shape: Sequence[int]) -> list[dict[str, Shape]]:
        """Feature-map shapes per level (``down`` after the convolutions, ``up`` after them), for inspection."""
        self.output_shape(input_shape)
        shape = list(_as_shape(input_shape, self.dims, "input shape"))
        levels: list[dict[str, Shape]] = []
        for level in range(self.levels + 1):
            for ks in self.kernel_size_down[level]:
                shape = [s - k + 1 for s, k in zip(shape, ks)]
            levels.append({"down": tuple(shape)})
            if level < self.levels:
                shape = [s // f for s, f in zip(shape, self.downsample_factors[level])]
        for level in reversed(range(self.levels)):
            shape = [s * f for s, f in zip(shape, self.downsample_factors[level])]
            for ks in self.kernel_size_up[level]:
                shape = [s - k + 1 for s, k in zip(shape, ks)]
            levels[level]["up"] = tuple(shape)
        return levels
