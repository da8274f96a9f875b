"""What a process (a Dask worker, or the client itself) keeps between tasks, in one registry.

Three things are worth keeping from one task to the next, and all live here, each under its kind:

- ``"datasets"``: open input/output handles of a blockwise run (``blockwise/runner.py``), keyed by
  the run's token, so that a dataset recreated between runs is reopened;
- ``"processors"``: the state a ``BlockProcessor`` builds once (a loaded, compiled network;
  ``blockwise/processor.py``), keyed by its ``cache_key()``;
- ``"pipelines"``: the built upstream pipeline of a ``PreCache`` (``nodes/_precache_worker.py``),
  keyed by the PreCache's token.

One eviction rule for all: a kind holds at most ``limit`` entries, and the least recently used one
goes first; whoever owns entries may also release them early (``release``: a run releases the
datasets of earlier runs, a PreCache's worker plugin its pipeline when it is torn down). A released
entry's ``release`` callback (closing a file, tearing a pipeline down) runs outside the lock.
Building an entry holds only that entry's lock, so a network compiling does not stall a dataset
being opened.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How many entries each kind keeps at most (least recently used released first).
LIMITS: dict[str, int] = {"datasets": 64, "processors": 4, "pipelines": 16}


class WorkerState:
    """A registry of what this process keeps between tasks (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, OrderedDict[Hashable, tuple[Any, Callable[[Any], None] | None]]] = {}
        self._building: dict[tuple[str, Hashable], threading.Lock] = {}

    def get(
        self,
        kind: str,
        key: Hashable,
        build: Callable[[], T],
        *,
        release: Callable[[T], None] | None = None,
    ) -> T:
        """The entry of ``kind`` under ``key``, built by ``build()`` on first use.

        Args:
            kind (str): one of ``LIMITS``' kinds.
            key (Hashable): what identifies the entry within its kind.
            build (callable): makes the entry (called once per key, under the key's own lock).
            release (callable, optional): ``release(entry)`` when the entry is evicted or released.
        """
        found = self._lookup(kind, key)
        if found is not _MISSING:
            return found
        with self._lock:
            building = self._building.setdefault((kind, key), threading.Lock())
        with building:
            found = self._lookup(kind, key)
            if found is not _MISSING:
                return found
            try:
                value = build()
            finally:
                with self._lock:
                    self._building.pop((kind, key), None)
            with self._lock:
                entries = self._entries.setdefault(kind, OrderedDict())
                entries[key] = (value, release)
                evicted = []
                while len(entries) > LIMITS.get(kind, 16):
                    evicted.append(entries.popitem(last=False))
        for old_key, entry in evicted:
            logger.debug("worker state: %s %r evicted (least recently used)", kind, old_key)
            _release(entry)
        return value

    def _lookup(self, kind: str, key: Hashable) -> Any:
        with self._lock:
            entries = self._entries.get(kind)
            if entries is None or key not in entries:
                return _MISSING
            entries.move_to_end(key)
            return entries[key][0]

    def release(self, kind: str, which: Callable[[Hashable], bool]) -> int:
        """Release the entries of ``kind`` whose key ``which(key)`` is true; returns how many."""
        with self._lock:
            entries = self._entries.get(kind, OrderedDict())
            gone = [(k, entries.pop(k)) for k in [k for k in entries if which(k)]]
        for _, entry in gone:
            _release(entry)
        return len(gone)

    def count(self, kind: str) -> int:
        """How many entries of ``kind`` this process holds."""
        with self._lock:
            return len(self._entries.get(kind, ()))


_MISSING = object()


def _release(entry: tuple[Any, Callable[[Any], None] | None]) -> None:
    value, release = entry
    if release is not None:
        release(value)


#: This process's registry.
STATE = WorkerState()
