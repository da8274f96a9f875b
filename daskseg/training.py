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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from .array import ArrayKey, ArraySpec
from .batch import BatchRequest
from .cluster import ClientLike
from .errors import SchemaError, TrainingConfigError
from .geometry import Coordinate
from .io import container_format, open_dataset
from .models.config import NetConfig, load_net_config
from .pipeline import Pipeline, build
from .schema import check_fields, check_mapping

logger = logging.getLogger(__name__)


def tutorial_augmentations() -> dict[str, dict[str, Any] | None]:
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


Number = float  # the schema accepts ints where a float is asked for

#: the arguments each augmentation of the training YAML takes (type per key) and the ones it needs;
#: the arrays (raw, labels) are the job's own and not given
AUGMENT_SCHEMAS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "elastic": (
        {
            "control_point_spacing": int | list[int],
            "jitter_sigma": Number | list[Number],
            "rotation_interval": list[Number],
            "scale_interval": list[Number],
            "prob_slip": Number,
            "prob_shift": Number,
            "max_misalign": int,
            "subsample": int,
            "spatial_dims": int,
            "use_fast_points_transform": bool,
            "recompute_missing_points": bool,
            "p": Number,
        },
        ("control_point_spacing", "jitter_sigma", "rotation_interval"),
    ),
    "simple": (
        {
            "mirror_only": list[int] | None,
            "transpose_only": list[int] | None,
            "mirror_probs": list[Number] | None,
            "transpose_probs": list[Number] | None,
            "p": Number,
        },
        (),
    ),
    "intensity": (
        {
            "scale_min": Number,
            "scale_max": Number,
            "shift_min": Number,
            "shift_max": Number,
            "z_section_wise": bool,
            "clip": bool,
            "p": Number,
            "slab": list[int] | None,
        },
        ("scale_min", "scale_max", "shift_min", "shift_max"),
    ),
    "grow_boundary": ({"steps": int, "background": int, "only_xy": bool}, ()),
}


@dataclass
class TrainingJob:
    """Everything ``daskseg train`` needs; relative paths are relative to the YAML file.

    Args:
        samples: containers (.zarr or .hdf) with ``raw_dataset`` and ``labels_dataset``.
        network: the training network's JSON config (``daskseg net create``).
        iterations: train until this iteration (a resumed run continues towards it).
        checkpoint_basename: checkpoints are ``{basename}_checkpoint_{iteration}``.
        augment: per-node arguments (``AUGMENT_SCHEMAS`` lists them); a node set to ``null`` is
            left out. Default: the tutorial's; in a YAML file, the arguments given for a node
            replace those defaults one by one.
        cache_size, num_workers: PreCache's batches in flight and Dask workers of a LocalCluster.
        snapshot_every: save a snapshot every N iterations (0: never).
        seed: the seed of the batch sequence (a re-run draws the same batches).
        trust_pickle: resume from a pickled checkpoint (gunpowder's JAX format); a pickle can run
            arbitrary code when loaded, so only for files you trust.
        neighborhood: the affinity offsets the network learns; default the network config's
            ``affinity_neighborhood`` (``daskseg net create --neighborhood``), else nearest
            neighbours. Given here, it must be the network's.
    """

    samples: list[str] = field(metadata={"example": "[data/sample_A.zarr, data/sample_B.zarr]"})
    network: str
    iterations: int = field(default=1000, metadata={"min": 1})
    raw_dataset: str = "volumes/raw"
    labels_dataset: str = "volumes/labels/neuron_ids"
    checkpoint_basename: str = "checkpoints/train_net"
    save_every: int = field(default=500, metadata={"min": 0})
    log_every: int = field(default=1, metadata={"min": 1})
    snapshot_every: int = field(default=100, metadata={"min": 0})
    snapshot_dir: str = "snapshots"
    profiling_every: int = field(default=100, metadata={"min": 1})
    cache_size: int = field(default=10, metadata={"min": 1})
    num_workers: int = field(default=2, metadata={"min": 1})
    seed: int = 0
    trust_pickle: bool = False
    neighborhood: list[list[int]] | None = None
    augment: dict[str, dict[str, Any] | None] = field(default_factory=tutorial_augmentations)

    def __post_init__(self):
        try:
            check_fields(self)
        except TrainingConfigError:
            raise
        except SchemaError as e:
            raise TrainingConfigError(str(e)) from None
        if not self.samples:
            raise TrainingConfigError("a training job needs at least one sample under `samples:`")
        for i, offset in enumerate(self.neighborhood or ()):
            if len(offset) != 3:
                raise TrainingConfigError(f"neighborhood[{i}] is {offset!r}, expected 3 offsets (z, y, x)")
        unknown = set(self.augment) - set(AUGMENT_SCHEMAS)
        if unknown:
            raise TrainingConfigError(f"unknown augmentations {sorted(unknown)}; known: {sorted(AUGMENT_SCHEMAS)}")
        for name, args in self.augment.items():
            if args is not None:
                schema, required = AUGMENT_SCHEMAS[name]
                try:
                    self.augment[name] = check_mapping(args, schema, f"augment.{name}", required)
                except SchemaError as e:
                    raise TrainingConfigError(str(e)) from None

    def resolve_paths(self, base_dir: str) -> TrainingJob:
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


