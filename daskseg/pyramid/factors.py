"""Which levels a pyramid has: the downsampling factors from one level to the next.

The default rule (``default_factors``), as CREMI users expect: **halve every axis whose voxel size,
doubled, is still at most the coarsest voxel size; when no axis can (the voxels are isotropic
within a factor 2), halve all axes.** So anisotropic data is downsampled in-plane until it is about
isotropic, then in all axes::

    (40, 4, 4) -> (40, 8, 8) -> (40, 16, 16) -> (40, 32, 32) -> (80, 64, 64) -> (160, 128, 128)
    (8, 8, 8)  -> (16, 16, 16) -> ...

Levels are added until the level's shape fits into one chunk (``max_shape``) in every axis, or an
axis to be halved has a single voxel left, or ``max_levels`` is reached. Given factors
(``--factors``) replace the rule: one factor per axis for every level, or one per level.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import GeometryError
from ..geometry import Coordinate


def next_factor(voxel_size: Sequence[int]) -> Coordinate:
    """The default factor from a level of ``voxel_size`` to the next (the rule above)."""
    vs = Coordinate(voxel_size)
    coarsest = max(vs)
    factor = Coordinate(2 if 2 * v <= coarsest else 1 for v in vs)
    if all(f == 1 for f in factor):
        factor = Coordinate((2,) * vs.dims)
    return factor


def level_shape(shape: Sequence[int], factor: Sequence[int]) -> Coordinate:
    """The voxel shape of a level made from ``shape`` by ``factor`` (at least, ignoring grid alignment)."""
    return Coordinate(-(-int(s) // int(f)) for s, f in zip(shape, factor))


def default_factors(
    voxel_size: Sequence[int],
    shape: Sequence[int],
    max_shape: Sequence[int],
    max_levels: int | None = None,
) -> list[Coordinate]:
    """The factors of the levels below level 0 by the default rule.

    Args:
        voxel_size (Sequence[int]): level 0's voxel size (world units).
        shape (Sequence[int]): level 0's spatial shape (voxels).
        max_shape (Sequence[int]): stop once a level fits into this shape (usually one chunk).
        max_levels (int, optional): at most this many levels below level 0.

    Returns:
        list[Coordinate]: the factor from each level to the next (empty: level 0 alone).
    """
    vs, current = Coordinate(voxel_size), Coordinate(shape)
    factors: list[Coordinate] = []
    while max_levels is None or len(factors) < max_levels:
        if all(s <= m for s, m in zip(current, max_shape)):
            break
        factor = next_factor(vs)
        if any(f > 1 and s <= 1 for f, s in zip(factor, current)):
            break
        factors.append(factor)
        vs, current = vs * factor, level_shape(current, factor)
    return factors


def given_factors(
    factors: Sequence[Sequence[int]],
    voxel_size: Sequence[int],
    shape: Sequence[int],
    max_shape: Sequence[int],
    max_levels: int | None = None,
) -> list[Coordinate]:
    """Factors given by the user: one (used for every level, stopping as ``default_factors`` does) or
    one per level (exactly those levels, ``max_levels`` at most).

    Raises:
        GeometryError: a factor of another dimensionality than the data, or a number below 1, or
            a factor of 1 in every axis (a level equal to the one before).
    """
    dims = len(voxel_size)
    checked = []
    for f in factors:
        f = Coordinate(f)
        if f.dims != dims or any(v < 1 for v in f) or all(v == 1 for v in f):
            raise GeometryError(
                f"downsampling factors {tuple(f)} must be {dims} whole numbers of at least 1 (one per axis of voxel "
                f"size {tuple(voxel_size)}), at least one above 1, e.g. {','.join(['1'] + ['2'] * (dims - 1))}"
            )
        checked.append(f)
    if len(checked) > 1:
        return checked[:max_levels] if max_levels is not None else checked
    if not checked:
        return []
    (factor,) = checked
    current = Coordinate(shape)
    out: list[Coordinate] = []
    while max_levels is None or len(out) < max_levels:
        if all(s <= m for s, m in zip(current, max_shape)) or any(f > 1 and s <= 1 for f, s in zip(factor, current)):
            break
        out.append(factor)
        current = level_shape(current, factor)
    return out
