"""Network configurations and the network factory (the tutorial's ``mknet.py`` step).

Pure Python: writing configs needs no JAX. ``create_networks`` writes the training network's and
the larger prediction network's JSON configs; the Train and Predict nodes, ``daskseg predict`` and
``daskseg.jax.inference`` build the Flax U-Net from them.

A config file holds, as the gunpowder tutorial's ``train_net_config.json`` did::

    {"name": "train_net", "input_shape": [84, 268, 268], "output_shape": [56, 56, 56],
     "context": [28, 212, 212],
     "raw": "raw", "gt_affs": "gt_affs", "loss_weights": "loss_weights", "pred_affs": "pred_affs",
     "optimizer": {"name": "adam", "learning_rate": 5e-05, "b1": 0.95, "b2": 0.999, "eps": 1e-08},
     "loss": "weighted_mse",
     "architecture": {"num_fmaps": 6, "fmap_inc_factor": 4, "downsample_factors": [[1, 3, 3], ...], ...},
     "format": "daskseg-net", "version": 1}

A network trained on another affinity neighbourhood than the nearest neighbours records it as
``"affinity_neighborhood": [[-1, 0, 0], ..., [0, 0, -9]]`` (one offset per output channel); the
training pipeline's ``AddAffinities`` and ``daskseg predict``'s output attributes take it from there.

A multitask network (``daskseg net create --lsds``) also has ``"lsds": {"sigma": 80.0, ...}`` (see
``daskseg.models.lsd_config``) and ``"lsd_channels": 10`` in its architecture: a second head for
local shape descriptors.

``raw``/``gt_affs``/``loss_weights``/``pred_affs`` are the names the Train and Predict nodes use
in their ``inputs``/``outputs``/``gradients`` dicts, e.g. ``inputs={net_config['raw']: raw}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import NetConfigError, ShapeError
from .lsd_config import LsdConfig
from .shapes import Shape, UNetShapes

logger = logging.getLogger(__name__)


FORMAT = "daskseg-net"
VERSION = 1

#: The gunpowder CREMI example's network input shapes (voxels, z-y-x).
CREMI_TRAIN_INPUT_SHAPE = (84, 268, 268)
CREMI_PREDICT_INPUT_SHAPE = (120, 322, 322)

#: The CREMI example's optimizer: Adam(lr=0.5e-4, b1=0.95, b2=0.999, eps=1e-8).
DEFAULT_OPTIMIZER = {"name": "adam", "learning_rate": 0.5e-4, "b1": 0.95, "b2": 0.999, "eps": 1e-8}

#: sum(w * (p - g)**2) / count_nonzero(w) of sigmoid affinities p against ground truth g.
DEFAULT_LOSS = "weighted_mse"

UPSAMPLING_MODES = ("transposed_conv", "nearest")

#: Affinity neighbourhoods by name (offsets in voxels, z-y-x): the tutorial's nearest neighbours,
#: and long-range ones for the mutex watershed (``daskseg segment --method mws``).
NEIGHBORHOODS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "nearest": ((-1, 0, 0), (0, -1, 0), (0, 0, -1)),
    "long-range": ((-1, 0, 0), (0, -1, 0), (0, 0, -1), (-2, 0, 0), (0, -3, 0), (0, 0, -3), (0, -9, 0), (0, 0, -9)),
}


def check_neighborhood(offsets, dims: int = 3) -> tuple[tuple[int, ...], ...]:
    """``offsets`` as tuples of ints, each of ``dims`` numbers and not all 0; ``ValueError`` otherwise."""
    if not isinstance(offsets, (list, tuple)) or not offsets:
        raise ValueError(f"affinity_neighborhood must be a non-empty list of offsets (z, y, x), got {offsets!r}")
    out = []
    for i, off in enumerate(offsets):
        if (not isinstance(off, (list, tuple)) or len(off) != dims
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in off) or not any(off)):
            raise ValueError(f"affinity_neighborhood[{i}] is {off!r}, expected {dims} whole numbers, not all 0")
        out.append(tuple(int(v) for v in off))
    return tuple(out)


def _tuple3(values: Sequence, what: str) -> tuple[int, ...]:
    out = tuple(int(v) for v in values)
    if any(v < 1 for v in out):
        raise ValueError(f"{what} {tuple(values)} must be positive integers")
    return out


@dataclass(frozen=True)
class UNetConfig:
    """The architecture of a valid-convolution U-Net with an affinity head.

    Args:
        in_channels: channels of the raw input.
        num_fmaps: feature maps of the top level; level ``l`` has ``num_fmaps * fmap_inc_factor**l``.
        fmap_inc_factor: growth of the number of feature maps per level.
        downsample_factors: max-pool factor per downsampling, per spatial dimension.
        kernel_size_down: kernel shapes of the convolutions per level on the way down (``L + 1``
            levels, the last is the bottom); default two 3x3x3 per level.
        kernel_size_up: the same on the way up (``L`` levels, index 0 = top); default two 3x3x3.
        upsampling: ``"transposed_conv"`` (kernel = stride = factor) or ``"nearest"`` (repeat, then
            a 1x1x1 convolution to the level's feature maps).
        out_channels: channels of the head, e.g. 3 affinities.
        activation: activation after every convolution, ``"relu"``.
        head_activation: ``"sigmoid"`` (affinities) or ``None`` (logits).
        conv_impl: how convolutions run: ``"auto"``, ``"xla"``, ``"fold2d"``, ``"slices2d"``
            (see ``daskseg.models.conv``); numerics are the same, speed is not.
        lsd_channels: channels of a second head (sigmoid) for local shape descriptors; 0: none.
    """

    in_channels: int = 1
    num_fmaps: int = 6
    fmap_inc_factor: int = 4
    downsample_factors: tuple[tuple[int, ...], ...] = ((1, 3, 3),) * 3
    kernel_size_down: tuple[tuple[tuple[int, ...], ...], ...] | None = None
    kernel_size_up: tuple[tuple[tuple[int, ...], ...], ...] | None = None
    upsampling: str = "transposed_conv"
    out_channels: int = 3
    activation: str = "relu"
    head_activation: str | None = "sigmoid"
    conv_impl: str = "auto"
    lsd_channels: int = 0

    def __post_init__(self):
        factors = tuple(_tuple3(f, "downsample factor") for f in self.downsample_factors)
        dims = len(factors[0]) if factors else 3
        levels = len(factors)
        default_level = ((3,) * dims, (3,) * dims)
        down = self.kernel_size_down
        up = self.kernel_size_up
        down = tuple(default_level for _ in range(levels + 1)) if down is None else down
        up = tuple(default_level for _ in range(levels)) if up is None else up
        down = tuple(tuple(_tuple3(k, "kernel size") for k in level) for level in down)
        up = tuple(tuple(_tuple3(k, "kernel size") for k in level) for level in up)
        object.__setattr__(self, "downsample_factors", factors)
        object.__setattr__(self, "kernel_size_down", down)
        object.__setattr__(self, "kernel_size_up", up)
        if self.upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {self.upsampling!r}")
        if self.activation != "relu":
            raise ValueError(f"activation must be 'relu', got {self.activation!r}")
        if self.head_activation not in ("sigmoid", None):
            raise ValueError(f"head_activation must be 'sigmoid' or None, got {self.head_activation!r}")
        for name in ("in_channels", "num_fmaps", "fmap_inc_factor", "out_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.lsd_channels) < 0:
            raise ValueError(f"lsd_channels must be >= 0, got {self.lsd_channels}")
        # validates levels and kernel shapes
        object.__setattr__(self, "_shapes", UNetShapes(factors, down, up))

    @property
    def shapes(self) -> UNetShapes:
        """The shape arithmetic of this architecture."""
        return self._shapes  # type: ignore[attr-defined]

    @property
    def dims(self) -> int:
        """Number of spatial dimensions."""
        return self.shapes.dims

    def fmaps(self, level: int) -> int:
        """Feature maps at ``level`` (0 = top)."""
        return self.num_fmaps * self.fmap_inc_factor**level

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """Output shape for ``input_shape``; ``ShapeError`` names the nearest valid inputs."""
        return self.shapes.output_shape(input_shape)

    @property
    def context(self) -> Shape:
        """``input - output`` in voxels (the same for every valid input)."""
        return self.shapes.context

    def replace(self, **changes) -> UNetConfig:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists instead of tuples)."""

        def lists(v):
            return [lists(x) for x in v] if isinstance(v, (tuple, list)) else v

        d = {f.name: lists(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if not d["lsd_channels"]:
            del d["lsd_channels"]  # networks without an LSD head keep their configs as they were
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        """Inverse of ``to_dict``; unknown keys raise a ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown U-Net architecture keys {unknown}; known: {sorted(names)}")
        return cls(**d)


@dataclass
class NetConfig:
    """One network: its architecture, input/output shapes, tensor names, optimizer and loss."""

    name: str
    input_shape: Shape
    architecture: UNetConfig = field(default_factory=UNetConfig)
    raw: str = "raw"
    gt_affs: str = "gt_affs"
    loss_weights: str = "loss_weights"
    pred_affs: str = "pred_affs"
    optimizer: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZER))
    loss: str = DEFAULT_LOSS
    affinity_neighborhood: tuple[tuple[int, ...], ...] | None = None
    lsds: LsdConfig | None = None

    def __post_init__(self):
        if isinstance(self.architecture, dict):
            self.architecture = UNetConfig.from_dict(self.architecture)
        if isinstance(self.lsds, dict):
            self.lsds = LsdConfig.from_dict(self.lsds)
        lsd_channels = self.lsds.channels(self.architecture.dims) if self.lsds is not None else 0
        if lsd_channels != self.architecture.lsd_channels:
            raise NetConfigError(
                f"network {self.name!r}: lsds {self.lsds.to_dict() if self.lsds else None} needs an LSD head of "
                f"{lsd_channels} channels, the architecture has lsd_channels {self.architecture.lsd_channels}"
            )
        if self.affinity_neighborhood is not None:
            self.affinity_neighborhood = check_neighborhood(self.affinity_neighborhood, self.architecture.dims)
            if len(self.affinity_neighborhood) != self.architecture.out_channels:
                raise NetConfigError(
                    f"network {self.name!r}: an affinity_neighborhood of {len(self.affinity_neighborhood)} offsets "
                    f"needs out_channels {len(self.affinity_neighborhood)}, the architecture has "
                    f"{self.architecture.out_channels}"
                )
        self.input_shape = tuple(int(s) for s in self.input_shape)
        # raises a ShapeError naming the nearest valid shapes
        self.output_shape = self.architecture.output_shape(self.input_shape)

    @property
    def context(self) -> Shape:
        """``input_shape - output_shape`` in voxels."""
        return tuple(i - o for i, o in zip(self.input_shape, self.output_shape))

    @property
    def neighborhood(self) -> tuple[tuple[int, ...], ...]:
        """The affinity offsets of the output channels: ``affinity_neighborhood``, else nearest neighbours."""
        return self.affinity_neighborhood if self.affinity_neighborhood is not None else NEIGHBORHOODS["nearest"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see the module docstring)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "context": list(self.context),
            "raw": self.raw,
            "gt_affs": self.gt_affs,
            "loss_weights": self.loss_weights,
            "pred_affs": self.pred_affs,
            "optimizer": dict(self.optimizer),
            "loss": self.loss,
            "architecture": self.architecture.to_dict(),
            **({"affinity_neighborhood": [list(o) for o in self.affinity_neighborhood]}
               if self.affinity_neighborhood is not None else {}),
            **({"lsds": self.lsds.to_dict()} if self.lsds is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetConfig:
        """Parse a config dict; a stored ``output_shape`` must agree with the architecture's."""
        if isinstance(d, dict) and int(d.get("version", VERSION)) > VERSION:
            raise ValueError(f"network config version {d['version']} is newer than this daskseg ({VERSION})")
        if not isinstance(d, dict):
            raise NetConfigError(f"a network config is a JSON object of fields, got a {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise NetConfigError(f"not a daskseg network config: format {d.get('format')!r}, expected {FORMAT!r}")
        keys = {"name", "input_shape", "raw", "gt_affs", "loss_weights", "pred_affs", "optimizer", "loss",
                "affinity_neighborhood", "lsds"}
        known = keys | {"architecture", "output_shape", "context", "format", "version"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise NetConfigError(f"unknown network config fields {unknown}; fields are {sorted(known)}")
        missing = sorted({"name", "input_shape"} - set(d))
        if missing:
            raise NetConfigError(f"the network config lacks the fields {missing}")
        shape = d["input_shape"]
        if not isinstance(shape, (list, tuple)) or not shape or not all(isinstance(v, int) and v > 0 for v in shape):
            raise NetConfigError(f"input_shape must be a list of positive integers (z, y, x), got {shape!r}")
        architecture = d.get("architecture", {})
        if not isinstance(architecture, dict):
            raise NetConfigError(f"architecture must be a JSON object of U-Net fields, got {architecture!r}")
        try:
            arch = UNetConfig.from_dict(architecture)
        except ShapeError:
            raise
        except (ValueError, TypeError) as e:
            raise NetConfigError(f"architecture: {e}") from None
        cfg = cls(architecture=arch, **{k: d[k] for k in keys if k in d})
        stored = d.get("output_shape")
        if stored is not None and tuple(stored) != cfg.output_shape:
            raise ShapeError(
                f"network config {cfg.name!r} says output_shape {tuple(stored)}, but its architecture gives "
                f"{cfg.output_shape} for input_shape {cfg.input_shape}"
            )
        return cfg

    def save(self, path: str | os.PathLike) -> None:
        """Write the JSON config to ``path`` (atomically: a temp file renamed into place)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NetConfig:
        """Read a JSON config written by ``save`` / ``create_networks``.

        Raises:
            NetConfigError: the file is not valid JSON or not a network config (naming the file and field).
            ShapeError: its input shape does not fit its architecture.
        """
        path = os.fspath(path)
        with open(path) as f:
            try:
                d = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise NetConfigError(f"network config {path} is not valid JSON: {e}") from None
        try:
            return cls.from_dict(d)
        except ShapeError as e:
            raise ShapeError(f"network config {path}: {e}") from None
        except (ValueError, TypeError) as e:  # NetConfigError and what the fields' own checks raise
            raise NetConfigError(f"network config {path}: {e}") from None


def load_net_config(config: NetConfig | dict | str | os.PathLike) -> NetConfig:
    """A ``NetConfig`` from a config object, dict, JSON path, or network name (``NAME_config.json``)."""
    if isinstance(config, NetConfig):
        return config
    if isinstance(config, dict):
        return NetConfig.from_dict(config)
    path = os.fspath(config)
    if not os.path.exists(path) and os.path.exists(path + "_config.json"):
        path = path + "_config.json"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no network config at {path!r} (nor {path + '_config.json'!r}); create one with "
                                "`daskseg net create` or daskseg.models.create_networks()")
    return NetConfig.load(path)


def create_networks(
    output_dir: str | os.PathLike = ".",
    train_input_shape: Sequence[int] = CREMI_TRAIN_INPUT_SHAPE,
    predict_input_shape: Sequence[int] = CREMI_PREDICT_INPUT_SHAPE,
    architecture: UNetConfig | dict | None = None,
    train_name: str = "train_net",
    predict_name: str = "test_net",
    optimizer: dict[str, Any] | None = None,
    affinity_neighborhood: Sequence[Sequence[int]] | str | None = None,
    lsds: LsdConfig | dict | bool | None = None,
    **architecture_kwargs,
) -> tuple[NetConfig, NetConfig]:
    """Write ``{train_name}_config.json`` and ``{predict_name}_config.json`` into ``output_dir``.

    Defaults give the gunpowder CREMI example's networks: U-Net with ``num_fmaps=6``,
    ``fmap_inc_factor=4``, ``downsample_factors=[(1,3,3)]*3``; training input (84,268,268) ->
    output (56,56,56), prediction input (120,322,322) -> (92,110,110). Architecture fields can be
    given as keyword arguments (``num_fmaps=12``). Invalid input shapes raise a ``ShapeError``
    naming the nearest valid ones. ``affinity_neighborhood`` (offsets, or a name of
    ``NEIGHBORHOODS`` such as ``'long-range'``) gives the head one channel per offset and is
    recorded in both configs. ``lsds`` (``True`` for the defaults, or an ``LsdConfig``/dict of its
    fields) adds the local-shape-descriptor head of a multitask network. Returns both configs.
    """
    lsd_config = None
    if lsds is True:
        lsd_config = LsdConfig()
    elif isinstance(lsds, dict):
        lsd_config = LsdConfig.from_dict(lsds)
    elif isinstance(lsds, LsdConfig):
        lsd_config = lsds
    if lsd_config is not None:
        architecture_kwargs["lsd_channels"] = lsd_config.channels()
    if isinstance(affinity_neighborhood, str):
        if affinity_neighborhood not in NEIGHBORHOODS:
            raise NetConfigError(f"unknown neighbourhood {affinity_neighborhood!r}; known: {sorted(NEIGHBORHOODS)}")
        affinity_neighborhood = NEIGHBORHOODS[affinity_neighborhood]
    neighborhood = None
    if affinity_neighborhood is not None:
        try:
            neighborhood = check_neighborhood([list(o) for o in affinity_neighborhood])
        except (ValueError, TypeError) as e:
            raise NetConfigError(str(e)) from None
        if neighborhood == NEIGHBORHOODS["nearest"]:
            neighborhood = None  # the default: configs stay as they were
        else:
            architecture_kwargs["out_channels"] = len(neighborhood)
    if architecture is None:
        arch = UNetConfig(**architecture_kwargs)
    else:
        arch = UNetConfig.from_dict(architecture) if isinstance(architecture, dict) else architecture
        if architecture_kwargs:
            arch = arch.replace(**architecture_kwargs)
    opt = dict(DEFAULT_OPTIMIZER) if optimizer is None else dict(optimizer)
    train = NetConfig(name=train_name, input_shape=tuple(train_input_shape), architecture=arch, optimizer=opt,
                      affinity_neighborhood=neighborhood, lsds=lsd_config)
    predict = NetConfig(name=predict_name, input_shape=tuple(predict_input_shape), architecture=arch, optimizer=opt,
                        affinity_neighborhood=neighborhood, lsds=lsd_config)
    os.makedirs(output_dir, exist_ok=True)
    for cfg in (train, predict):
        path = os.path.join(output_dir, f"{cfg.name}_config.json")
        cfg.save(path)
        logger.info("wrote %s: input %s -> output %s", path, cfg.input_shape, cfg.output_shape)
    return train, predict