def _yaml_error(path: str, e: yaml.YAMLError) -> TrainingConfigError:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = " ".join(str(getattr(e, "problem", None) or e).split())
    context = getattr(e, "context", None)
    return TrainingConfigError(f"{path} is not valid YAML{where}: {problem}" + (f" ({context})" if context else ""))


def load_job(path: str | os.PathLike) -> TrainingJob:
    """Read and check a whole training YAML before anything runs.

    Every field is checked against ``TrainingJob``'s types and bounds and every augmentation's
    arguments against ``AUGMENT_SCHEMAS``; unknown, missing or mistyped fields raise a
    ``TrainingConfigError`` naming the file, the key, the value and the expected type.
    """
    path = str(path)
    if not os.path.exists(path):
        raise TrainingConfigError(f"training config {path!r} does not exist")
    with open(path) as f:
        try:
            doc = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise _yaml_error(path, e) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise TrainingConfigError(f"{path}: a training config is a mapping of fields (samples: ..., network: ...), "
                                  f"got {type(doc).__name__} {doc!r}")
    names = {f.name for f in dataclasses.fields(TrainingJob)}
    unknown = {str(k) for k in doc} - names
    if unknown:
        raise TrainingConfigError(f"{path}: unknown fields {sorted(unknown)}; fields are {sorted(names)}")
    missing = {"samples", "network"} - set(doc)
    if missing:
        raise TrainingConfigError(f"{path}: missing fields {sorted(missing)}")
    augment = doc.pop("augment", None)
    if augment is None:
        augment = {}
    if not isinstance(augment, dict):
        raise TrainingConfigError(f"{path}: augment is {augment!r}, expected a mapping of augmentations "
                                  f"({', '.join(sorted(AUGMENT_SCHEMAS))}) to their arguments or null")
    merged: dict[str, dict[str, Any] | None] = tutorial_augmentations()
    for name, args in augment.items():
        default = merged.get(name)
        merged[name] = {**default, **args} if isinstance(args, dict) and default is not None else args
    try:
        job = TrainingJob(augment=merged, **doc)
        augmentations(job, ArrayKey("RAW"), ArrayKey("LABELS"))  # values the nodes themselves refuse
    except TrainingConfigError as e:
        raise TrainingConfigError(f"{path}: {e}") from None
    return job.resolve_paths(os.path.dirname(os.path.abspath(path)))


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
    if voxel_size is None:
        raise TrainingConfigError("no samples to train on")
    return voxel_size


def augmentations(job: TrainingJob, raw: ArrayKey, labels: ArrayKey) -> list:
    """The augmentation nodes of ``job``, in the tutorial's order (elastic, simple, intensity, grow_boundary).

    Raises:
        TrainingConfigError: a node refuses its arguments (naming ``augment.<node>``).
    """
    from . import nodes

    makers = {
        "elastic": lambda args: nodes.ElasticAugment(**args),
        "simple": lambda args: nodes.SimpleAugment(**args),
        "intensity": lambda args: nodes.IntensityAugment(raw, **args),
        "grow_boundary": lambda args: nodes.GrowBoundary(labels, **args),
    }
    built = []
    for name, make in makers.items():
        args = job.augment.get(name)
        if args is None:
            continue
        try:
            built.append(make(args))
        except (TypeError, ValueError) as e:
            raise TrainingConfigError(f"augment.{name}: {e}") from None
    return built


def check_job(job: TrainingJob) -> tuple[NetConfig, Coordinate]:
    """Everything that can be checked before a cluster starts: the network config and the samples.

    Returns the network config and the samples' voxel size.

    Raises:
        NetConfigError, ShapeError: the network config (``job.network``) is unusable.
        DatasetError, TrainingConfigError: a sample is missing, unreadable, or does not fit the others.
        SampleTooSmallError: a sample is smaller than one batch reads (with the augmentations).
    """
    augmentations(job, ArrayKey("RAW"), ArrayKey("LABELS"))
    net = load_net_config(job.network)
    training_neighborhood(job, net)
    voxel_size = check_samples(job)
    check_sample_sizes(job, net, voxel_size)
    return net, voxel_size


