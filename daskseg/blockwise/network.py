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
import math
import os
from collections.abc import Hashable
from typing import Any

import numpy as np

from ..errors import (
    CheckpointError,
    CheckpointNotFoundError,
    InputDataError,
    UnusableCheckpointError,
)
from ..geometry import Coordinate, Roi
from ..io import Dataset
from ..jax.checkpoint import resolve_checkpoint_path
from ..models.config import NetConfig, load_net_config
from ..nodes.normalize import default_factor
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


#: how far normalised intensities may stray outside [0, 1] (float rounding) before they are refused
RANGE_TOLERANCE = 1e-6
#: chunks of the input whose values ``check_input`` looks at
SAMPLE_CHUNKS = 8


def normalize_raw(raw: np.ndarray, factor: float | None = None) -> np.ndarray:
    """Raw intensities as float32 in [0, 1], exactly as ``gp.Normalize`` (uint8 / 255, uint16 / 65535)."""
    if factor is None:
        factor = default_factor(raw.dtype)
        if factor is None:
            raise InputDataError(
                f"raw data of dtype {raw.dtype} has no default normalisation (uint8 / 255, uint16 / 65535, floats as "
                f"they are): give a normalisation factor (--normalize-factor, normalize_factor=)"
            )
    return raw.astype(np.float32) * np.asarray(factor, dtype=np.float32)


def value_range_problem(values: np.ndarray) -> str | None:
    """What is wrong with normalised intensities (outside [0, 1] beyond rounding), or None."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        return f"normalised intensities range over [{lo:g}, {hi:g}], outside [0, 1]"
    return None


def sample_chunks(raw: Dataset, count: int = SAMPLE_CHUNKS) -> np.ndarray:
    """The values of up to ``count`` chunks of ``raw``, evenly spread over it (flattened)."""
    dims = raw.voxel_size.dims
    chunks = Coordinate(raw.chunk_shape[-dims:])
    shape = Coordinate(raw.shape[-dims:])
    grid = tuple(-(-s // c) for s, c in zip(shape, chunks))
    total = math.prod(grid)
    picks = sorted({int(round(i)) for i in np.linspace(0, total - 1, min(count, total))})
    values = []
    for flat in picks:
        index = np.unravel_index(flat, grid)
        begin = Coordinate(int(i) * c for i, c in zip(index, chunks))
        size = Coordinate(min(c, s - b) for c, s, b in zip(chunks, shape, begin))
        roi = Roi(raw.roi.begin + begin * raw.voxel_size, size * raw.voxel_size)
        values.append(np.asarray(raw.read(roi)).ravel())
    return np.concatenate(values)


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
        self.in_channels = int(config.architecture.in_channels)
        self._checkpoint_checked = False
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

    def output_attributes(self) -> dict:
        """``affinity_neighborhood``: the offsets of the output channels (``daskseg segment`` reads it)."""
        neighborhood = load_net_config(self.config_dict).neighborhood
        return {"affinity_neighborhood": [list(o) for o in neighborhood]}

    def check_input(self, raw: Dataset) -> None:
        """Refuse, on the client, what the workers would fail on (or silently get wrong).

        The checkpoint must be readable and fit the network; the input must have the network's
        channels, a dtype with a normalisation (or ``normalize_factor``), normalised values in
        [0, 1] and not only NaN in the chunks sampled (``sample_chunks``); some NaN is warned about.

        Raises:
            CheckpointError: unreadable checkpoint, or one of another network.
            InputDataError: naming the dataset, what was found and the fix.
        """
        if not self._checkpoint_checked:
            from ..jax.checkpoint import open_checkpoint

            open_checkpoint(self.checkpoint, self.config_dict, allow_pickle=self.allow_pickle)
            self._checkpoint_checked = True
        channels = tuple(raw.channel_shape)
        wanted = () if self.in_channels == 1 else (self.in_channels,)
        if channels != wanted:
            raise InputDataError(
                f"{raw} has shape {tuple(raw.shape)}: {len(channels)} channel dimension(s) {channels} before its "
                f"{raw.voxel_size.dims} spatial ones, but {self.config_name} takes "
                + ("a single-channel 3-D raw (no channel dimension)" if self.in_channels == 1
                   else f"{self.in_channels} channels (shape ({self.in_channels}, z, y, x))")
                + ": give a raw dataset of that shape"
            )
        if self.normalize_factor is None and default_factor(raw.dtype) is None:
            raise InputDataError(
                f"{raw} has dtype {raw.dtype}, which has no default normalisation (uint8 / 255, uint16 / 65535, "
                f"floats as they are): give the factor that maps its values to [0, 1] with --normalize-factor "
                f"(normalize_factor=), e.g. {1 / max(1, np.iinfo(raw.dtype).max) if raw.dtype != bool else 1:g}"
            )
        values = normalize_raw(sample_chunks(raw), self.normalize_factor)
        nan = np.isnan(values)
        if nan.all():
            raise InputDataError(f"{raw} holds only NaN in the {SAMPLE_CHUNKS} chunks sampled: predicting it would "
                                 f"write only NaN. Check the input.")
        if nan.any():
            logger.warning("%s holds NaN in %.1f%% of the voxels sampled: the prediction there will be NaN", raw,
                           100 * nan.mean())
        problem = value_range_problem(values)
        if problem:
            factor = self.normalize_factor if self.normalize_factor is not None else default_factor(raw.dtype)
            raise InputDataError(
                f"{raw} (dtype {raw.dtype}, factor {factor:g}): {problem} in the chunks sampled, which the network "
                f"would saturate (training's Normalize refuses them too): give --normalize-factor "
                f"(normalize_factor=) so that values times it lie in [0, 1]"
            )

    def prepare(self, raw: np.ndarray) -> np.ndarray:
        x = normalize_raw(raw, self.normalize_factor)
        problem = value_range_problem(x)
        if problem:
            raise InputDataError(f"raw block: {problem}; give a normalisation factor (--normalize-factor) that maps "
                                 f"the raw values to [0, 1]")
        return x

    def setup(self) -> Any:
        from ..jax.inference import load_predictor  # JAX loads here, in the worker, once per process

        logger.info("loading %s from %s", self.config_name, self.checkpoint)
        try:
            return load_predictor(self.config_dict, self.checkpoint, allow_pickle=self.allow_pickle)
        except CheckpointNotFoundError:
            raise  # this worker may not see a file others see: retry elsewhere
        except CheckpointError as e:
            raise UnusableCheckpointError(str(e)) from e

    def __repr__(self) -> str:
        return f"NetworkProcessor({self.config_name}, {self.checkpoint})"
