"""``daskseg demo``: the whole tutorial on a laptop, end to end, on synthetic CREMI-like data.

Synthesise three training samples and a held-out one, write the network configs, train a small
U-Net for a few minutes (batches from Dask workers, the step on this machine's CPU or GPU),
predict the held-out volume blockwise on the same LocalCluster, segment it blockwise next to the
prediction and score it blockwise (``daskseg segment`` and ``daskseg evaluate``), and write a
report: affinity accuracy/F1 against ground truth next to the best threshold on raw intensities,
VOI and adapted Rand of the segmentation (blockwise, and the same job in one block) next to the
classical baseline's (:mod:`daskseg.segment.baseline`), the loss curve and one section as PNGs.
The data is the ``cremi-like`` preset (``DemoSettings.preset``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cluster import ClientLike
from .errors import NetConfigError
from .geometry import Coordinate
from .io import open_dataset
from .jax.checkpoint import checkpoint_name, log_name
from .models.config import UNetConfig, create_networks
from .report import best_threshold_scores, binary_scores, gt_affinities, plot_section, raw_affinities
from .synth import DEFAULT_PRESET, LABELS_DATASET, RAW_DATASET, write_cremi_samples, write_sample
from .training import TrainingJob, run_training, tutorial_augmentations

logger = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    """Sizes of the demo: small enough for a few minutes on a 2-core laptop, large enough to learn."""

    train_shape: tuple[int, int, int] = (48, 256, 256)
    test_shape: tuple[int, int, int] = (44, 256, 256)
    train_input: tuple[int, int, int] = (28, 108, 108)
    predict_input: tuple[int, int, int] = (28, 148, 148)
    num_fmaps: int = 8
    fmap_inc_factor: int = 2
    downsample_factors: tuple = ((1, 2, 2), (1, 2, 2))
    learning_rate: float = 1e-3
    iterations: int = 300
    merge_threshold: float = 0.5
    workers: int = 2
    seed: int = 0
    preset: str = DEFAULT_PRESET
    #: the name of the recipe (``RECIPES``) that set ``network_options`` and ``segment_method``
    recipe: str = "tutorial"
    #: further arguments of ``create_networks`` (a recipe: ``{"affinity_neighborhood": "long-range"}``)
    network_options: dict[str, Any] = field(default_factory=dict)
    #: ``daskseg segment``'s method for the held-out volume (``"mws"`` for long-range affinities)
    segment_method: str = "watershed"
    #: stop training after this many seconds (compilation included) even before ``iterations``
    train_seconds: float | None = None
    #: with another recipe than the tutorial's, also train the tutorial's as long and report both
    compare_tutorial: bool = False


#: Network recipes: ``DemoSettings`` fields per name. ``tutorial``: nearest-neighbour affinities,
#: watershed + agglomeration; ``long-range``: 8 affinity channels (``NEIGHBORHOODS['long-range']``),
#: mutex watershed; ``mtlsd``: affinities and local shape descriptors (``create_networks(lsds=True)``),
#: on wider training samples: the descriptors of a batch's output need the labels 3 sigma (240 nm,
#: 60 voxels) around it, and a rotated batch of those labels needs up to 420 voxels in-plane.
RECIPES: dict[str, dict[str, Any]] = {
    "tutorial": {"network_options": {}, "segment_method": "watershed"},
    "long-range": {"network_options": {"affinity_neighborhood": "long-range"}, "segment_method": "mws"},
    "mtlsd": {"network_options": {"lsds": True}, "segment_method": "watershed", "train_shape": (48, 448, 448)},
}


def recipe_problem(name: str) -> str | None:
    """Why the recipe ``name`` cannot run with this daskseg (``None``: it can)."""
    import inspect

    if name not in RECIPES:
        return f"unknown recipe {name!r}; recipes are {sorted(RECIPES)}"
    known = set(inspect.signature(create_networks).parameters) | {f.name for f in dataclasses.fields(UNetConfig)}
    missing = sorted(set(RECIPES[name]["network_options"]) - known)
    if missing:
        return (f"the {name} recipe needs create_networks({', '.join(missing)}=...), which this daskseg does not "
                f"have yet (`daskseg net create --{missing[0]}`)")
    return None


def with_recipe(settings: DemoSettings, name: str) -> DemoSettings:
    """A copy of ``settings`` that trains and segments by the recipe ``name`` (``RECIPES``).

    Raises:
        NetConfigError: an unknown recipe, or one whose network this daskseg cannot make.
    """
    problem = recipe_problem(name)
    if problem:
        raise NetConfigError(problem)
    return dataclasses.replace(settings, recipe=name, **RECIPES[name])


@dataclass
class TrainedNetwork:
    """What ``train_network`` leaves: the prediction network's config, the checkpoint, the run."""

    test_config: str
    checkpoint: str
    iteration: int
    last_loss: float | None
    job: TrainingJob
    seconds: float