def training_neighborhood(job: TrainingJob, net: NetConfig) -> list[list[int]]:
    """The affinity offsets to train: the job's if given, else the network's.

    Raises:
        TrainingConfigError: the job's neighbourhood is not the network config's, or has another
            number of offsets than the network has output channels.
    """
    own = [list(o) for o in net.neighborhood]
    if job.neighborhood is None:
        return own
    given = [[int(v) for v in o] for o in job.neighborhood]
    if net.affinity_neighborhood is not None and given != own:
        raise TrainingConfigError(
            f"neighborhood {given} differs from the network config's affinity_neighborhood {own} ({job.network}): "
            f"leave it out of the training config to train the network's"
        )
    if len(given) != net.architecture.out_channels:
        raise TrainingConfigError(
            f"neighborhood has {len(given)} offsets but the network {job.network} has "
            f"{net.architecture.out_channels} output channels: create the network with "
            f"`daskseg net create --affinity-neighborhood ...` of these offsets"
        )
    return given


def training_request(net: NetConfig, voxel_size: Coordinate) -> tuple[BatchRequest, dict[str, ArrayKey]]:
    """The request one training step makes (the network's input of raw, its output of targets and
    weights) and the pipeline's array keys by name."""
    keys = {
        name: ArrayKey(name.upper())
        for name in ("raw", "labels", "gt_affs", "loss_weights", "pred_affs", "pred_affs_gradients")
    }
    output_size = Coordinate(net.output_shape) * voxel_size
    request = BatchRequest()
    request.add(keys["raw"], Coordinate(net.input_shape) * voxel_size)
    request.add(keys["gt_affs"], output_size)
    request.add(keys["loss_weights"], output_size)
    if net.lsds is not None:  # multitask: the LSD head's target, its weights (the lsds mask) and prediction
        keys.update({name: ArrayKey(name.upper()) for name in ("gt_lsds", "lsds_weights", "pred_lsds")})
        request.add(keys["gt_lsds"], output_size)
        request.add(keys["lsds_weights"], output_size)
    return request, keys


def target_nodes(
    job: TrainingJob, net: NetConfig, keys: dict[str, ArrayKey], elastic: dict[str, Any] | None | str = "job"
) -> list:
    """The nodes between ``RandomProvider`` and ``PreCache``: augmentations, affinities, their
    weights, and the LSD target (``elastic``: ``ElasticAugment``'s arguments in place of the job's,
    None to leave it out)."""
    from . import nodes

    if not isinstance(elastic, str):
        job = dataclasses.replace(job, augment={**job.augment, "elastic": elastic})
    built = [
        *augmentations(job, keys["raw"], keys["labels"]),
        nodes.AddAffinities(training_neighborhood(job, net), keys["labels"], keys["gt_affs"]),
        nodes.BalanceLabels(keys["gt_affs"], keys["loss_weights"]),
    ]
    lsds = net.lsds
    if lsds is not None:
        built.append(nodes.AddLocalShapeDescriptor(
            keys["labels"],
            keys["gt_lsds"],
            lsds_mask=keys["lsds_weights"],
            sigma=lsds.sigma,
            mode=lsds.mode,
            components=lsds.components,
            downsample=lsds.downsample,
        ))
    return built


def check_sample_sizes(job: TrainingJob, net: NetConfig, voxel_size: Coordinate) -> None:
    """Every sample must hold what one batch reads with the augmentations at their worst.

    Raises:
        SampleTooSmallError: naming the sample, what a batch reads and what it has.
    """
    from .nodes import Normalize
    from .nodes.dataset_source import INTERPOLATABLE_DTYPES
    from .training_needs import batch_needs, check_sample_fits

    request, keys = training_request(net, voxel_size)
    specs = {}
    for key, dataset in ((keys["raw"], job.raw_dataset), (keys["labels"], job.labels_dataset)):
        ds = open_dataset(job.samples[0], dataset)
        specs[key] = ArraySpec(voxel_size=voxel_size, dtype=ds.dtype, interpolatable=ds.dtype.type in INTERPOLATABLE_DTYPES)
    elastic = job.augment.get("elastic")
    need = batch_needs(
        request, specs, lambda variant: [Normalize(keys["raw"]), *target_nodes(job, net, keys, variant)], elastic
    )
    why = (
        f"with the network input {tuple(net.input_shape)} and augment.elastic's rotation_interval "
        f"{list(elastic['rotation_interval'])}, scale_interval {list(elastic.get('scale_interval', [1, 1]))} "
        f"and jitter, at the worst rotation"
        if elastic is not None
        else f"with the network input {tuple(net.input_shape)},"
    )
    for sample in job.samples:
        raw = open_dataset(sample, job.raw_dataset)
        labels = open_dataset(sample, job.labels_dataset)
        check_sample_fits(sample, need, raw.roi.intersect(labels.roi), voxel_size, why)


