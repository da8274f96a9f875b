"""The Flax U-Net, its shape arithmetic and network configs.

``config`` and ``shapes`` are pure Python; ``UNet`` (and the ``conv`` module) load JAX and Flax on
first use, so ``from daskseg.models import create_networks`` stays light.
"""

from __future__ import annotations

import importlib

from ..errors import NetConfigError, ShapeError
from .config import DEFAULT_LOSS, DEFAULT_OPTIMIZER, NetConfig, UNetConfig, create_networks, load_net_config
from .lsd_config import LsdConfig
from .shapes import UNetShapes

_LAZY = {"UNet": "unet", "conv": None, "unet": None}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
        value = module if _LAZY[name] is None else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'daskseg.models' has no attribute {name!r}")


__all__ = [
    "DEFAULT_LOSS",
    "DEFAULT_OPTIMIZER",
    "LsdConfig",
    "NetConfig",
    "NetConfigError",
    "ShapeError",
    "UNet",
    "UNetConfig",
    "UNetShapes",
    "create_networks",
    "load_net_config",
]
