"""Training checkpoints: a format that cannot run code, written atomically; names and lookup in one place.

Files are named as gunpowder names them, ``{basename}_checkpoint_{iteration}`` (``checkpoint_name``,
``list_checkpoints``, ``resolve_checkpoint_path``: every other module builds and finds names
through these). Each file is written to a hidden temporary file in the same directory, flushed and
fsynced, then renamed into place, so a crash or a full disk mid-write leaves the previous
checkpoint as the latest complete one; leftovers of such a crash (``.{name}.partial-*``) are
ignored and cleaned up.

**Format** (version 2): an uncompressed zip archive holding ``checkpoint.json`` (format, version,
iteration, metadata, and the structure of the state pytree: dicts, lists, tuples, named tuples,
``None``) and one ``.npy`` file per array leaf, read with ``allow_pickle=False``. Loading it runs no
code from the file; zip CRCs catch truncated or corrupted files. Named tuples (optax states) come
back as named tuples of the same name and fields; ``restore_like`` puts a loaded state into the
exact structure of a template (what a model's ``initialize`` returns).

**Pickles** (gunpowder's JAX checkpoints, which are pickled pytrees, and daskseg's before
version 2) run arbitrary code when loaded, so they are refused unless the caller opts in with
``allow_pickle=True`` (``--trust-pickle`` on the command line). Opt in only for files you made or
fully trust.

**One run per basename**: a training run holds ``{basename}.lock`` (``lock_basename``, an ``flock``
released when the process ends, however it ends) while it resumes, trains and checkpoints; a second
process asking for the same basename gets a ``CheckpointLockedError`` naming the holder's pid.

``open_checkpoint`` is the one call that opens and validates a checkpoint (exists, not empty or
truncated, a known format, and optionally fits a network config) with an error that says which.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import glob
import io
import json
import logging
import os
import re
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import (
    CheckpointError,
    CheckpointLockedError,
    CheckpointNotFoundError,
    CheckpointPickleError,
    CheckpointWriteError,
)

logger = logging.getLogger(__name__)

FORMAT = "daskseg-checkpoint"
VERSION = 2
_MANIFEST = "checkpoint.json"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_HINT = (
    "pickles can run arbitrary code when loaded, so daskseg loads them only when asked: pass allow_pickle=True "
    "(--trust-pickle on the command line) if you trust the file"
)


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Args:
        path: the file.
        iteration: the training iteration it holds.
        state: the training state (``{"params", "opt_state"}`` for the Flax U-Net) as numpy arrays.
        meta: what the writer recorded (e.g. ``{"model": "FlaxUNetModel"}``); ``{"pickle": True}``
            for a loaded pickle.
    """

    path: str
    iteration: int
    state: Any
    meta: dict = field(default_factory=dict)


# --- names -----------------------------------------------------------------------------------
def checkpoint_name(basename: str | os.PathLike, iteration: int) -> str:
    """``{basename}_checkpoint_{iteration}``, gunpowder's naming."""
    return f"{os.fspath(basename)}_checkpoint_{int(iteration)}"


def log_name(basename: str | os.PathLike) -> str:
    """``{basename}_log.csv``: the Train node's loss log next to its checkpoints."""
    return f"{os.fspath(basename)}_log.csv"


def lock_name(basename: str | os.PathLike) -> str:
    """``{basename}.lock``: held by the one training run that writes ``basename``'s checkpoints and log."""
    return f"{os.fspath(basename)}.lock"