def build_training_pipeline(job: TrainingJob, client: ClientLike = None) -> TrainingPipeline:
    """The tutorial's training pipeline for ``job`` (PreCache on ``client``'s cluster)."""
    from . import nodes
    from .jax import Train

    net, voxel_size = check_job(job)
    request, keys = training_request(net, voxel_size)
    raw, labels, gt_affs, weights = keys["raw"], keys["labels"], keys["gt_affs"], keys["loss_weights"]
    lsds = net.lsds
    snapshot_request = BatchRequest()
    snapshot_request[keys["pred_affs"]] = request[gt_affs]
    snapshot_request[keys["pred_affs_gradients"]] = request[gt_affs]
    if lsds is not None:
        snapshot_request[keys["pred_lsds"]] = request[gt_affs]

    datasets = {raw: job.raw_dataset, labels: job.labels_dataset}
    pipeline = tuple(_source(s, datasets) + nodes.Normalize(raw) + nodes.RandomLocation() for s in job.samples)
    pipeline = pipeline + nodes.RandomProvider()
    for node in target_nodes(job, net, keys):
        pipeline = pipeline + node
    pipeline = (
        pipeline
        + nodes.PreCache(cache_size=job.cache_size, num_workers=job.num_workers, client=client, seed=job.seed)
    )
    os.makedirs(os.path.dirname(job.checkpoint_basename) or ".", exist_ok=True)
    inputs = {net.raw: raw, net.gt_affs: gt_affs, net.loss_weights: weights}
    outputs = {net.pred_affs: keys["pred_affs"]}
    if lsds is not None:
        inputs.update({lsds.gt: keys["gt_lsds"], lsds.weights: keys["lsds_weights"]})
        outputs[lsds.pred] = keys["pred_lsds"]
    train = Train(
        net,
        inputs=inputs,
        outputs=outputs,
        gradients={net.pred_affs: keys["pred_affs_gradients"]},
        checkpoint_basename=job.checkpoint_basename,
        save_every=job.save_every,
        log_every=job.log_every,
        allow_pickle=job.trust_pickle,
    )
    pipeline = pipeline + train
    if job.snapshot_every:
        snapshot_datasets = {
            raw: "volumes/raw",
            labels: "volumes/labels/neuron_ids",
            gt_affs: "volumes/labels/affs",
            keys["pred_affs"]: "volumes/pred_affs",
            keys["pred_affs_gradients"]: "volumes/pred_affs_gradients",
        }
        if lsds is not None:
            snapshot_datasets.update({keys["gt_lsds"]: "volumes/labels/lsds", keys["pred_lsds"]: "volumes/pred_lsds"})
        pipeline = pipeline + nodes.Snapshot(
            snapshot_datasets,
            output_dir=job.snapshot_dir,
            output_filename="batch_{iteration}.zarr",
            every=job.snapshot_every,
            additional_request=snapshot_request,
        )
    pipeline = pipeline + nodes.PrintProfilingStats(every=job.profiling_every)
    return TrainingPipeline(pipeline, request, train, keys)


def run_training(
    job: TrainingJob,
    client: ClientLike = None,
    on_iteration: Callable[[int, float], None] | None = None,
    max_seconds: float | None = None,
) -> tuple[int, float | None]:
    """Train until ``job.iterations`` (resuming from the newest checkpoint); returns (iteration, last loss).

    ``on_iteration(iteration, loss)`` is called after every step (the CLI's progress bar).
    ``max_seconds`` stops earlier, after the first step that ends this long after the call
    (building the pipeline and compiling count; the last iteration is checkpointed).
    """
    deadline = None if max_seconds is None else time.monotonic() + float(max_seconds)
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
            if on_iteration is not None and loss is not None:  # Train sets every batch's loss
                on_iteration(built.train.iteration, loss)
            if deadline is not None and time.monotonic() >= deadline:
                logger.info("stopping at iteration %d: %.0f s of training are up", built.train.iteration, max_seconds)
                break
        iteration = built.train.iteration
    return iteration, loss
