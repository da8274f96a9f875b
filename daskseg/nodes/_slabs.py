"""Tiling an array into slabs, for the nodes that work slab by slab (``slab`` arguments of
:class:`IntensityAugment` and :class:`BalanceLabels`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from ..errors import SpecError


def slab_slices(shape: tuple[int, ...], slab: Sequence[int], owner: str) -> Iterator[tuple[slice, ...]]:
    """The index tuples of the slabs of shape ``slab`` that tile an array of ``shape``.

    ``slab`` has one entry per axis; -1 stands for the whole axis. Slabs at the upper end of an
    axis are cut short where ``shape`` is not a multiple of the slab. ``owner`` (e.g.
    ``"IntensityAugment: raw"``) names node and array in errors.
    """
    if len(slab) != len(shape):
        raise SpecError(f"{owner}: slab {tuple(slab)} has {len(slab)} entries, but the array has {len(shape)} axes (shape {shape})")
    if any(s != -1 and s < 1 for s in slab):
        raise SpecError(f"{owner}: slab {tuple(slab)} must have positive entries (or -1 for a whole axis)")
    sizes = [m if s == -1 else s for m, s in zip(shape, slab)]
    for start in itertools.product(*(range(0, m, max(s, 1)) for m, s in zip(shape, sizes))):
        yield tuple(slice(b, b + s) for b, s in zip(start, sizes))