def basename_for_model(model: Any) -> str | None:
    """The checkpoint basename gunpowder would use for ``model`` given by name or config path, else None.

    ``"train_net"`` → ``train_net``; ``"nets/train_net_config.json"`` → ``nets/train_net``;
    ``"net.json"`` → ``net`` (gunpowder's TensorFlow Train names checkpoints after the graph).
    """
    if not isinstance(model, (str, os.PathLike)):
        return None
    name = os.fspath(model)
    for suffix in ("_config.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def iteration_from_name(path: str | os.PathLike) -> int | None:
    """The iteration in a ``..._checkpoint_N`` file name, or None."""
    m = re.search(r"_checkpoint_(\d+)$", os.path.basename(os.fspath(path)))
    return int(m.group(1)) if m else None


def list_checkpoints(basename: str | os.PathLike) -> list[tuple[int, str]]:
    """``(iteration, path)`` of the checkpoint files of ``basename``, oldest first."""
    basename = os.fspath(basename)
    prefix = os.path.basename(basename)
    pattern = re.compile(re.escape(prefix) + r"_checkpoint_(\d+)$")
    found = []
    for path in glob.glob(glob.escape(basename) + "_checkpoint_*"):
        m = pattern.match(os.path.basename(path))
        if m and os.path.isfile(path):
            found.append((int(m.group(1)), path))
    return sorted(found)


def resolve_checkpoint_path(checkpoint: str | os.PathLike) -> str:
    """The absolute checkpoint file to use: ``checkpoint`` itself, or the newest ``{checkpoint}_checkpoint_N``.

    Resolve once, on the client, so every worker loads the same weights even while training keeps
    writing newer checkpoints.
    """
    path = os.path.abspath(os.fspath(checkpoint))
    if os.path.isfile(path):
        return path
    found = list_checkpoints(path)
    if not found:
        raise CheckpointNotFoundError(
            f"no checkpoint file {path!r} and no checkpoints {path}_checkpoint_*; give a checkpoint file written "
            f"by training (e.g. train_net_checkpoint_10000) or its basename (train_net)"
        )
    return found[-1][1]


# --- pytree structure <-> JSON ---------------------------------------------------------------
_SCALARS = (bool, int, float, complex)


def _encode(node: Any, leaves: list[np.ndarray]) -> Any:
    if node is None:
        return None
    if isinstance(node, dict):
        items = []
        for k, v in node.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"checkpoint state dict keys must be str or int, got {k!r}")
            items.append([k, _encode(v, leaves)])
        return {"dict": items}
    if isinstance(node, tuple) and hasattr(type(node), "_fields"):
        return {"namedtuple": type(node).__name__, "fields": list(type(node)._fields),  # type: ignore[attr-defined]
                "items": [_encode(v, leaves) for v in node]}
    if isinstance(node, (list, tuple)):
        return {type(node).__name__: [_encode(v, leaves) for v in node]}
    if isinstance(node, np.ndarray) or isinstance(node, (np.generic, *_SCALARS)) or hasattr(node, "__array__"):
        leaf: dict[str, Any] = {"leaf": len(leaves)}
        if isinstance(node, _SCALARS):
            leaf["python"] = type(node).__name__
        leaves.append(np.asarray(node))
        return leaf
    import jax

    children, _ = jax.tree_util.tree_flatten(node, is_leaf=lambda x: x is not node)
    if len(children) == 1 and children[0] is node:
        raise TypeError(f"cannot store a {type(node).__qualname__} in a checkpoint (only arrays, numbers and pytrees)")
    # another registered pytree node (e.g. a Flax State): kept as its children, restored by restore_like
    return {"node": f"{type(node).__module__}.{type(node).__qualname__}", "items": [_encode(c, leaves) for c in children]}


_NAMEDTUPLES: dict[tuple[str, tuple[str, ...]], type] = {}


def _namedtuple(name: str, fields: list[str]) -> type:
    """A named tuple type of this name and fields (one per pair), which pickles by name and fields."""
    key = (str(name), tuple(str(f) for f in fields))
    if key not in _NAMEDTUPLES:
        base = collections.namedtuple(key[0], key[1])  # type: ignore[misc]  # validates the names as identifiers

        def __reduce__(self):
            return _make_namedtuple, (key[0], list(key[1]), tuple(self))

        _NAMEDTUPLES[key] = type(key[0], (base,), {"__slots__": (), "__reduce__": __reduce__})
    return _NAMEDTUPLES[key]


def _make_namedtuple(name: str, fields: list[str], values: tuple) -> tuple:
    return _namedtuple(name, fields)(*values)


def _decode(node: Any, leaves: list[np.ndarray]) -> Any:
    if node is None:
        return None
    if not isinstance(node, dict) or len(node) == 0:
        raise ValueError(f"unexpected structure entry {node!r}")
    if "leaf" in node:
        value = leaves[int(node["leaf"])]
        kind = node.get("python")
        return {"bool": bool, "int": int, "float": float, "complex": complex}[kind](value) if kind else value
    if "dict" in node:
        return {k: _decode(v, leaves) for k, v in node["dict"]}
    if "namedtuple" in node:
        return _namedtuple(node["namedtuple"], node["fields"])(*(_decode(v, leaves) for v in node["items"]))
    if "list" in node:
        return [_decode(v, leaves) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, leaves) for v in node["tuple"])
    if "node" in node:
        return tuple(_decode(v, leaves) for v in node["items"])
    raise ValueError(f"unexpected structure entry with keys {sorted(node)}")


