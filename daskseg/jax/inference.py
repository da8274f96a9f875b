"""Network config + checkpoint -> a fast jitted forward on numpy blocks.

Used by ``gp.jax.Predict`` and by blockwise prediction (``daskseg predict``)::

    predictor = load_predictor("test_net_config.json", "train_net_checkpoint_200000")
    affs = predictor(raw_block)          # (D, H, W) float -> (3, D', H', W') float32
    predictor.input_shape, predictor.output_shape, predictor.context   # voxels

A ``Predictor`` pickles as its config and numpy parameters (no compiled code), so it can be sent
to Dask workers; each process compiles once per block shape on first use. Convolutions use the
fast CPU formulation by default (``conv_impl="auto"``); ``conv_impl="xla"`` gives the plain Flax
forward.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ..models.config import NetConfig, UNetConfig, load_net_config
from . import checkpoint as ckpt
from .checkpoint import params_from_state
from .compile_cache import enable_compilation_cache
from .model import FlaxUNetModel

logger = logging.getLogger(__name__)


def resolve_checkpoint(checkpoint: str | os.PathLike, allow_pickle: bool = False) -> ckpt.Checkpoint:
    """Load ``checkpoint``: a file, or a basename whose newest ``_checkpoint_N`` is taken."""
    return ckpt.open_checkpoint(checkpoint, allow_pickle=allow_pickle)


class Predictor:
    """A jit-compiled forward of the Flax U-Net for channels-first numpy blocks.

    Args:
        net: network config (``NetConfig``, dict, JSON path or name) or a ``UNetConfig``.
        params: bare parameters or a training state; ``None`` uses the initial parameters.
        conv_impl: override the architecture's ``conv_impl`` (``"auto"``, ``"xla"``, ...).
    """

    def __init__(
        self,
        net: NetConfig | UNetConfig | dict | str | os.PathLike,
        params: Any = None,
        conv_impl: str | None = None,
    ):
        if isinstance(net, UNetConfig):
            self.net_config = None
            arch = net
        else:
            self.net_config = load_net_config(net)
            arch = self.net_config.architecture
        if conv_impl is not None:
            arch = arch.replace(conv_impl=conv_impl)
        self.architecture = arch
        self._model = FlaxUNetModel(arch, seed=0)
        params = self._model.initial_params() if params is None else params_from_state(params)
        self.params = jax.tree.map(np.asarray, jax.device_get(params))
        self._device_params = None
        self._forward: Callable[[Any, np.ndarray], Any] | None = None

    # --- geometry ------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The network config's input shape (voxels), if built from a network config."""
        return self.net_config.input_shape if self.net_config else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The network config's output shape (voxels), if built from a network config."""
        return self.net_config.output_shape if self.net_config else None

    @property
    def context(self) -> tuple[int, ...]:
        """``input - output`` in voxels, for every valid input shape."""
        return self.architecture.context

    # --- forward -------------------------------------------------------------------------------
    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Affinities ``(C, d, h, w)`` (or ``(B, C, d, h, w)``) for raw ``(D, H, W)``, ``(C, D, H, W)`` or ``(B, ...)``."""
        forward_fn = self._forward
        if forward_fn is None:
            model = self._model

            def forward(params, raw):
                return model.apply(params, raw)[0]

            enable_compilation_cache()
            forward_fn = self._forward = jax.jit(forward)
            self._device_params = jax.device_put(self.params)
        raw = np.asarray(raw)
        dims = self.architecture.dims
        self.architecture.output_shape(raw.shape[-dims:])  # clear error for invalid shapes
        batched = _is_batched(raw, dims, self.architecture.in_channels)
        out = np.asarray(forward_fn(self._device_params, raw))
        return out if batched else out[0]

    def __getstate__(self) -> dict:
        return {
            "net": self.net_config.to_dict() if self.net_config is not None else None,
            "architecture": self.architecture.to_dict(),
            "params": self.params,
        }

    def __setstate__(self, state: dict) -> None:
        net = state["net"] if state["net"] is not None else UNetConfig.from_dict(state["architecture"])
        conv_impl = state["architecture"]["conv_impl"]
        type(self).__init__(self, net, state["params"], conv_impl=conv_impl)


def _is_batched(raw: np.ndarray, dims: int, in_channels: int) -> bool:
    """Whether ``raw`` has a batch axis, by the rules of ``daskseg.jax.model.raw_to_model_layout``."""
    lead = raw.ndim - dims
    return lead == 2 or (lead == 1 and in_channels == 1)


def load_predictor(
    net: NetConfig | UNetConfig | dict | str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    conv_impl: str | None = None,
    allow_pickle: bool = False,
) -> Predictor:
    """A ``Predictor`` for network config ``net`` with the parameters of ``checkpoint``.

    ``checkpoint`` is a checkpoint file or a checkpoint basename (its newest checkpoint is used).
    Pickled checkpoints (gunpowder's JAX format) load only with ``allow_pickle=True``: a pickle can
    run code. Without a checkpoint, the initial parameters are used and a warning is logged.
    """
    if checkpoint is None:
        logger.warning("load_predictor: no checkpoint given; predicting with untrained initial parameters")
        return Predictor(net, None, conv_impl)
    loaded = resolve_checkpoint(checkpoint, allow_pickle=allow_pickle)
    logger.info("load_predictor: %s (iteration %d)", loaded.path, loaded.iteration)
    ckpt.check_fits_network(loaded, net if isinstance(net, UNetConfig) else load_net_config(net).architecture)
    return Predictor(net, loaded.state, conv_impl)
