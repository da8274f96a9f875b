"""The tutorial's training job from a YAML file: samples, network, augmentations, iterations.

``load_job`` reads and checks the file; ``build_training_pipeline`` assembles the gunpowder
tutorial's pipeline (sources → Normalize → RandomLocation → RandomProvider → augmentations →
labels → PreCache on Dask → ``gp.jax.Train`` → Snapshot → PrintProfilingStats);
``run_training`` requests batches until the iteration count is reached, resuming from the newest
checkpoint. JAX is imported only when the Train node is built.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from .array import ArrayKey
from .batch import BatchRequest
from .errors import DaskSegError
from .geometry import Coordinate
from .io import container_format, open_dataset
from .models.config import NetConfig, load_net_config
from .pipeline import Pipeline, build

logger = logging.getLogger(__name__)


class TrainingConfigError(DaskSegError, ValueError):
    """The training YAML is missing a field, has an unknown one, or names data that does not fit."""


def tutorial_augmentations() -> dict[str, dict[str, Any]]:
    """The gunpowder CREMI tutorial's augmentation arguments."""
    return {
        "elastic": {
            "control_point_spacing": [4, 40, 40],
            "jitter_sigma": [0, 2, 2],
            "rotation_interval": [0, math.pi / 2.0],
            "prob_slip": 0.05,
            "prob_shift": 0.05,
            "max_misalign": 25,
        },
        "simple": {"transpose_only": [1, 2]},
        "intensity": {"scale_min": 0.9, "scale_max": 1.1, "shift_min": -0.1, "shift_max": 0.1, "z_section_wise": True},
        "grow_boundary": {"steps": 3, "only_xy": True},
    }


@dataclass
class TrainingJob:
    """Everything ``daskseg train`` needs; relative paths are relative to the YAML file.

    Args:
        samples: containers (.zarr or .hdf) with ``raw_dataset`` and ``labels_dataset``.
        network: the training network's JSON config (``daskseg net create``).
        iterations: train until this iteration (a resumed run continues towards it).
        checkpoint_basename: checkpoints are ``{basename}_checkpoint_{iteration}``.
        augment: per-node arguments; a node set to ``null`` is left out. Default: the tutorial's.
        cache_size, num_workers: PreCache's batches in flight and Dask workers of a LocalCluster.
        snapshot_every: save a snapshot every N iterations (0: never).
        seed: the seed of the batch sequence (a re-run draws the same batches).
        trust_pickle: resume from a pickled checkpoint (gunpowder's JAX format); a pickle can run
            arbitrary code when loaded, so only for files you trust.
    """

    samples: list[str]
    network: str
    iterations: int = 1000
    raw_dataset: str = "volumes/raw"
    labels_dataset: str = "volumes/labels/neuron_ids"
    checkpoint_basename: str = "checkpoints/train_net"
    save_every: int = 500
    log_every: int = 1
    snapshot_every: int = 100
    snapshot_dir: str = "snapshots"
    profiling_every: int = 100
    cache_size: int = 10
    num_workers: int = 2
    seed: int = 0
    trust_pickle: bool = False
    neighborhood: list[list[int]] = field(default_factory=lambda: [[-1, 0, 0], [0, -1, 0], [0, 0, -1]])
    augment: dict[str, dict[str, Any] | None] = field(default_factory=tutorial_augmentations)

    def __post_init__(self):
        if not self.samples:
            raise TrainingConfigError("a training job needs at least one sample under `samples:`")
        if self.iterations < 1:
            raise TrainingConfigError(f"iterations must be positive, got {self.iterations}")
        unknown = set(self.augment) - set(tutorial_augmentations())
        if unknown:
            raise TrainingConfigError(
                f"unknown augmentations {sorted(unknown)}; known: {sorted(tutorial_augmentations())}"
            )

    def resolve_paths(self, base_dir: str) -> "TrainingJob":
        """A copy with relative paths made relative to ``base_dir``."""

        def resolve(p: str) -> str:
            return p if os.path.isabs(p) else os.path.normpath(os.path.join(base_dir, p))

        return dataclasses.replace(
            self,
            samples=[resolve(s) for s in self.samples],
            network=resolve(self.network),
            checkpoint_basename=resolve(self.checkpoint_basename),
            snapshot_dir=resolve(self.snapshot_dir),
        )


def load_job(path: str | os.PathLike) -> TrainingJob:
    """Read a training YAML; unknown or missing fields raise a ``TrainingConfigError`` naming them."""
    path = str(path)
    if not os.path.exists(path):
        raise TrainingConfigError(f"training config {path!r} does not exist")
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    names = {f.name for f in dataclasses.fields(TrainingJob)}
    unknown = set(doc) - names
    if unknown:
        raise TrainingConfigError(f"{path}: unknown fields {sorted(unknown)}; fields are {sorted(names)}")
    missing = {"samples", "network"} - set(doc)
    if missing:
        raise TrainingConfigError(f"{path}: missing fields {sorted(missing)}")
    augment = tutorial_augmentations()
    augment.update(doc.pop("augment", None) or {})
    return TrainingJob(augment=augment, **doc).resolve_paths(os.path.dirname(os.path.abspath(path)))


@dataclass
class TrainingPipeline:
    """The assembled pipeline, the request that drives it and its Train node."""

    pipeline: Pipeline
    request: BatchRequest
    train: Any
    keys: dict[str, ArrayKey]


def _source(path: str, datasets: dict):
    from . import nodes

    cls = nodes.Hdf5Source if container_format(path) == "hdf5" else nodes.ZarrSource
    return cls(path, datasets)