def _array_entry(a: np.ndarray) -> tuple[np.ndarray, dict]:
    """The array as stored (non-builtin dtypes such as bfloat16 as raw bytes) and its description."""
    if a.dtype.hasobject:
        raise TypeError(f"cannot store an array of dtype {a.dtype} (Python objects) in a checkpoint")
    if np.dtype(a.dtype.str) == a.dtype:  # round-trips through the .npy header
        return a, {}
    return np.ascontiguousarray(a).view(np.uint8).reshape(*a.shape, a.dtype.itemsize), {"bytes_of": a.dtype.name}


def _array_from_entry(a: np.ndarray, desc: dict) -> np.ndarray:
    name = desc.get("bytes_of")
    if name is None:
        return a
    import ml_dtypes

    dtype = np.dtype(getattr(ml_dtypes, name))
    return a.view(dtype).reshape(a.shape[:-1])


# --- write -----------------------------------------------------------------------------------
def _to_numpy(tree: Any) -> Any:
    import jax

    return jax.device_get(tree)


def save_checkpoint(basename: str | os.PathLike, iteration: int, state: Any, meta: dict | None = None) -> str:
    """Write ``state`` (a pytree of arrays) and ``iteration`` atomically; returns the checkpoint path.

    Raises:
        CheckpointWriteError: the file could not be written (e.g. disk full); the message names the
            path and the cause, and no partial file is left behind.
    """
    path = checkpoint_name(basename, iteration)
    directory = os.path.dirname(path) or "."
    leaves: list[np.ndarray] = []
    structure = _encode(_to_numpy(state), leaves)
    entries = [_array_entry(a) for a in leaves]
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "iteration": int(iteration),
        "meta": dict(meta or {}),
        "structure": structure,
        "leaves": [{"shape": list(a.shape), "dtype": str(a.dtype), **desc} for a, (_, desc) in zip(leaves, entries)],
    }
    manifest_bytes = json.dumps(manifest).encode()
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.partial-", dir=directory)
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                zf.writestr(_MANIFEST, manifest_bytes)
                for i, (stored, _) in enumerate(entries):
                    with zf.open(f"leaves/{i:05d}.npy", "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, stored, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise CheckpointWriteError(
            f"could not write checkpoint {path}: {e.strerror or e}"
            + ("; free space and run again: training resumes from the last checkpoint"
               if e.errno in (errno.ENOSPC, errno.EDQUOT) else "")
        ) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
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


# --- read ------------------------------------------------------------------------------------
def _read_zip(path: str) -> Checkpoint:
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read(_MANIFEST))
            if manifest.get("format") != FORMAT:
                raise CheckpointError(f"checkpoint {path!r} is a zip file but not a daskseg checkpoint")
            if int(manifest.get("version", 0)) > VERSION:
                raise CheckpointError(
                    f"checkpoint {path!r} has format version {manifest['version']}, newer than this daskseg's "
                    f"{VERSION}; upgrade daskseg"
                )
            leaves = []
            for i, desc in enumerate(manifest["leaves"]):
                with zf.open(f"leaves/{i:05d}.npy") as f:
                    stored = np.lib.format.read_array(io.BytesIO(f.read()), allow_pickle=False)
                leaves.append(_array_from_entry(stored, desc))
                if list(leaves[-1].shape) != list(desc["shape"]):
                    raise CheckpointError(f"checkpoint {path!r}: array {i} has shape {leaves[-1].shape}, "
                                          f"the manifest says {tuple(desc['shape'])}")
            state = _decode(manifest["structure"], leaves)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, KeyError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(
            f"checkpoint {path!r} could not be read (truncated or corrupted?): {type(e).__name__}: {e}"
        ) from None
    return Checkpoint(path, int(manifest["iteration"]), state, dict(manifest.get("meta", {})))


def _read_pickle(path: str) -> Checkpoint:
    import pickle

    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
    except Exception as e:  # noqa: BLE001 - unpickling raises anything; re-raised as CheckpointError
        raise CheckpointError(
            f"checkpoint {path!r} could not be read (truncated or corrupted?): {type(e).__name__}: {e}"
        ) from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:  # daskseg before format version 2
        return Checkpoint(path, int(payload["iteration"]), payload["state"], {**payload.get("meta", {}), "pickle": True})
    return Checkpoint(path, iteration_from_name(path) or 0, payload, {"gunpowder": True, "pickle": True})


