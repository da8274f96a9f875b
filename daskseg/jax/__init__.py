"""JAX training and prediction nodes (``gp.jax.Train``, ``gp.jax.Predict``), checkpoints and inference.

``import daskseg`` does not load JAX (``gp.jax`` is imported on first use), and neither does this
package until one of its JAX-using names is used: ``daskseg.jax.loss_plot`` (matplotlib only)
stays light for the CLI.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "Train": "train",
    "Predict": "predict",
    "GenericJaxModel": "model",
    "FlaxUNetModel": "model",
    "make_optimizer": "model",
    "weighted_mse": "model",
    "Predictor": "inference",
    "load_predictor": "inference",
    "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "CheckpointLockedError": "checkpoint",
    "CheckpointPickleError": "checkpoint",
    "open_checkpoint": "checkpoint",
    "latest_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "plot_loss": "loss_plot",
}


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'daskseg.jax' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES))


__all__ = sorted(_NAMES)
