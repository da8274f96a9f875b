"""``NetworkProcessor``: a trained U-Net as a block processor (JAX is loaded in the workers only).

The processor itself holds the network config (a small dict) and the checkpoint path; each worker
process loads the weights and compiles the forward pass once, on its first block, and reuses them
for all later blocks. Blocks are predicted tile by tile at the config's input shape, tiles placed
as ``Scan`` places them, so ``daskseg predict`` gives the same affinities as the in-process
``Scan`` + ``gp.jax.Predict`` pipeline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Hashable
from typing import Any

import numpy as np

from ..jax.checkpoint import resolve_checkpoint_path
from ..models.config import NetConfig, load_net_config
from .processor import TiledProcessor

logger = logging.getLogger(__name__)


def _checkpoint_identity(path: str) -> dict:
    """Path, size and modification time of a checkpoint file (or of the newest file in a directory)."""
    if os.path.isdir(path):
        newest, size = 0.0, 0
        for root, _, files in os.walk(path):
            for f in files:
                st = os.stat(os.path.join(root, f))
                newest, size = max(newest, st.st_mtime), size + st.st_size
        return {"path": path, "size": size, "mtime": newest}
    st = os.stat(path)
    return {"path": path, "size": st.st_size, "mtime": st.st_mtime}


def normalize_raw(raw: np.ndarray, factor: float | None = None) -> np.ndarray:
    """Raw intensities as float32 in [0, 1], exactly as ``gp.Normalize`` (uint8 / 255, uint16 / 65535)."""
    if factor is None:
        if raw.dtype == np.uint8:
            factor = 1.0 / 255
        elif raw.dtype == np.uint16:
            factor = 1.0 / (256 * 256 - 1)
        elif np.issubdtype(raw.dtype, np.floating):
            factor = 1.0
        else:
            raise TypeError(f"cannot normalize raw data of dtype {raw.dtype} without a factor")
    return raw.astype(np.float32) * np.asarray(factor, dtype=np.float32)


class NetworkProcessor(TiledProcessor):
    """Predict affinities with a trained U-Net, tile by tile at the network's input shape.

    Args:
        network_config (str | Path | NetConfig | dict): the network's JSON config (``daskseg net
            create``), or the config itself.
        checkpoint (str | Path): the trained weights, as the Train node saves them: a checkpoint file
            or a basename (its newest ``{basename}_checkpoint_N`` at start-up is used throughout).
        batch_size (int): tiles per forward pass (more use a GPU better; 1 reproduces the in-process
            pipeline bit for bit).
        normalize_factor (float, optional): raw intensities are multiplied by this after conversion
            to float32; default as ``gp.Normalize`` (``1/255`` for uint8).
        allow_pickle (bool): accept a pickled checkpoint (gunpowder's JAX format); a pickle can run
            arbitrary code when loaded, so only for files you trust (``--trust-pickle``).
    """

    def __init__(
        self,
        network_config: str | os.PathLike | NetConfig | dict,
        checkpoint: str | os.PathLike,
        batch_size: int = 1,
        normalize_factor: float | None = None,
        allow_pickle: bool = False,
    ):
        config = load_net_config(network_config)
        self.config_dict = config.to_dict()
        self.config_name = config.name
        self.checkpoint = resolve_checkpoint_path(checkpoint)
        self.normalize_factor = normalize_factor
        self.allow_pickle = allow_pickle
        out_channels = int(config.architecture.out_channels)
        super().__init__(
            config.input_shape, config.output_shape, output_channels=(out_channels,), batch_size=batch_size
        )
        self.multithreaded = True  # XLA uses every core of a CPU worker
        self._checkpoint_id = _checkpoint_identity(self.checkpoint)
        self._config_hash = hashlib.sha256(json.dumps(self.config_dict, sort_keys=True).encode()).hexdigest()

    def cache_key(self) -> Hashable:
        return ("NetworkProcessor", self._config_hash, self.checkpoint, self._checkpoint_id["mtime"], self.batch_size)

    def identity(self) -> dict:
        return {
            "type": "NetworkProcessor",
            "network": self.config_name,
            "config_sha256": self._config_hash,
            "checkpoint": self._checkpoint_id,
            "normalize_factor": self.normalize_factor,
        }

    def prepare(self, raw: np.ndarray) -> np.ndarray:
        return normalize_raw(raw, self.normalize_factor)

    def setup(self) -> Any:
        from ..jax.inference import load_predictor  # JAX loads here, in the worker, once per process

        logger.info("loading %s from %s", self.config_name, self.checkpoint)
        return load_predictor(self.config_dict, self.checkpoint, allow_pickle=self.allow_pickle)

    def __repr__(self) -> str:
        return f"NetworkProcessor({self.config_name}, {self.checkpoint})"
