"""``SimpleAugment``: random mirroring and transposition of all arrays and graphs."""

from __future__ import annotations

import itertools
import logging

import numpy as np

from ..array import ArrayKey
from ..batch import BatchRequest
from ..errors import SpecError
from ..geometry import Coordinate
from ..transform import SpatialTransform
from ._spatial_augment import SpatialAugment

logger = logging.getLogger(__name__)


class SimpleAugment(SpatialAugment):
    """Randomly mirror and transpose all arrays and graphs in a batch, the same way for all of them
    (a graph node lands on the centre of the mirrored and transposed voxel it was the centre of).

    The mirrored and transposed ROIs are requested upstream, and the data is flipped and transposed
    back (as views, without copying or interpolating). Mirroring is about the centre of the
    request, transposition around it (both snapped to the grid of the least common multiple of the
    voxel sizes, so every array stays on its voxel grid).

    Only axes of equal voxel size (in every array) are transposed with each other: by default, the
    axes are grouped by voxel size and permuted within each group, so anisotropic EM data (voxel
    size ``(40, 4, 4)``) is transposed in x-y only. Naming axes of different voxel sizes in
    ``transpose_only`` is an error.

    Args:

        mirror_only (``list`` of ``int``, optional):

            If set, only mirror between the given axes. This is useful to exclude channels that have
            a set direction, like time.

        transpose_only (``list`` of ``int``, optional):

            If set, only transpose between the given axes. This is useful to limit the transpose to
            axes with the same resolution or to exclude non-spatial dimensions.

        mirror_probs (``list`` of ``float``, optional):

            If set, provides the probability for mirroring given axes. Default is 0.5 per axis. If
            given, must be given for every axis, i.e. ``[0, 1, 0]`` for 100% chance of mirroring axis
            1 and no others.

        transpose_probs (``dict`` of ``tuple`` -> ``float`` or ``list`` of ``float``, optional):

            The probability of transposing. If None, each transpose is equally likely. Can also be a
            dictionary of ``tuple`` -> ``float``, e.g. ``{(0, 1, 2): 0.5, (1, 0, 2): 0.5}`` for a 50%
            chance of transposing axes 0 and 1; options that violate ``transpose_only`` are dropped
            and the remaining ones reweighted. Can also be a list of ``float``, e.g.
            ``[0.3, 0.5, 0.7]``: each permutation is weighted by the product over axes of ``p`` for
            axes it moves and ``1 - p`` for axes it keeps.

        p (``float``, optional):

            Probability of applying the augmentation. Default is 1.0 (always apply).
    """

    def __init__(
        self,
        mirror_only: list[int] | None = None,
        transpose_only: list[int] | None = None,
        mirror_probs: list[float] | None = None,
        transpose_probs: list[float] | dict | None = None,
        p: float = 1.0,
    ):
        self.mirror_only = mirror_only
        self.transpose_only = transpose_only
        self.mirror_probs = mirror_probs
        self.transpose_probs = transpose_probs
        self.p = p

    def setup(self) -> None:
        total = self.spec.get_total_roi()
        if total is None:
            raise SpecError(f"SimpleAugment: upstream provides no spatial arrays ({sorted(self.spec)})")
        self.dims = total.dims
        dims = self.dims
        self.mirror_mask = [self.mirror_only is None or d in self.mirror_only for d in range(dims)]
        probs = [0.5] * dims if self.mirror_probs is None else list(self.mirror_probs)
        if len(probs) != dims:
            raise SpecError(f"SimpleAugment: mirror_probs {self.mirror_probs} must give one probability for each of the {dims} axes")
        self._mirror_probs = probs

        sizes = [s.voxel_size for s in self.spec.array_specs.values() if s.voxel_size is not None and not s.nonspatial]
        def equal(a: int, b: int) -> bool:
            return all(vs[a] == vs[b] for vs in sizes)

        candidates = list(range(dims)) if self.transpose_only is None else list(self.transpose_only)
        if any(d not in range(dims) for d in candidates):
            raise SpecError(f"SimpleAugment: transpose_only {self.transpose_only} names axes outside 0..{dims - 1}")
        if self.transpose_only is not None:
            for a, b in itertools.combinations(candidates, 2):
                if not equal(a, b):
                    raise SpecError(
                        f"SimpleAugment: transpose_only {self.transpose_only} would exchange axes {a} and {b}, which "
                        f"have different voxel sizes ({sorted(set(map(tuple, sizes)))}); transpose only axes of "
                        "equal voxel size"
                    )
        groups: list[list[int]] = []
        for d in candidates:
            for group in groups:
                if equal(group[0], d):
                    group.append(d)
                    break
            else:
                groups.append([d])
        self._groups = groups

        # permissible permutations (output axis k shows source axis perm[k]) and their weights
        self._permutations: list[tuple[int, ...]] | None = None
        self._weights: np.ndarray | None = None
        if self.transpose_probs is not None:
            allowed = {d: g for g in groups for d in g}

            def permissible(perm) -> bool:
                return all(i == j or (i in allowed and j in allowed[i]) for i, j in enumerate(perm))

            options: dict[tuple[int, ...], float] = {}
            if isinstance(self.transpose_probs, dict):
                for perm, w in self.transpose_probs.items():
                    if len(perm) != dims or sorted(perm) != list(range(dims)):
                        raise SpecError(f"SimpleAugment: {perm} in transpose_probs is not a permutation of {dims} axes")
                    if permissible(perm):
                        options[tuple(perm)] = float(w)
            else:
                if len(self.transpose_probs) != dims:
                    raise SpecError(f"SimpleAugment: transpose_probs {self.transpose_probs} must have one entry per axis ({dims})")
                for perm in itertools.permutations(range(dims)):
                    if not permissible(perm):
                        continue
                    w = 1.0
                    for i, (j, q) in enumerate(zip(perm, self.transpose_probs)):
                        w *= (1 - q) if i == j else q
                    if w > 0:
                        options[perm] = w
            if not options or sum(options.values()) <= 0:
                raise SpecError(f"SimpleAugment: no permissible transposition has positive probability in {self.transpose_probs}")
            self._permutations = list(options)
            weights = np.asarray(list(options.values()))
            self._weights = weights / weights.sum()

    def _draw(self, rng: np.random.Generator) -> tuple[list[bool], list[int]]:
        dims = self.dims
        mirror = [bool(self.mirror_mask[d] and rng.random() < self._mirror_probs[d]) for d in range(dims)]
        if self._permutations is not None:
            perm = list(self._permutations[rng.choice(len(self._permutations), p=self._weights)])
        else:
            perm = list(range(dims))
            for group in self._groups:
                for o, n in zip(group, rng.permutation(group)):
                    perm[o] = int(n)
        return mirror, perm

    def _draw_transform(
        self, request: BatchRequest, keys: list[ArrayKey], rng: np.random.Generator
    ) -> SpatialTransform | None:
        mirror, perm = self._draw(rng)
        logger.debug("SimpleAugment: mirror %s, transpose %s", mirror, perm)
        if not any(mirror) and perm == list(range(self.dims)):
            return None

        voxel_size, total = self._request_extent(request, keys)
        # transpose around the centre (on the lcm grid), mirror about the centre (twice of it on the grid)
        center = total.center - total.center % voxel_size
        twice_mirror = Coordinate(b + e for b, e in zip(total.begin, total.end))
        twice_mirror = twice_mirror - twice_mirror % voxel_size
        # output axis k shows source axis perm[k]; then mirror the source axes
        dims = self.dims
        matrix = np.zeros((dims, dims))
        for k in range(dims):
            matrix[perm[k], k] = 1.0
        flip = np.array([-1.0 if m else 1.0 for m in mirror])
        matrix = flip[:, None] * matrix
        c = np.asarray(center, dtype=np.float64)
        translation = np.where(flip < 0, np.asarray(twice_mirror, dtype=np.float64) - 2 * c, 0.0)
        return SpatialTransform(dims, matrix, c, translation)