def train_network(
    out_dir: str,
    samples: list[str],
    s: DemoSettings,
    client,
    on_iteration: Callable[[int, float], None] | None = None,
) -> TrainedNetwork:
    """Write the demo's network configs into ``out_dir/nets`` and train them on ``samples`` (the
    tutorial's pipeline, ``GrowBoundary`` left out) into ``out_dir/checkpoints``, for
    ``s.iterations`` or ``s.train_seconds``, whichever ends first."""
    nets = os.path.join(out_dir, "nets")
    optimizer = {"name": "adam", "learning_rate": s.learning_rate, "b1": 0.95, "b2": 0.999, "eps": 1e-8}
    train_net, test_net = create_networks(
        nets,
        train_input_shape=s.train_input,
        predict_input_shape=s.predict_input,
        num_fmaps=s.num_fmaps,
        fmap_inc_factor=s.fmap_inc_factor,
        downsample_factors=s.downsample_factors,
        optimizer=optimizer,
        **s.network_options,
    )
    augment = tutorial_augmentations()
    # the report scores affinities against the labels' own boundaries; grown ones would be thicker
    augment["grow_boundary"] = None
    job = TrainingJob(
        samples=samples,
        network=os.path.join(nets, f"{train_net.name}_config.json"),
        iterations=s.iterations,
        checkpoint_basename=os.path.join(out_dir, "checkpoints", "train_net"),
        save_every=max(1, s.iterations // 3),
        snapshot_every=max(1, s.iterations // 2),
        snapshot_dir=os.path.join(out_dir, "snapshots"),
        profiling_every=max(1, s.iterations // 3),
        cache_size=4 * s.workers,
        num_workers=s.workers,
        seed=s.seed,
        augment=augment,
    )
    t0 = time.perf_counter()
    iteration, last_loss = run_training(job, client=client, on_iteration=on_iteration, max_seconds=s.train_seconds)
    return TrainedNetwork(os.path.join(nets, f"{test_net.name}_config.json"),
                          checkpoint_name(job.checkpoint_basename, iteration), iteration, last_loss, job,
                          time.perf_counter() - t0)


def predict_held_out(trained: TrainedNetwork, test_path: str, out: str, client):
    """``daskseg predict`` of the held-out sample's largest valid output ROI into ``out``
    (blocks of the network's output shape); returns the ``PredictResult``."""
    from .blockwise import predict
    from .models.config import load_net_config

    test_net = load_net_config(trained.test_config)
    # the largest valid output ROI: the raw ROI shrunk by half the context on each side (the
    # tutorial's grow(-context, -context) would throw away a whole context per side)
    raw_ds = open_dataset(test_path, RAW_DATASET)
    context = Coordinate(test_net.context) * raw_ds.voxel_size
    neg = (Coordinate(test_net.context) // 2) * raw_ds.voxel_size
    return predict(trained.test_config, trained.checkpoint, raw=f"{test_path}/{RAW_DATASET}", out=out,
                   roi=raw_ds.roi.grow(-neg, -(context - neg)), block_shape=test_net.output_shape, client=client,
                   progress=False)


def segment_held_out(pred_affs: str, out: str, s: DemoSettings, client, block_shape=None):
    """``daskseg segment`` of ``pred_affs`` into ``out`` with the settings' method and merge
    threshold, in 2 x 2 x 2 blocks by default (faces to merge across); returns the ``SegmentResult``."""
    from .blockwise import segment

    if block_shape is None:
        container, _, name = pred_affs.partition(".zarr/")
        affs = open_dataset(container + ".zarr", name)
        shape = affs.roi.shape / affs.voxel_size
        block_shape = tuple(-(-int(n) // 2) for n in shape)  # 2 x 2 x 2 blocks: faces to merge across
    return segment(pred_affs, out, [s.merge_threshold], method=s.segment_method, block_shape=block_shape,
                   client=client, overwrite=True, progress=False)


def run_demo(
    out_dir: str | os.PathLike,
    settings: DemoSettings | None = None,
    client: ClientLike = None,
    on_iteration: Callable[[int, float], None] | None = None,
) -> dict:
    """Run the demo into ``out_dir``; returns the report's numbers (also in ``report.json``)."""
    from .blockwise import evaluate
    from .blockwise.segmentation.job import MWS_DEFAULTS
    from .cluster import client_session, dashboard_link
    from .jax.loss_plot import plot_loss
    from .models.config import load_net_config
    from .segment import NEAREST_NEIGHBORHOOD, affinities_to_segmentation, cremi_scores, mutex_watershed
    from .segment.baseline import best_threshold_segmentation

    s = settings or DemoSettings()
    out_dir = os.path.abspath(str(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    data_dir = os.path.join(out_dir, "data")
    samples = write_cremi_samples(
        data_dir, s.train_shape, seed=s.seed, extension=".zarr", overwrite=True, preset=s.preset
    )
    test_path = os.path.join(data_dir, "test_sample.zarr")
    write_sample(test_path, s.test_shape, seed=s.seed + 100, overwrite=True, preset=s.preset)
    timings["synthesise"] = time.perf_counter() - t0

    with client_session(client, n_workers=s.workers) as client:
        logger.info("demo: Dask dashboard at %s", dashboard_link(client))
        trained = train_network(out_dir, samples, s, client, on_iteration)
        iteration, last_loss, job = trained.iteration, trained.last_loss, trained.job
        timings["train"] = trained.seconds

        t0 = time.perf_counter()
        result = predict_held_out(trained, test_path, os.path.join(out_dir, "prediction.zarr", "volumes", "pred_affs"),
                                  client)
        timings["predict"] = time.perf_counter() - t0
        raw_ds = open_dataset(test_path, RAW_DATASET)

        t0 = time.perf_counter()
        prediction = os.path.join(out_dir, "prediction.zarr")
        pred_affs = f"{prediction}/volumes/pred_affs"
        labels_path = f"{test_path}/{LABELS_DATASET}"
        shape = open_dataset(prediction, "volumes/pred_affs").roi.shape / raw_ds.voxel_size
        seg_run = segment_held_out(pred_affs, f"{prediction}/volumes/segmentation", s, client)
        timings["segment"] = time.perf_counter() - t0
        seg_path = seg_run.outputs[s.merge_threshold]
        blockwise_scores = evaluate(seg_path, labels_path, client=client, progress=False).scores()
        # the same job in one block: what the blocks change
        whole_run = segment_held_out(pred_affs, f"{prediction}/one_block/segmentation", s, client,
                                     block_shape=tuple(int(n) for n in shape))
        whole_path = whole_run.outputs[s.merge_threshold]
        whole_scores = evaluate(whole_path, labels_path, client=client, progress=False).scores()
        blocks_vs_whole = evaluate(seg_path, whole_path, client=client, progress=False).scores()
        tutorial = None
        if s.compare_tutorial and s.recipe != "tutorial":
            t0 = time.perf_counter()
            tutorial = compare_with_tutorial(out_dir, samples, test_path, s, client)
            timings["tutorial_recipe"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pred_ds = open_dataset(os.path.join(out_dir, "prediction.zarr"), "volumes/pred_affs")
    roi = pred_ds.roi
    neighborhood = load_net_config(trained.test_config).neighborhood
    all_pred = pred_ds.read(roi)
    # the scores and the section compare the nearest-neighbour channels with the labels'
    pred = all_pred[[neighborhood.index(o) for o in NEAREST_NEIGHBORHOOD]]
    raw = open_dataset(test_path, RAW_DATASET).read(roi)
    labels_ds = open_dataset(test_path, LABELS_DATASET)
    # ground-truth affinities need the neighbours just before the ROI (the offsets point backwards)
    grown = roi.grow(labels_ds.voxel_size, 0).intersect(labels_ds.roi)
    inner = tuple(slice(g, None) for g in (roi.begin - grown.begin) / labels_ds.voxel_size)
    labels_grown = labels_ds.read(grown)
    gt = gt_affinities(labels_grown)[(slice(None),) + inner]
    labels = labels_grown[inner]

    network_scores = binary_scores(pred > 0.5, gt)
    baseline_threshold, baseline_scores = best_threshold_scores(raw_affinities(raw), gt)
    if s.segment_method == "mws":
        segmentation = mutex_watershed(all_pred, neighborhood, min_size=int(MWS_DEFAULTS["min_size"]))
    else:
        segmentation = affinities_to_segmentation(pred, voxel_size=tuple(pred_ds.voxel_size),
                                                  merge_threshold=s.merge_threshold)
    # the classical baseline: smoothed raw thresholded, components, nearest fill, best threshold
    baseline_seg_threshold, _, baseline_seg_scores = best_threshold_segmentation(
        raw, labels, voxel_size=tuple(pred_ds.voxel_size)
    )
    seg_scores = cremi_scores(segmentation, labels)
    timings["evaluate"] = time.perf_counter() - t0

    loss_png = plot_loss(log_name(job.checkpoint_basename), os.path.join(out_dir, "loss.png"))
    seg_container, _, seg_name = seg_path.partition(".zarr/")
    section_png = plot_section(raw, gt, pred, os.path.join(out_dir, "section.png"), labels=labels,
                               segmentation=open_dataset(seg_container + ".zarr", seg_name).read(roi),
                               title=f"held-out sample, iteration {iteration}")
    numbers = {
        "iterations": iteration,
        "last_loss": last_loss,
        "network_affinities": network_scores,
        "raw_threshold_affinities": {"threshold": baseline_threshold, **baseline_scores},
        "network_segmentation": blockwise_scores,
        "network_segmentation_one_block": whole_scores,
        "network_segmentation_in_memory": seg_scores,
        "blockwise_vs_one_block": {"voi": blocks_vs_whole["voi"], "blocks": int(np.prod(seg_run.grid_shape))},
        "segmentation": {"output": seg_path, "fragments": seg_run.fragments, "graph": seg_run.graph_dir},
        "baseline_segmentation": {"threshold": baseline_seg_threshold, **baseline_seg_scores},
        "preset": s.preset,
        "recipe": {"name": s.recipe, "segment_method": s.segment_method, "neighborhood": [list(o) for o in neighborhood]},
        "prediction": {"blocks": result.num_blocks, "voxels_per_second": result.voxels_per_second,
                       "output": result.output, "roi": str(result.roi)},
        **({"tutorial_recipe": tutorial} if tutorial is not None else {}),
        "seconds": timings,
        "files": {"loss_curve": loss_png, "section": section_png},
    }
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(numbers, f, indent=2, default=float)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(render_report(numbers))
    return numbers


def compare_with_tutorial(
    out_dir: str, samples: list[str], test_path: str, s: DemoSettings, client: ClientLike
) -> dict:
    """Train the tutorial recipe with the same settings into ``out_dir/tutorial_recipe``, predict,
    segment and evaluate the held-out volume as the demo's own recipe; returns its iterations and scores."""
    from .blockwise import evaluate

    tutorial = with_recipe(dataclasses.replace(s, compare_tutorial=False), "tutorial")
    recipe_dir = os.path.join(out_dir, "tutorial_recipe")
    trained = train_network(recipe_dir, samples, tutorial, client)
    prediction = os.path.join(recipe_dir, "prediction.zarr")
    predict_held_out(trained, test_path, os.path.join(prediction, "volumes", "pred_affs"), client)
    seg = segment_held_out(f"{prediction}/volumes/pred_affs", f"{prediction}/volumes/segmentation", tutorial, client)
    scores = evaluate(seg.outputs[s.merge_threshold], f"{test_path}/{LABELS_DATASET}", client=client,
                      progress=False).scores()
    return {"iterations": trained.iteration, "train_seconds": trained.seconds, "segmentation": scores}


def render_report(n: dict) -> str:
    """The report as Markdown."""
    net, base = n["network_affinities"], n["raw_threshold_affinities"]
    seg, bseg = n["network_segmentation"], n["baseline_segmentation"]
    one, mem = n["network_segmentation_one_block"], n["network_segmentation_in_memory"]
    rows = "\n".join(
        f"| {name} | {net[name]:.3f} | {base[name]:.3f} |" for name in ("accuracy", "precision", "recall", "f1", "boundary_f1", "macro_f1")
    )
    seg_rows = "\n".join(
        f"| {name} | {seg[name]:.3f} | {one[name]:.3f} | {mem[name]:.3f} | {bseg[name]:.3f} |"
        for name in ("voi_split", "voi_merge", "voi", "adapted_rand")
    )
    t = n["seconds"]
    recipe = n["recipe"]
    method = ("mutex watershed on every channel" if recipe["segment_method"] == "mws" else
              "watershed + agglomeration" if recipe["segment_method"] == "watershed" else recipe["segment_method"])
    compare = ""
    if "tutorial_recipe" in n:
        tut = n["tutorial_recipe"]
        compare_rows = "\n".join(
            f"| {name} | {seg[name]:.3f} | {tut['segmentation'][name]:.3f} | "
            f"{seg[name] / tut['segmentation'][name] if tut['segmentation'][name] else float('nan'):.2f} |"
            for name in ("voi_split", "voi_merge", "voi", "adapted_rand")
        )
        compare = f"""
## The `{recipe['name']}` recipe against the tutorial's

The tutorial recipe (nearest-neighbour affinities, watershed + agglomeration) trained with the same
settings ({tut['iterations']} iterations in {tut['train_seconds']:.0f} s against {n['iterations']} in
{t['train']:.0f} s), predicted, segmented in the same blocks and scored by `daskseg evaluate`:

| score | {recipe['name']} | tutorial | ratio |
|---|---|---|---|
{compare_rows}
"""
    return f"""# daskseg demo report

Recipe: `{recipe['name']}` ({len(recipe['neighborhood'])} affinity channels, segmented by {method}).
Data: the `{n['preset']}` synthetic preset. Trained {n['iterations']} iterations (last loss {n['last_loss']:.4f}); predicted the held-out volume
in {n['prediction']['blocks']} blocks ({n['prediction']['voxels_per_second']:.0f} voxels/s) into
`{n['prediction']['output']}`.

## Affinities on the held-out volume (ground truth from its labels)

`f1` scores the connected edges, `boundary_f1` the cut ones (the boundaries), `macro_f1` their mean.

| score | network (threshold 0.5) | raw intensities (best threshold {base['threshold']:.2f}) |
|---|---|---|
{rows}

## Segmentation ({method}), CREMI scores (lower is better)

`daskseg segment` wrote `{n['segmentation']['output']}` in {n['blockwise_vs_one_block']['blocks']} blocks,
scored by `daskseg evaluate`; the same job in one block differs from it by VOI
{n['blockwise_vs_one_block']['voi']:.3f}. "In memory" is the same method on the whole array
(`affinities_to_segmentation`, which fills the boundary voxels after merging, or `mutex_watershed`).
The classical baseline smooths the raw in-plane, thresholds it (best of a sweep: {bseg['threshold']:.2f}),
labels the 3-D connected components, drops the small ones and gives every other voxel to the
nearest component (`daskseg.segment.baseline`).

| score | network, blockwise | network, one block | network, in memory | classical baseline |
|---|---|---|---|---|
{seg_rows}

{compare}
![loss curve](loss.png)

![raw, ground-truth and predicted affinities, ground truth and segmentation](section.png)

Time: synthesise {t['synthesise']:.0f} s, train {t['train']:.0f} s, predict {t['predict']:.0f} s,
segment {t['segment']:.0f} s, evaluate {t['evaluate']:.0f} s.
"""
