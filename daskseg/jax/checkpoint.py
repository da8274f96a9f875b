"""Atomic training checkpoints: training state (parameters + optimizer state) and iteration.

Files are named as gunpowder names them, ``{basename}_checkpoint_{iteration}``. Each is written to
a hidden temporary file in the same directory, flushed and fsynced, then renamed into place, so a
crash mid-write leaves the previous checkpoint as the latest complete one; leftovers of such a
crash (``.{name}.partial-*``) are ignored and cleaned up.

The file is a pickle of ``{"format": "daskseg-checkpoint", "version": 1, "iteration": int,
"state": <pytree of numpy arrays>, "meta": dict}``. A bare pickled pytree (what gunpowder's JAX
Train node writes) loads as ``state`` with the iteration from the file name. Pickles run code when
loaded: load only checkpoints you wrote.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from ..errors import DaskSegError

logger = logging.getLogger(__name__)

FORMAT = "daskseg-checkpoint"
VERSION = 1


class CheckpointError(DaskSegError, RuntimeError):
    """A checkpoint is missing, unreadable or not a daskseg/gunpowder checkpoint."""


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    path: str
    iteration: int
    state: Any
    meta: dict = field(default_factory=dict)


def checkpoint_name(basename: str, iteration: int) -> str:
    """``{basename}_checkpoint_{iteration}``, gunpowder's naming."""
    return f"{basename}_checkpoint_{int(iteration)}"


def list_checkpoints(basename: str) -> list[tuple[int, str]]:
    """``(iteration, path)`` of the complete checkpoints of ``basename``, oldest first."""
    directory, prefix = os.path.split(basename)
    pattern = re.compile(re.escape(prefix) + r"_checkpoint_(\d+)$")
    found = []
    for path in glob.glob(glob.escape(basename) + "_checkpoint_*"):
        m = pattern.match(os.path.basename(path))
        if m and os.path.isfile(path):
            found.append((int(m.group(1)), path))
    return sorted(found)


def _to_numpy(tree: Any) -> Any:
    tree = jax.device_get(tree)
    return jax.tree.map(lambda x: np.asarray(x) if isinstance(x, (np.ndarray, np.generic, jax.Array)) else x, tree)


def save_checkpoint(basename: str, iteration: int, state: Any, meta: dict | None = None) -> str:
    """Write ``state`` (any pytree) and ``iteration`` atomically; returns the checkpoint path."""
    path = checkpoint_name(basename, iteration)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "iteration": int(iteration),
        "state": _to_numpy(state),
        "meta": dict(meta or {}),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.partial-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:  # some file systems cannot fsync a directory; the file itself is synced
        logger.debug("could not fsync %s: %s", directory, e)
    logger.info("saved checkpoint %s (iteration %d)", path, iteration)
    return path


def load_checkpoint(path: str) -> Checkpoint:
    """Load a daskseg checkpoint, or a gunpowder JAX one (a bare pickled pytree)."""
    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path!r} does not exist") from None
    except Exception as e:
        raise CheckpointError(f"checkpoint {path!r} could not be read: {type(e).__name__}: {e}") from e
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        if int(payload.get("version", 0)) > VERSION:
            raise CheckpointError(f"checkpoint {path!r} has version {payload['version']}, newer than this daskseg")
        return Checkpoint(path, int(payload["iteration"]), payload["state"], payload.get("meta", {}))
    m = re.search(r"_checkpoint_(\d+)$", os.path.basename(path))
    return Checkpoint(path, int(m.group(1)) if m else 0, payload, {"gunpowder": True})


def latest_checkpoint(basename: str) -> Checkpoint | None:
    """The newest readable checkpoint of ``basename`` (None if none); unreadable newer ones are skipped with a warning."""
    for iteration, path in reversed(list_checkpoints(basename)):
        try:
            return load_checkpoint(path)
        except CheckpointError as e:
            logger.warning("skipping unreadable checkpoint %s: %s", path, e)
    return None


def remove_partial_checkpoints(basename: str) -> None:
    """Delete temporary files left by a crash during ``save_checkpoint``."""
    directory, prefix = os.path.split(basename)
    for path in glob.glob(os.path.join(glob.escape(directory or "."), f".{glob.escape(prefix)}_checkpoint_*.partial-*")):
        try:
            os.unlink(path)
            logger.info("removed partial checkpoint %s", path)
        except OSError as e:
            logger.warning("could not remove partial checkpoint %s: %s", path, e)


def prune_checkpoints(basename: str, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints of ``basename``."""
    if keep is None or keep <= 0:
        return
    for _, path in list_checkpoints(basename)[:-keep]:
        try:
            os.unlink(path)
            logger.info("removed old checkpoint %s", path)
        except OSError as e:
            logger.warning("could not remove old checkpoint %s: %s", path, e)
