"""A ``PreCache``'s upstream pipeline on the Dask workers: shipped once (pickled, with locks
and thread-local stores as new ones), built on first use in each worker and kept in the worker's
state registry (``daskseg.worker_state``, kind ``"pipelines"``) until the PreCache is torn down.
"""

from __future__ import annotations

import logging

from ..batch import Batch, BatchRequest
from ..errors import PipelineError
from ..pipeline import Pipeline
from ..pipeline.shipping import build_shipped, pack_pipeline
from ..worker_state import STATE

logger = logging.getLogger(__name__)


def _upstream_tree(node) -> Pipeline:
    return Pipeline(node, [_upstream_tree(up) for up in node.get_upstream_providers()])


def pack_upstream(node) -> bytes:
    """Pickle the pipeline ending in ``node``, naming the node that fails.

    Its nodes travel with their random-stream names, so on the workers they draw what they draw here.
    """
    return pack_pipeline(_upstream_tree(node), "PreCache")


def _make_plugin_class() -> type:
    # distributed is imported when a PreCache is set up (or a worker unpickles the plugin), not by
    # `import daskseg`; the class pickles by reference through this module's __getattr__
    from distributed.diagnostics.plugin import WorkerPlugin

    class _PipelinePlugin(WorkerPlugin):
        """Worker plugin holding one PreCache's upstream pipeline: set up on first use, torn down on removal.

        The worker's threads share the one pipeline: daskseg's nodes serve concurrent requests
        (``thread_safe``), and other nodes serve them one at a time.
        """

        idempotent = False

        def __init__(self, token: str, payload: bytes):
            self.token = token
            self.payload = payload

        def setup(self, worker=None) -> None:
            self._closed = False

        def teardown(self, worker=None) -> None:
            self._closed = True
            STATE.release("pipelines", lambda key: key == self.token)

        def pipeline(self) -> Pipeline:
            if self._closed:
                raise PipelineError(f"the pipeline of PreCache {self.token} was torn down on this worker")
            return STATE.get("pipelines", self.token, self._build, release=Pipeline.teardown)

        def _build(self) -> Pipeline:
            logger.debug("setting up the upstream pipeline of PreCache %s", self.token)
            return build_shipped(self.payload)

        def __getstate__(self):
            return {"token": self.token, "payload": self.payload}

    _PipelinePlugin.__qualname__ = "_PipelinePlugin"
    _PipelinePlugin.__module__ = __name__
    return _PipelinePlugin


def plugin_class() -> type:
    cls = globals().get("_PipelinePlugin")
    if cls is None:
        cls = globals()["_PipelinePlugin"] = _make_plugin_class()
    return cls


def __getattr__(name: str):
    # how a worker finds the plugin class when it unpickles a plugin
    if name == "_PipelinePlugin":
        return plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def plugin_name(token: str) -> str:
    return f"daskseg-precache-{token}"


def produce_batch(token: str, request: BatchRequest) -> Batch:
    """The task run on a Dask worker: one batch of PreCache ``token``'s upstream pipeline for ``request``."""
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(plugin_name(token))
    if plugin is None:
        raise PipelineError(
            f"Dask worker {worker.address} has no pipeline for PreCache {token}: it was torn down, or "
            "the worker missed the plugin registration"
        )
    pipeline: Pipeline = plugin.pipeline()  # type: ignore[attr-defined]  # a _PipelinePlugin
    return pipeline.request_batch(request)
