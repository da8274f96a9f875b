"""Shipping a pipeline to other processes (Dask workers): pickled with cloudpickle, with the locks
and thread-local stores of its nodes sent as new, empty ones, naming the node that cannot go."""

from __future__ import annotations

import io
import threading
from typing import Any

from ..errors import PipelineError
from .pipeline import Pipeline

_LOCK_TYPES: dict[type, Any] = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


def dumps(obj: object) -> bytes:
    """cloudpickle of ``obj``, with locks and thread-local stores shipped as new, empty ones."""
    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):
            if type(obj) in _LOCK_TYPES:
                return _LOCK_TYPES[type(obj)], ()
            if type(obj) is threading.local:
                return threading.local, ()
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def pack_pipeline(tree: Pipeline, what: str) -> bytes:
    """``dumps(tree)``; if it fails, a ``PipelineError`` naming the node that does not pickle.

    Args:
        tree (Pipeline): the pipeline to ship (not built).
        what (str): who ships it, for the message (e.g. ``'PreCache'``).
    """
    try:
        return dumps(tree)
    except Exception as e:
        for n in tree.nodes():
            try:
                dumps(n)
            except Exception as node_error:
                raise PipelineError(
                    f"{what} cannot ship its pipeline to Dask workers: node {n.name()} does not "
                    f"pickle ({type(node_error).__name__}: {node_error}). Keep open handles out of node "
                    "attributes, or define __getstate__"
                ) from node_error
        raise PipelineError(f"{what} cannot pickle its pipeline {tree!r}: {e}") from e


def build_shipped(payload: bytes) -> Pipeline:
    """The pipeline ``pack_pipeline`` made ``payload`` from, unpickled and set up (torn down again
    if its setup fails), as a worker uses it."""
    import cloudpickle

    tree: Pipeline = cloudpickle.loads(payload)
    try:
        tree.setup()
    except BaseException:
        tree.teardown()
        raise
    return tree
