"""JAX training and prediction nodes (``gp.jax.Train``, ``gp.jax.Predict``), checkpoints and inference.

Importing this module loads JAX; ``import daskseg`` does not (``gp.jax`` is imported on first use).
"""

from __future__ import annotations

from .checkpoint import Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from .inference import Predictor, load_predictor
from .loss_plot import plot_loss
from .model import FlaxUNetModel, GenericJaxModel, make_optimizer, weighted_mse
from .predict import Predict
from .train import Train

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "FlaxUNetModel",
    "GenericJaxModel",
    "Predict",
    "Predictor",
    "Train",
    "latest_checkpoint",
    "load_checkpoint",
    "load_predictor",
    "make_optimizer",
    "plot_loss",
    "save_checkpoint",
    "weighted_mse",
]