def load_checkpoint(path: str | os.PathLike, allow_pickle: bool = False) -> Checkpoint:
    """Load one checkpoint file.

    Args:
        path: the file (``train_net_checkpoint_1000``).
        allow_pickle: also load pickles (gunpowder's JAX checkpoints, daskseg's before format 2).
            A pickle can run arbitrary code when loaded: allow it only for files you trust.

    Raises:
        CheckpointNotFoundError: there is no such file.
        CheckpointPickleError: the file is a pickle and ``allow_pickle`` is False.
        CheckpointError: the file is empty, truncated, corrupted or of an unknown format.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"checkpoint {path!r} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {path!r} is a directory, not a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"checkpoint {path!r} could not be read: {e.strerror or e}") from None
    if not head:
        raise CheckpointError(f"checkpoint {path!r} could not be read: the file is empty (0 bytes)")
    if head == _ZIP_MAGIC:
        return _read_zip(path)
    if head[:1] == b"\x80":  # pickle protocol 2 and newer
        if not allow_pickle:
            raise CheckpointPickleError(f"checkpoint {path!r} is a pickle (gunpowder's JAX format, or daskseg's "
                                        f"before format 2); {_PICKLE_HINT}")
        logger.warning("loading pickled checkpoint %s (allowed by allow_pickle/--trust-pickle)", path)
        return _read_pickle(path)
    raise CheckpointError(f"checkpoint {path!r} could not be read: not a daskseg checkpoint (nor a pickle)")


def latest_checkpoint(basename: str | os.PathLike, allow_pickle: bool = False) -> Checkpoint | None:
    """The newest readable checkpoint of ``basename`` (None if none).

    Unreadable newer ones (truncated, corrupted) are skipped with a warning; a pickle that is not
    allowed raises ``CheckpointPickleError`` rather than silently training from an older state.
    """
    for _, path in reversed(list_checkpoints(basename)):
        try:
            return load_checkpoint(path, allow_pickle=allow_pickle)
        except CheckpointPickleError:
            raise
        except CheckpointError as e:
            logger.warning("skipping unreadable checkpoint %s: %s", path, e)
    return None


# --- validation --------------------------------------------------------------------------------
def params_from_state(state: Any) -> Any:
    """Bare parameters from a training state (``{"params", "opt_state"}``) or bare parameters."""
    if isinstance(state, dict) and "params" in state and "opt_state" in state:
        return state["params"]
    return state


def _keyed_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    import jax

    return {jax.tree_util.keystr(k): tuple(np.shape(v)) for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def check_fits_network(checkpoint: Checkpoint, network: Any) -> None:
    """Raise a ``CheckpointError`` unless the checkpoint's parameters have the network config's shapes.

    Args:
        checkpoint: a loaded checkpoint.
        network: a network config (``NetConfig``, dict, JSON path or name) or a ``UNetConfig``.
    """
    from ..models.config import UNetConfig, load_net_config
    from ..models.unet import parameter_shapes

    arch = network if isinstance(network, UNetConfig) else load_net_config(network).architecture
    expected = parameter_shapes(arch)
    found = _keyed_shapes(params_from_state(checkpoint.state))
    if found != expected:
        differ = [
            f"{k}: {found.get(k)} in the checkpoint, {expected.get(k)} in the network"
            for k in sorted(set(expected) | set(found))
            if found.get(k) != expected.get(k)
        ]
        raise CheckpointError(
            f"checkpoint {checkpoint.path!r} does not fit the network config: {len(differ)} parameter arrays differ "
            f"({'; '.join(differ[:3])}). Predict with the network config the checkpoint was trained with."
        )


def open_checkpoint(
    checkpoint: str | os.PathLike, network: Any = None, allow_pickle: bool = False
) -> Checkpoint:
    """Open and validate a checkpoint: the one call for client-side checks before any work starts.

    Args:
        checkpoint: a checkpoint file, or a basename (its newest ``{basename}_checkpoint_N``).
        network: if given, a network config (path, name, dict, ``NetConfig``, ``UNetConfig``) the
            checkpoint's parameters must fit.
        allow_pickle: also accept pickles (they can run code when loaded; see ``load_checkpoint``).

    Returns:
        The loaded ``Checkpoint`` (its ``path`` absolute).

    Raises:
        CheckpointNotFoundError, CheckpointPickleError, CheckpointError: naming the file and the problem.
    """
    loaded = load_checkpoint(resolve_checkpoint_path(checkpoint), allow_pickle=allow_pickle)
    if network is not None:
        check_fits_network(loaded, network)
    return loaded


def restore_like(template: Any, state: Any, path: str = "the checkpoint") -> Any:
    """``state``'s arrays in the pytree structure of ``template`` (e.g. ``jax.eval_shape(model.initialize, ...)``).

    Leaves are matched in order; their number and shapes must agree, else a ``CheckpointError``
    names the first difference.
    """
    import jax

    t_paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    s_paths = jax.tree_util.tree_flatten_with_path(state)[0]
    if len(t_paths) != len(s_paths):
        raise CheckpointError(
            f"{path} does not fit the model: it holds {len(s_paths)} arrays, the model's state has {len(t_paths)}"
        )
    for (tk, tv), (sk, sv) in zip(t_paths, s_paths):
        if tuple(np.shape(tv)) != tuple(np.shape(sv)):
            raise CheckpointError(
                f"{path} does not fit the model: {jax.tree_util.keystr(sk)} has shape {tuple(np.shape(sv))}, "
                f"the model's {jax.tree_util.keystr(tk)} has {tuple(np.shape(tv))}"
            )
    return jax.tree_util.tree_unflatten(treedef, [np.asarray(v) for _, v in s_paths])


# --- one run per basename ------------------------------------------------------------------------
_held: dict[str, list[int]] = {}  # lock file -> [fd, holders in this process]
_held_mutex = threading.Lock()


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def acquire_basename(basename: str | os.PathLike) -> str:
    """Take the lock of ``basename`` for this process (re-entrant within it); returns the lock file.

    Raises:
        CheckpointLockedError: another process holds it (a second training run on these checkpoints).
        CheckpointWriteError: the lock file cannot be created (e.g. the directory is read-only).
    """
    path = os.path.abspath(lock_name(basename))
    with _held_mutex:
        if path in _held:
            _held[path][1] += 1
            return path
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise CheckpointWriteError(f"could not create the training lock {path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CheckpointLockedError(
                f"checkpoints {os.path.abspath(os.fspath(basename))}_checkpoint_* are in use by another training run "
                f"({_holder(path)} holds {path}); wait for it to finish or stop it, or give this run another "
                f"checkpoint_basename"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[path] = [fd, 1]
        return path


def release_basename(basename: str | os.PathLike) -> None:
    """Give back one hold of ``basename``'s lock taken by ``acquire_basename`` (the last one unlocks)."""
    path = os.path.abspath(lock_name(basename))
    with _held_mutex:
        held = _held.get(path)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _held[path]
            os.close(held[0])  # releases the flock; the file stays (removing it would race a waiting run)


