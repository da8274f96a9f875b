"""The error the segment package raises: bad affinity or label arrays, named with their shapes."""

from ..errors import DaskSegError


class SegmentError(DaskSegError, ValueError):
    """Affinities, fragments or label arrays do not fit together (shape, channels, neighbourhood)."""
