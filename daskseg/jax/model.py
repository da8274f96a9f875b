"""The model protocol of the Train and Predict nodes, and the Flax U-Net model that implements it.

``GenericJaxModel`` is gunpowder 1.5's ``gunpowder.jax.GenericJaxModel`` protocol: a model object
with ``initialize(rng_key, inputs)``, ``forward(params, inputs)`` and
``train_step(params, inputs, pmapped)``, where ``params`` is whatever training state the model
keeps (parameters and optimizer state) and ``inputs`` is a dict of arrays named as in the node's
``inputs``. A gunpowder-JAX model class works unchanged here. One optional extension:
``train_step`` may return ``(new_params, outputs, loss, gradients)``, with ``gradients`` a dict of
d(loss)/d(output) per output name, which the Train node's ``gradients`` argument writes into the
batch.

``FlaxUNetModel`` is the easy path: the Flax U-Net, an optax optimizer (default the CREMI
example's Adam) and the default loss, ``weighted_mse``.

Array layouts accepted by ``FlaxUNetModel`` (gunpowder's channels-first arrays, spatial axes last):

- raw: ``(D, H, W)``; ``(C, D, H, W)`` if the network has ``C > 1`` input channels, else
  ``(B, D, H, W)`` (a batch, as ``gp.Stack`` makes); ``(B, C, D, H, W)``.
- ground truth and loss weights: ``(C, D, H, W)`` or ``(B, C, D, H, W)``; weights may omit the
  channel axis (``(D, H, W)``, ``(B, D, H, W)``) to weigh all channels alike.
- outputs (and gradients) come back as ``(C, D', H', W')`` for unbatched raw, else
  ``(B, C, D', H', W')``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from ..models.config import DEFAULT_LOSS, DEFAULT_OPTIMIZER, NetConfig, UNetConfig, load_net_config
from ..models.lsd_config import LsdConfig
from ..models.unet import UNet

logger = logging.getLogger(__name__)

PMAP_AXIS = "num_devices"



def is_model_protocol(model: Any) -> bool:
    """Whether ``model`` implements the ``GenericJaxModel`` protocol (initialize, forward, train_step)."""
    return all(callable(getattr(model, name, None)) for name in ("initialize", "forward", "train_step"))

class GenericJaxModel:
    """The model protocol (gunpowder 1.5's ``GenericJaxModel``): subclass and implement three methods.

    Args:
        is_training: whether the model is used for training (unused by the nodes; kept for
            compatibility with gunpowder's constructor).
    """

    def __init__(self, is_training: bool = True):
        self.is_training = is_training

    def initialize(self, rng_key: jax.Array, inputs: dict[str, jax.Array]) -> Any:
        """Return the initial training state (parameters, optimizer state) for example ``inputs``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement initialize()")

    def forward(self, params: Any, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Return the outputs, by name, for ``inputs``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def train_step(self, params: Any, inputs: dict[str, jax.Array], pmapped: bool) -> tuple:
        """One optimisation step: ``(new_params, outputs, loss)`` (optionally ``, gradients``).

        With ``pmapped`` the step runs under ``jax.pmap(axis_name="num_devices")`` and must average
        gradients across devices (``jax.lax.pmean``).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement train_step()")


# --- losses ---------------------------------------------------------------------------------
def weighted_mse(pred: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
    """``sum(w * (pred - target)**2) / count_nonzero(w)`` (0 where all weights are 0)."""
    weights = jnp.broadcast_to(weights, pred.shape).astype(pred.dtype)
    count = jnp.count_nonzero(weights)
    total = jnp.sum(weights * (pred - target.astype(pred.dtype)) ** 2)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)


def mse(pred: jax.Array, target: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Unweighted mean squared error (weights ignored)."""
    return jnp.mean((pred - target.astype(pred.dtype)) ** 2)


LOSSES: dict[str, Callable] = {"weighted_mse": weighted_mse, "mse": mse}


def make_loss(loss: str | Callable | None) -> Callable:
    """A loss ``f(pred, target, weights) -> scalar`` from a name in ``LOSSES`` or a callable."""
    if loss is None:
        loss = DEFAULT_LOSS
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES)} (or pass a callable)")
    return LOSSES[loss]


def make_optimizer(optimizer: optax.GradientTransformation | Mapping | None) -> optax.GradientTransformation:
    """An optax optimizer from an optax object or a config dict (default: the CREMI example's Adam)."""
    if optimizer is None:
        optimizer = DEFAULT_OPTIMIZER
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if not isinstance(optimizer, Mapping):
        raise TypeError(f"optimizer must be an optax.GradientTransformation or a dict, got {type(optimizer).__name__}")
    cfg = dict(optimizer)
    name = cfg.pop("name", "adam")
    factory = getattr(optax, name, None)
    if factory is None:
        raise ValueError(f"unknown optax optimizer {name!r} in optimizer config {dict(optimizer)}")
    return factory(**cfg)


# --- layout ---------------------------------------------------------------------------------
def raw_to_model_layout(raw: jax.Array, dims: int, in_channels: int) -> tuple[jax.Array, bool]:
    """Channels-first raw (see module docstring) -> channels-last (B, *spatial, C); and whether it was batched."""
    lead = raw.ndim - dims
    spatial = raw.shape[lead:]
    if lead == 0:
        if in_channels != 1:
            raise ValueError(f"raw of shape {raw.shape} has no channel axis, but the network has {in_channels} inputs")
        return raw.reshape(1, *spatial, 1), False
    if lead == 1:
        if in_channels == 1:  # (B, D, H, W); B == 1 is also a channel axis of size 1
            return raw[..., None], True
        if raw.shape[0] != in_channels:
            raise ValueError(
                f"raw of shape {raw.shape}: expected {in_channels} channels in axis 0 for a network with "
                f"{in_channels} input channels"
            )
        return jnp.moveaxis(raw, 0, -1)[None], False
    if lead == 2:
        if raw.shape[1] != in_channels:
            raise ValueError(f"raw of shape {raw.shape}: expected (B, C={in_channels}, *spatial)")
        return jnp.moveaxis(raw, 1, -1), True
    raise ValueError(f"raw of shape {raw.shape} has {lead} non-spatial axes; expected at most 2 (batch, channel)")


def _target_to_batched(a: jax.Array, dims: int) -> jax.Array:
    """Channels-first (C, *s) / (B, C, *s) / weights (*s) / (B, *s) -> broadcastable to (B, C, *s)."""
    lead = a.ndim - dims
    if lead == 0:
        return a[None, None]
    if lead == 1:
        return a[None]
    return a


# --- the Flax U-Net model -------------------------------------------------------------------
class FlaxUNetModel(GenericJaxModel):
    """The Flax U-Net as a ``GenericJaxModel``: forward, loss and optimizer in one jit-able step.

    Args:
        net: a ``UNet``, a ``UNetConfig``, a ``NetConfig``, a config dict, or a path to a network
            config JSON (``daskseg net create``).
        optimizer: optax optimizer or config dict; default the network config's, else Adam(0.5e-4,
            0.95, 0.999, 1e-8).
        loss: ``"weighted_mse"`` (default), ``"mse"`` or a callable ``f(pred, target, weights)``.
        raw, gt_affs, loss_weights, pred_affs: input/output names (default the network config's).
        seed: parameter initialisation seed when ``net`` is not a built ``UNet``.

    The training state (``params`` of the protocol) is ``{"params": ..., "opt_state": ...}`` with
    parameters as a plain nested dict of arrays.

    A multitask network (an LSD head: the network config's ``lsds``) also takes the descriptors
    and their weights (``lsds.gt``, ``lsds.weights``, as ``AddLocalShapeDescriptor`` and its
    ``lsds_mask`` make them) and returns ``lsds.pred`` next to the affinities; its loss is
    ``affs_loss_weight * loss(affinities) + loss_weight * loss(descriptors)``.
    """

    def __init__(
        self,
        net: UNet | UNetConfig | NetConfig | dict | str | os.PathLike,
        optimizer: optax.GradientTransformation | Mapping | None = None,
        loss: str | Callable | None = None,
        raw: str | None = None,
        gt_affs: str | None = None,
        loss_weights: str | None = None,
        pred_affs: str | None = None,
        seed: int = 0,
    ):
        super().__init__(is_training=True)
        self.net_config: NetConfig | None = None
        if isinstance(net, UNet):
            module = net
        else:
            if isinstance(net, UNetConfig):
                arch = net
            else:
                self.net_config = load_net_config(net)
                arch = self.net_config.architecture
            module = UNet(arch, rngs=nnx.Rngs(seed))
        self.config: UNetConfig = module.config
        self.graphdef, initial = nnx.split(module, nnx.Param)
        self._initial_params = nnx.to_pure_dict(initial)
        cfg = self.net_config
        self.optimizer = make_optimizer(optimizer if optimizer is not None else (cfg.optimizer if cfg else None))
        self.loss_fn = make_loss(loss if loss is not None else (cfg.loss if cfg else None))
        self.raw = raw or (cfg.raw if cfg else "raw")
        self.gt_affs = gt_affs or (cfg.gt_affs if cfg else "gt_affs")
        self.loss_weights = loss_weights or (cfg.loss_weights if cfg else "loss_weights")
        self.pred_affs = pred_affs or (cfg.pred_affs if cfg else "pred_affs")
        #: the LSD head's names and loss weights (None: affinities only)
        self.lsds: LsdConfig | None = None
        if self.config.lsd_channels:
            self.lsds = cfg.lsds if cfg is not None and cfg.lsds is not None else LsdConfig()

    def initial_params(self) -> dict:
        """The network's initial parameters (a pure dict of arrays, drawn from ``seed`` when built)."""
        return self._initial_params

    # --- protocol ----------------------------------------------------------------------------
    def initialize(self, rng_key: jax.Array | None = None, inputs: dict | None = None) -> dict:
        """``{"params", "opt_state"}``: the network's initial parameters (from ``seed``) and a fresh optimizer state.

        ``rng_key`` is ignored: the parameters were drawn when the network was built, so that a
        model object always starts from the same weights.
        """
        params = jax.tree.map(jnp.asarray, self.initial_params())
        return {"params": params, "opt_state": self.optimizer.init(params)}

    def apply(self, params: dict, raw: jax.Array) -> tuple[jax.Array, bool]:
        """Affinities channels-first for channels-first ``raw``, and whether ``raw`` was batched."""
        x, batched = raw_to_model_layout(raw.astype(jnp.float32), self.config.dims, self.config.in_channels)
        y = nnx.merge(self.graphdef, params)(x)
        y = jnp.moveaxis(y, -1, 1)  # (B, C, *spatial)
        return y, batched

    def apply_heads(self, params: dict, raw: jax.Array) -> tuple[dict[str, jax.Array], bool]:
        """Every head's output channels-first, by output name (``pred_affs``, and ``lsds.pred`` for a
        multitask network), for channels-first ``raw``; and whether ``raw`` was batched."""
        x, batched = raw_to_model_layout(raw.astype(jnp.float32), self.config.dims, self.config.in_channels)
        heads = nnx.merge(self.graphdef, params).heads(x)
        out = {self.pred_affs: jnp.moveaxis(heads["affs"], -1, 1)}
        if self.lsds is not None:
            out[self.lsds.pred] = jnp.moveaxis(heads["lsds"], -1, 1)
        return out, batched

    def forward(self, params: dict, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """``{pred_affs: affinities}`` (and the descriptors of a multitask network) for ``inputs[raw]``;
        ``params`` is the training state or bare parameters."""
        params = params["params"] if isinstance(params, dict) and "opt_state" in params else params
        if self.lsds is not None:
            outputs, batched = self.apply_heads(params, inputs[self.raw])
            return outputs if batched else {k: v[0] for k, v in outputs.items()}
        y, batched = self.apply(params, inputs[self.raw])
        return {self.pred_affs: y if batched else y[0]}

    def _targets(self, inputs: dict[str, jax.Array]) -> dict[str, tuple[jax.Array, jax.Array, float]]:
        """``{output name: (target, weights, loss weight)}`` in the batched layout."""
        dims = self.config.dims
        needed = [self.raw, self.gt_affs]
        if self.loss_fn is weighted_mse:
            needed.append(self.loss_weights)
        if self.lsds is not None:
            needed += [self.lsds.gt] + ([self.lsds.weights] if self.loss_fn is weighted_mse else [])
        if any(name not in inputs for name in needed):
            raise KeyError(f"the train step needs inputs {needed}; got {sorted(inputs)}")

        def weights(name: str) -> jax.Array:
            w = inputs.get(name)
            return jnp.ones((), jnp.float32) if w is None else _target_to_batched(w, dims)

        affs_weight = 1.0 if self.lsds is None else float(self.lsds.affs_loss_weight)
        targets = {self.pred_affs: (_target_to_batched(inputs[self.gt_affs], dims), weights(self.loss_weights),
                                    affs_weight)}
        if self.lsds is not None:
            targets[self.lsds.pred] = (_target_to_batched(inputs[self.lsds.gt], dims), weights(self.lsds.weights),
                                       float(self.lsds.loss_weight))
        return targets

    def losses(self, params: dict, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Each head's loss (unweighted), by output name, for a batch of training ``inputs``."""
        params = params["params"] if isinstance(params, dict) and "opt_state" in params else params
        targets = self._targets(inputs)
        outputs, _ = self.apply_heads(params, inputs[self.raw])
        return {name: self.loss_fn(outputs[name], target, w) for name, (target, w, _) in targets.items()}

    def _multitask_step(self, params: dict, inputs: dict[str, jax.Array], pmapped: bool) -> tuple:
        targets = self._targets(inputs)

        def predict(p):
            return self.apply_heads(p, inputs[self.raw])[0]

        def total(outputs):
            return sum(scale * self.loss_fn(outputs[name], target, w) for name, (target, w, scale) in targets.items())

        pred, vjp = jax.vjp(predict, params["params"])
        loss, dpred = jax.value_and_grad(total)(pred)
        (grads,) = vjp(dpred)
        state, loss = self._apply_gradients(params, grads, loss, pmapped)
        if not self._batched(inputs):
            pred = {k: v[0] for k, v in pred.items()}
            dpred = {k: v[0] for k, v in dpred.items()}
        return state, pred, loss, dpred

    def _apply_gradients(self, params: dict, grads: Any, loss: jax.Array, pmapped: bool) -> tuple[dict, jax.Array]:
        """The optimizer's step on ``grads`` (averaged over devices first when ``pmapped``):
        ``(new_state, loss)``, the loss averaged the same way."""
        if pmapped:
            grads = jax.lax.pmean(grads, PMAP_AXIS)
            loss = jax.lax.pmean(loss, PMAP_AXIS)
        updates, opt_state = self.optimizer.update(grads, params["opt_state"], params["params"])
        new_params = optax.apply_updates(params["params"], updates)
        return {"params": new_params, "opt_state": opt_state}, loss

    def _batched(self, inputs: dict[str, jax.Array]) -> bool:
        """Whether the raw input came with a batch axis (else outputs drop theirs)."""
        _, batched = raw_to_model_layout(inputs[self.raw], self.config.dims, self.config.in_channels)
        return batched

    def train_step(self, params: dict, inputs: dict[str, jax.Array], pmapped: bool = False) -> tuple:
        """One step: ``(new_state, {pred_affs: p}, loss, {pred_affs: dloss/dp})`` (with the
        descriptors' prediction and gradient too for a multitask network)."""
        if self.lsds is not None:
            return self._multitask_step(params, inputs, pmapped)
        if self.gt_affs not in inputs or self.loss_weights not in inputs and self.loss_fn is weighted_mse:
            raise KeyError(
                f"the train step needs inputs {self.raw!r}, {self.gt_affs!r} and {self.loss_weights!r}; "
                f"got {sorted(inputs)}"
            )
        dims = self.config.dims
        target = _target_to_batched(inputs[self.gt_affs], dims)
        weights = inputs.get(self.loss_weights)
        weights = jnp.ones((), jnp.float32) if weights is None else _target_to_batched(weights, dims)

        def predict(p):
            return self.apply(p, inputs[self.raw])[0]

        pred, vjp = jax.vjp(predict, params["params"])
        loss, dpred = jax.value_and_grad(lambda y: self.loss_fn(y, target, weights))(pred)
        (grads,) = vjp(dpred)
        state, loss = self._apply_gradients(params, grads, loss, pmapped)
        if not self._batched(inputs):
            pred, dpred = pred[0], dpred[0]
        return state, {self.pred_affs: pred}, loss, {self.pred_affs: dpred}

    # --- helpers -----------------------------------------------------------------------------
    def module(self, params: dict | None = None) -> UNet:
        """The Flax ``UNet`` with ``params`` (bare or a training state; default the initial ones)."""
        if params is None:
            params = self._initial_params
        params = params["params"] if "opt_state" in params else params
        return nnx.merge(self.graphdef, params)
