"""The gunpowder provider protocol: nodes, ``+`` chaining and ``build()``."""

from .filter import BatchFilter
from .pipeline import Pipeline, build
from .provider import BatchProvider

__all__ = ["BatchFilter", "BatchProvider", "Pipeline", "build"]
