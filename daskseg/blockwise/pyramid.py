"""``pyramid``: the coarser resolution levels of an OME-Zarr image, blockwise on Dask.

``daskseg pyramid PATH`` (and ``--pyramid`` on ``daskseg predict`` / ``daskseg segment``) adds
levels ``s1, s2, ...`` to the image group ``PATH`` (``OUT.zarr/volumes/pred_affs``, whose level 0
is ``s0``), each listed in the group's ``multiscales`` with its scale and translation
(``daskseg.io.add_level``), so neuroglancer and napari load the level that fits the zoom.

The image's label images (``<image>/labels/<name>``, e.g. a sample's ground truth) get the same
levels, by the mode: OME-Zarr wants an image and its labels to have as many levels; naming a label
image of an image makes the pyramids of the whole family.

Each level is one ``BlockwiseTask`` on the ``Runner`` (``pyramid-s<k>-block-z-y-x`` on the
dashboard), run after the one before it, from which it is made:

- **geometry**: level ``k`` has voxel size ``v_k = v_{k-1} * f_k`` (the factors: see
  ``daskseg.pyramid.factors``) and covers level ``k-1``'s ROI snapped outwards to the world grid of
  ``v_k`` (multiples of ``v_k`` from the world origin). So every coarse voxel covers exactly ``f_k``
  voxels of the level before in world space, its offset is a multiple of its voxel size (funlib and
  daskseg require it), and the levels of images that overlap (raw and its affinities, cropped by the
  network's context) lie on one grid. A border voxel that reaches past the data is made of the
  voxels it has.
- **values**: the mean for intensities and affinities, the most frequent non-zero label for labels
  (``daskseg.pyramid.reduce``; chosen by ``daskseg.io.kinds``, or ``method=``).
- **blocks**: a block writes whole chunks of its level and reads the voxels they cover from the
  level before, so the levels do not depend on the block shape (tested). Finished blocks are
  recorded in the level's array directory: a rerun resumes, level by level; ``overwrite`` drops
  the existing levels and makes them again.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..cluster import ClientLike
from ..errors import BlockCancelledError, DatasetError, GeometryError
from ..geometry import Coordinate, Roi
from ..io import Dataset, add_level, open_dataset, read_image
from ..io.kinds import LABELS, array_kind
from ..pyramid import METHODS, default_factors, downsample, given_factors
from .done import lock_existing_record
from .grid import Block, BlockGrid, check_alignment
from .outputs import describe, open_input, write_unit
from .predict import DEFAULT_BLOCK_VOXELS, default_block_shape
from .runner import BlockwiseTask, Runner, RunResult

logger = logging.getLogger(__name__)


@dataclass
class PyramidResult:
    """What ``pyramid`` made.

    Attributes:
        image: the image group (``CONTAINER/NAME``).
        method: ``'mean'`` or ``'mode'`` (of the image; its label images always take the mode).
        images: the image and its label images, which get the same levels (as OME-Zarr wants).
        levels: per level below level 0 of each of ``images``: its image, dataset name, voxel size,
            offset, shape, factor and method.
        stages: the ``RunResult`` of each level's task.
        seconds: wall-clock time of all levels.
    """

    image: str
    method: str
    images: list[str] = field(default_factory=list)
    levels: list[dict[str, Any]] = field(default_factory=list)
    stages: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------
def downsample_block(
    block: Block, src: Dataset, dst: Dataset, factor: tuple[int, ...], method: str, *, cancel=None
) -> dict:
    """Write the coarse voxels of ``block`` (level ``k``) from the voxels of ``src`` (level ``k-1``)
    they cover (the per-block function)."""
    roi = block.write_roi
    src_roi = roi.intersect(src.roi)
    data = src.read(src_roi)
    before = (src_roi.begin - roi.begin) / src.voxel_size
    out = downsample(data, factor, method, before)
    if cancel is not None and cancel.is_set():
        raise BlockCancelledError(f"pyramid block {block.index} was stopped (time limit) before writing")
    dst.write(roi, out)
    return {"voxels_read": int(math.prod(data.shape[src.num_channel_dims :]))}


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------
def level_roi(roi: Roi, voxel_size: Sequence[int]) -> Roi:
    """The ROI of a level of ``voxel_size`` made from one covering ``roi``: snapped outwards to the
    world grid of ``voxel_size``."""
    return roi.snap_to_grid(voxel_size, mode="grow")


def _drop_levels(container: str, name: str) -> None:
    """Remove every level but level 0 of the image group ``name`` (arrays and ``multiscales`` entries)."""
    import zarr

    image = read_image(container, name)
    if image is None or len(image.levels) < 2:
        return
    group = zarr.open_group(os.path.join(container, name), mode="r+")
    for level in image.levels[1:]:
        with lock_existing_record(os.path.join(container, name, level.path)):
            if level.path in group:
                del group[level.path]
    attrs: dict[str, Any] = dict(group.attrs)
    ome: dict[str, Any] = dict(attrs["ome"])
    multiscale: dict[str, Any] = dict(ome["multiscales"][0])
    multiscale["datasets"] = multiscale["datasets"][:1]
    ome["multiscales"] = [multiscale, *ome["multiscales"][1:]]
    group.attrs.put({**attrs, "ome": ome})


def _existing_level(container: str, name: str, index: int, roi: Roi, vs: Coordinate, src: Dataset) -> Dataset | None:
    """Level ``index`` of the image if it is there and fits (voxel size, ROI, channels, dtype); None
    when it is not there. Raises ``DatasetError`` when it is there and does not fit."""
    image = read_image(container, name)
    if image is None or len(image.levels) <= index:
        return None
    level = image.levels[index]
    ds = open_dataset(container, f"{name}/{level.path}", mode="r+")
    if ds.voxel_size == vs and ds.roi == roi and ds.channel_shape == src.channel_shape and ds.dtype == src.dtype:
        return ds
    raise DatasetError(
        f"{container}/{name} has a level {level.path} of voxel size {tuple(ds.voxel_size)} over {ds.roi} ({ds.dtype}); "
        f"this pyramid wants voxel size {tuple(vs)} over {roi} ({src.dtype}) there. Pass overwrite=True "
        f"(--overwrite) to replace the levels, or give the factors they were made with (--factors)."
    )


def image_group(ds: Dataset) -> str:
    """The OME-Zarr image group ``ds`` is level 0 of (its name, or a redirect's target)."""
    if ds.format == "zarr":
        for group in (ds.name, ds.array_name.rpartition("/")[0]):
            image = read_image(ds.container, group)
            if image is not None and image.level_name(0) == ds.array_name:
                return group
    raise DatasetError(
        f"{ds.container}/{ds.name} is not an OME-Zarr image group: pyramids are written as the levels of one "
        f"(daskseg writes every Zarr output as one, e.g. OUT.zarr/volumes/pred_affs)"
    )


def image_family(container: str, group: str) -> list[str]:
    """The image ``group`` belongs to and that image's label images (``<image>/labels/<name>``), the
    image first: OME-Zarr wants an image and its labels to have the same number of levels."""
    parent, _, label = group.rpartition("/")
    root_name, _, labels_dir = parent.rpartition("/")
    if labels_dir == "labels" and parent:
        root = read_image(container, root_name)
        if root is not None and label in root.labels:
            group = root_name
    image = read_image(container, group)
    labels = [f"{group}/labels/{name}" for name in (image.labels if image is not None else ())]
    return [group, *(name for name in labels if read_image(container, name) is not None)]


def plan_pyramid(
    image: str | Dataset,
    *,
    factors: Sequence[Sequence[int]] | None = None,
    max_levels: int | None = None,
    method: str = "auto",
    block_shape: Sequence[int] | None = None,
    resume: bool = True,
    overwrite: bool = False,
) -> tuple[list[BlockwiseTask], PyramidResult]:
    """The levels of ``pyramid`` as ``BlockwiseTask``s (one per level, in order, the image's levels
    first, then those of its labels), the level arrays created (or reopened, when they fit). Touches
    no cluster; arguments as for ``pyramid``."""
    named = open_input(os.path.abspath(image) if isinstance(image, str) else image)
    container = named.container
    family = image_family(container, image_group(named))
    root = open_dataset(container, family[0])
    if method == "auto":
        method = "mode" if array_kind(root) == LABELS else "mean"
    if method not in METHODS:
        raise DatasetError(f"unknown downsampling method {method!r}: use 'auto' or one of {METHODS}")
    spatial = root.roi.shape / root.voxel_size
    chunks = Coordinate(root.chunk_shape[root.num_channel_dims :])
    if factors:
        level_factors = given_factors(factors, root.voxel_size, spatial, chunks, max_levels)
    else:
        level_factors = default_factors(root.voxel_size, spatial, chunks, max_levels)
    result = PyramidResult(f"{container}/{family[0]}", method, images=[f"{container}/{n}" for n in family])
    tasks: list[BlockwiseTask] = []
    for member in family:
        src = open_dataset(container, member)
        member_method = method if member == family[0] else "mode"  # a label image of the image
        if overwrite:
            _drop_levels(container, member)
        prefix = "pyramid" if member == family[0] else f"pyramid-{member.rpartition('/')[2]}"
        tasks += _plan_levels(src, member, level_factors, member_method, block_shape, resume, prefix, result)
    return tasks, result


def _plan_levels(
    src: Dataset,
    group: str,
    level_factors: Sequence[Coordinate],
    method: str,
    block_shape: Sequence[int] | None,
    resume: bool,
    prefix: str,
    result: PyramidResult,
) -> list[BlockwiseTask]:
    """The tasks of the levels of one image group, each made from the one before."""
    container = src.container
    tasks = []
    previous = src
    for index, factor in enumerate(level_factors, start=1):
        vs = previous.voxel_size * factor
        roi = level_roi(previous.roi, vs)
        dst = _existing_level(container, group, index, roi, vs, previous)
        created = dst is None
        if dst is None:
            level_name = add_level(container, group, vs, offset=roi.offset, shape=tuple(roi.shape / vs))
            dst = open_dataset(container, level_name, mode="r+")
        grid = _grid(dst, factor, block_shape)
        layout = {
            "grid": grid.layout(),
            "source": {"path": previous.array_name, **describe(previous)},
            "factor": list(factor),
            "method": method,
        }
        tasks.append(
            BlockwiseTask(
                f"{prefix}-s{index}",
                grid,
                downsample_block,
                args=(previous, dst, tuple(factor), method),
                record_dir=os.path.join(container, dst.array_name),
                layout=layout,
                resume=resume and not created,
                settings="segment",
            )
        )
        result.levels.append(
            {
                "image": f"{container}/{group}",
                "name": dst.array_name,
                "voxel_size": list(vs),
                "offset": list(roi.offset),
                "shape": list(dst.shape),
                "factor": list(factor),
                "method": method,
            }
        )
        logger.info("level %s: voxel size %s over %s, %r", dst.array_name, tuple(vs), roi, grid)
        previous = open_dataset(container, dst.array_name)
    return tasks


def _grid(dst: Dataset, factor: Coordinate, block_shape: Sequence[int] | None) -> BlockGrid:
    """Blocks of whole chunks of the level: about ``DEFAULT_BLOCK_VOXELS`` voxels read per block."""
    unit = write_unit(dst)
    vs = dst.voxel_size
    if block_shape is None:
        target = max(1, DEFAULT_BLOCK_VOXELS // math.prod(factor))
        block = default_block_shape(unit, dst.roi.shape / vs, vs, target)
    else:
        block = Coordinate(block_shape)
        if block.dims != vs.dims or any(b < 1 for b in block):
            raise GeometryError(f"block shape {tuple(block_shape)} must be {vs.dims} positive numbers of voxels")
    grid = BlockGrid(dst.roi, block, vs)
    check_alignment(grid, dst.roi, unit, what=f"level {dst.array_name}")
    return grid


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def run_pyramid(tasks: list[BlockwiseTask], result: PyramidResult, runner: Runner) -> PyramidResult:
    """Run the levels ``plan_pyramid`` made, in order, on ``runner``; fills ``result.stages``."""
    t0 = time.perf_counter()
    for task in tasks:
        result.stages.append(runner.run(task))
    result.seconds = time.perf_counter() - t0
    logger.info("pyramid of %s: %d levels in %.1f s", result.image, len(tasks), result.seconds)
    return result


def pyramid(
    image: str | Dataset,
    *,
    factors: Sequence[Sequence[int]] | None = None,
    max_levels: int | None = None,
    method: str = "auto",
    block_shape: Sequence[int] | None = None,
    resume: bool = True,
    overwrite: bool = False,
    runner: Runner | None = None,
    client: ClientLike = None,
    **runner_options: Any,
) -> PyramidResult:
    """Write the coarser levels of the OME-Zarr image ``image`` blockwise on a Dask cluster, resumably.

    Args:
        image (str | Dataset): the image group, ``'OUT.zarr/volumes/pred_affs'``.
        factors (Sequence[Sequence[int]], optional): one factor per axis, used for every level, or one
            per level; default the rule of ``daskseg.pyramid.factors`` (in-plane until about
            isotropic, then all axes).
        max_levels (int, optional): at most this many levels below level 0; default until a level
            fits into one chunk.
        method (str): ``'auto'`` (``'mode'`` for labels, else ``'mean'``), ``'mean'`` or ``'mode'``.
        block_shape (Sequence[int], optional): voxels of a level per block (a multiple of its
            chunks); default about 2M voxels read per block.
        resume (bool): keep the blocks an earlier run of the same levels finished.
        overwrite (bool): replace existing levels (e.g. made with other factors).
        client (distributed.Client | str, optional): the cluster (or a scheduler address); default
            ``daskseg.cluster.get_client``.
        runner (Runner, optional): the runner to use; else one from ``client`` and ``runner_options``
            (``scheduler``, ``n_workers``, ``max_in_flight``, ``retries``, ``block_timeout``, ``progress``).

    Returns:
        PyramidResult

    Raises:
        DatasetError: not an OME-Zarr image group; existing levels that do not fit (without overwrite).
        GeometryError: bad factors or block shape.
        BlocksFailedError: blocks that failed after all retries (the others are recorded).
    """
    tasks, result = plan_pyramid(
        image,
        factors=factors,
        max_levels=max_levels,
        method=method,
        block_shape=block_shape,
        resume=resume,
        overwrite=overwrite,
    )
    if runner is not None:
        return run_pyramid(tasks, result, runner)
    with Runner(client, **runner_options) as own:
        return run_pyramid(tasks, result, own)


__all__ = ["PyramidResult", "downsample_block", "plan_pyramid", "pyramid", "run_pyramid"]
