"""Chaining nodes with ``+`` into a ``Pipeline``, and ``build()`` to set it up and tear it down."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from ..batch import Batch, BatchRequest, ProviderSpec
from ..errors import PipelineError
from .provider import BatchProvider
from .streams import stream_names

logger = logging.getLogger(__name__)

# the built pipeline each node that is set up in this process belongs to, by id(node)
_BUILT: dict[int, Pipeline] = {}


class Pipeline:
    """A tree of nodes: ``output`` is the most downstream node, ``children`` its upstream pipelines."""

    def __init__(self, node: BatchProvider | Pipeline, children: list[Pipeline] | None = None):
        if isinstance(node, Pipeline):
            children = node.children
            node = node.output
        if not isinstance(node, BatchProvider):
            raise PipelineError(f"pipelines are made of BatchProviders, not {type(node).__name__}")
        self.output: BatchProvider = node
        self.children: list[Pipeline] = list(children or [])
        self._set_up: list[BatchProvider] = []
        self._builds = 0

    def __getstate__(self) -> dict:
        # a pickled pipeline (shipped to a Dask worker) arrives not built
        state = dict(self.__dict__)
        state["_builds"], state["_set_up"] = 0, []
        return state

    def copy(self) -> Pipeline:
        return Pipeline(self.output, [c.copy() for c in self.children])

    def __add__(self, other) -> Pipeline:
        if isinstance(other, BatchProvider):
            other = Pipeline(other)
        if not isinstance(other, Pipeline):
            return NotImplemented
        result = other.copy()
        for leaf in result._leaves():
            leaf.children.append(self.copy())
        return result

    def __radd__(self, other) -> Pipeline:
        if not isinstance(other, tuple):
            return NotImplemented
        upstreams = []
        for o in other:
            if isinstance(o, BatchProvider):
                o = Pipeline(o)
            if not isinstance(o, Pipeline):
                raise PipelineError(f"a tuple joined with + must hold pipelines or nodes, not {type(o).__name__}")
            upstreams.append(o)
        result = self.copy()
        leaves = result._leaves()
        for leaf in leaves:
            leaf.children.extend(u.copy() for u in upstreams)
        return result

    def _leaves(self) -> list[Pipeline]:
        if not self.children:
            return [self]
        return [leaf for c in self.children for leaf in c._leaves()]

    def nodes(self) -> Iterator[BatchProvider]:
        """All nodes, upstream first (post-order)."""
        for child in self.children:
            yield from child.nodes()
        yield self.output

    # --- life cycle --------------------------------------------------------------------------
    def setup(self) -> None:
        """Wire every node to its upstreams, name their random streams and set them up, upstream first.

        Building a pipeline that is already built (a nested ``with build(pipeline):``) only counts:
        the nodes are set up once and torn down when the outermost build ends, as in gunpowder. A
        node can be in one built pipeline at a time. A node that arrives with a stream name while
        not set up here (shipped to a Dask worker by PreCache) keeps it.
        """
        self._builds += 1
        if self._builds > 1:
            return
        tree = list(self._post_order())
        for node_pipeline in tree:
            owner = _BUILT.get(id(node_pipeline.output))
            if owner is not None:
                raise PipelineError(
                    f"{node_pipeline.output.name()} is already set up in the built pipeline {owner!r}; a node can "
                    "be in one built pipeline at a time (nesting `with build(p):` of that same pipeline is fine)"
                )
        names = stream_names(p.output for p in tree)
        for node_pipeline, name in zip(tree, names):
            node = node_pipeline.output
            node.remove_upstream_providers()
            for child in node_pipeline.children:
                node.add_upstream_provider(child.output)
            if node.random_stream is None:
                node.set_random_stream(name)
            _BUILT[id(node)] = self
            self._set_up.append(node)
            try:
                node.internal_setup()
            except Exception as e:
                e.add_note(f"while setting up {node.name()} in {self!r}")
                raise

    def _post_order(self) -> Iterator[Pipeline]:
        for child in self.children:
            yield from child._post_order()
        yield self

    def teardown(self) -> None:
        """Tear down every node that was set up, downstream first; raises the first error after all ran.

        In a nested build, only the outermost teardown tears down.
        """
        if self._builds > 1:
            self._builds -= 1
            return
        self._builds = 0
        first_error = None
        for node in reversed(self._set_up):
            try:
                if node.is_set_up:
                    node.internal_teardown()
            except Exception as e:  # noqa: BLE001 - keep tearing down the rest, then re-raise
                logger.error("tearing down %s failed: %s", node.name(), e)
                first_error = first_error or e
            finally:
                _BUILT.pop(id(node), None)
                node.set_random_stream(None)
        self._set_up = []
        if first_error is not None:
            raise first_error

    def request_batch(self, request: BatchRequest) -> Batch:
        return self.output.request_batch(request)

    @property
    def spec(self) -> ProviderSpec:
        return self.output.spec

    def __repr__(self) -> str:
        if not self.children:
            return self.output.name()
        ups = ", ".join(repr(c) for c in self.children)
        return f"({ups}) -> {self.output.name()}" if len(self.children) > 1 else f"{ups} -> {self.output.name()}"


@contextlib.contextmanager
def build(pipeline: Pipeline | BatchProvider) -> Iterator[Pipeline | BatchProvider]:
    """Set every node up (upstream first) and tear all down on exit, also on error.

    ``with build(pipeline): pipeline.request_batch(request)``
    """
    if isinstance(pipeline, Pipeline):
        tree = pipeline
    else:  # a node: the pipeline it is the output of if that is built (nested builds), else its own
        built = _BUILT.get(id(pipeline))
        tree = built if built is not None and built.output is pipeline else Pipeline(pipeline)
    try:
        tree.setup()
        yield pipeline
    finally:
        tree.teardown()