def check_samples(job: TrainingJob) -> Coordinate:
    """Open every sample's raw and labels; their voxel sizes must agree. Returns the voxel size."""
    voxel_size = None
    for sample in job.samples:
        raw = open_dataset(sample, job.raw_dataset)
        labels = open_dataset(sample, job.labels_dataset)
        if raw.voxel_size != labels.voxel_size:
            raise TrainingConfigError(
                f"{sample}: raw has voxel size {raw.voxel_size} but labels have {labels.voxel_size}"
            )
        if voxel_size is not None and raw.voxel_size != voxel_size:
            raise TrainingConfigError(f"{sample}: voxel size {raw.voxel_size} differs from the other samples' {voxel_size}")
        voxel_size = raw.voxel_size
    return voxel_size


def check_job(job: TrainingJob) -> tuple[NetConfig, Coordinate]:
    """Everything that can be checked before a cluster starts: the network config and the samples.

    Returns the network config and the samples' voxel size.

    Raises:
        NetConfigError, ShapeError: the network config (``job.network``) is unusable.
        DatasetError, TrainingConfigError: a sample is missing, unreadable, or does not fit the others.
    """
    net = load_net_config(job.network)
    voxel_size = check_samples(job)
    return net, voxel_size


def build_training_pipeline(job: TrainingJob, client=None) -> TrainingPipeline:
    """The tutorial's training pipeline for ``job`` (PreCache on ``client``'s cluster)."""
    from . import nodes
    from .jax import Train

    net, voxel_size = check_job(job)
    keys = {
        name: ArrayKey(name.upper())
        for name in ("raw", "labels", "gt_affs", "loss_weights", "pred_affs", "pred_affs_gradients")
    }
    raw, labels, gt_affs, weights = keys["raw"], keys["labels"], keys["gt_affs"], keys["loss_weights"]
    input_size = Coordinate(net.input_shape) * voxel_size
    output_size = Coordinate(net.output_shape) * voxel_size

    request = BatchRequest()
    request.add(raw, input_size)
    request.add(gt_affs, output_size)
    request.add(weights, output_size)
    snapshot_request = BatchRequest()
    snapshot_request[keys["pred_affs"]] = request[gt_affs]
    snapshot_request[keys["pred_affs_gradients"]] = request[gt_affs]

    datasets = {raw: job.raw_dataset, labels: job.labels_dataset}
    pipeline = tuple(_source(s, datasets) + nodes.Normalize(raw) + nodes.RandomLocation() for s in job.samples)
    pipeline = pipeline + nodes.RandomProvider()
    aug = job.augment
    if aug.get("elastic") is not None:
        pipeline = pipeline + nodes.ElasticAugment(**aug["elastic"])
    if aug.get("simple") is not None:
        pipeline = pipeline + nodes.SimpleAugment(**aug["simple"])
    if aug.get("intensity") is not None:
        pipeline = pipeline + nodes.IntensityAugment(raw, **aug["intensity"])
    if aug.get("grow_boundary") is not None:
        pipeline = pipeline + nodes.GrowBoundary(labels, **aug["grow_boundary"])
    pipeline = (
        pipeline
        + nodes.AddAffinities(job.neighborhood, labels, gt_affs)
        + nodes.BalanceLabels(gt_affs, weights)
        + nodes.PreCache(cache_size=job.cache_size, num_workers=job.num_workers, client=client, seed=job.seed)
    )
    os.makedirs(os.path.dirname(job.checkpoint_basename) or ".", exist_ok=True)
    train = Train(
        net,
        inputs={net.raw: raw, net.gt_affs: gt_affs, net.loss_weights: weights},
        outputs={net.pred_affs: keys["pred_affs"]},
        gradients={net.pred_affs: keys["pred_affs_gradients"]},
        checkpoint_basename=job.checkpoint_basename,
        save_every=job.save_every,
        log_every=job.log_every,
        allow_pickle=job.trust_pickle,
    )
    pipeline = pipeline + train
    if job.snapshot_every:
        pipeline = pipeline + nodes.Snapshot(
            {
                raw: "volumes/raw",
                labels: "volumes/labels/neuron_ids",
                gt_affs: "volumes/labels/affs",
                keys["pred_affs"]: "volumes/pred_affs",
                keys["pred_affs_gradients"]: "volumes/pred_affs_gradients",
            },
            output_dir=job.snapshot_dir,
            output_filename="batch_{iteration}.zarr",
            every=job.snapshot_every,
            additional_request=snapshot_request,
        )
    pipeline = pipeline + nodes.PrintProfilingStats(every=job.profiling_every)
    return TrainingPipeline(pipeline, request, train, keys)


def run_training(
    job: TrainingJob,
    client=None,
    on_iteration: Callable[[int, float], None] | None = None,
) -> tuple[int, float | None]:
    """Train until ``job.iterations`` (resuming from the newest checkpoint); returns (iteration, last loss).

    ``on_iteration(iteration, loss)`` is called after every step (the CLI's progress bar).
    """
    built = build_training_pipeline(job, client=client)
    loss = None
    with build(built.pipeline):
        start = built.train.iteration
        if start >= job.iterations:
            logger.info("already trained to iteration %d (target %d)", start, job.iterations)
        else:
            logger.info("training from iteration %d to %d", start, job.iterations)
        while built.train.iteration < job.iterations:
            batch = built.pipeline.request_batch(built.request)
            loss = batch.loss
            if on_iteration is not None:
                on_iteration(batch.iteration, loss)
        iteration = built.train.iteration
    return iteration, loss
