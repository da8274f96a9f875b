"""Which random stream each node of a pipeline draws from: keyed by the node's identity, not its position.

A node's stream is named by its ``seed_name`` when it has one, else by its class and its index
among the nodes of that class in the pipeline (upstream first): ``ElasticAugment#0``. Inserting a
node of another class (a ``Normalize`` upstream) leaves every other node's draws as they were.
The name is given to the node when its pipeline is set up and travels with it (PreCache ships it
to the Dask workers inside the pickled pipeline), so a node draws the same numbers wherever the
pipeline around it is set up.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable

from .provider import BatchProvider


def stream_names(nodes: Iterable[BatchProvider]) -> list[str]:
    """The stream name of each of ``nodes`` (a pipeline's nodes, upstream first)."""
    seen: collections.Counter[str] = collections.Counter()
    names = []
    for node in nodes:
        if node.seed_name is not None:
            names.append(str(node.seed_name))
            continue
        cls = type(node).__qualname__
        names.append(f"{cls}#{seen[cls]}")
        seen[cls] += 1
    return names


def stream_key(name: str) -> list[int]:
    """The integers a stream name adds to a request's seed (stable across processes and runs)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return [int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")]