@contextlib.contextmanager
def lock_basename(basename: str | os.PathLike) -> Iterator[str]:
    """Hold ``basename``'s training lock for the ``with`` block (see ``acquire_basename``)."""
    path = acquire_basename(basename)
    try:
        yield path
    finally:
        release_basename(basename)


# --- housekeeping ------------------------------------------------------------------------------
def remove_partial_checkpoints(basename: str | os.PathLike) -> None:
    """Delete temporary files left by a crash during ``save_checkpoint``."""
    directory, prefix = os.path.split(os.fspath(basename))
    for path in glob.glob(os.path.join(glob.escape(directory or "."), f".{glob.escape(prefix)}_checkpoint_*.partial-*")):
        try:
            os.unlink(path)
            logger.info("removed partial checkpoint %s", path)
        except OSError as e:
            logger.warning("could not remove partial checkpoint %s: %s", path, e)


def prune_checkpoints(basename: str | os.PathLike, keep: int | None) -> None:
    """Delete all but the newest ``keep`` checkpoints of ``basename``."""
    if keep is None or keep <= 0:
        return
    for _, path in list_checkpoints(basename)[:-keep]:
        try:
            os.unlink(path)
            logger.info("removed old checkpoint %s", path)
        except OSError as e:
            logger.warning("could not remove old checkpoint %s: %s", path, e)
