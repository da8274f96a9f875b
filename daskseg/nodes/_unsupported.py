"""A base for gunpowder names daskseg keeps importable but cannot run (services or formats absent)."""

from __future__ import annotations


class Unsupported:
    """Raises ``NotImplementedError`` naming what to use instead, as soon as it is constructed."""

    instead: str = ""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} is not supported by daskseg; {self.instead}")
