"""daskseg: neuron segmentation of large 3D EM volumes on Dask, with gunpowder's pipeline API.

``import daskseg as gp`` gives the gunpowder names (``Coordinate``, ``Roi``, ``ArrayKey``,
``GraphKey``, ``Graph``, ``BatchRequest``, ``build``, the nodes). ``gp.jax`` (Train, Predict) is imported on first use, so
data workers never load JAX.
"""

from __future__ import annotations

import importlib

from . import config
from .array import Array, ArrayKey, ArrayKeys, ArraySpec
from .batch import Batch, BatchRequest, ProviderSpec, set_seed
from .errors import (
    BatchRequestError,
    DaskSegError,
    PipelineRequestError,
    PipelineSetupError,
    PipelineTeardownError,
)
from .geometry import Coordinate, Roi
from .graph import Edge, Graph, GraphKey, GraphKeys, GraphSpec, Node
from .nodes import *  # noqa: F403
from .nodes import __all__ as _node_names
from .pipeline import BatchFilter, BatchProvider, Pipeline, build
from .profiling import ProfilingStats, Timing

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("jax", "models", "blockwise", "synth", "segment", "io", "cluster")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'daskseg' has no attribute {name!r}")


__all__ = [
    "Array",
    "ArrayKey",
    "ArrayKeys",
    "ArraySpec",
    "Batch",
    "BatchFilter",
    "BatchProvider",
    "BatchRequest",
    "Coordinate",
    "Edge",
    "Graph",
    "GraphKey",
    "GraphKeys",
    "GraphSpec",
    "Node",
    "BatchRequestError",
    "DaskSegError",
    "PipelineRequestError",
    "PipelineSetupError",
    "PipelineTeardownError",
    "Pipeline",
    "ProfilingStats",
    "ProviderSpec",
    "Roi",
    "Timing",
    "build",
    "set_seed",
    *_node_names,
]
