"""Pipeline nodes, one a module, named as in gunpowder."""

from .hdf5_source import Hdf5Source
from .zarr_source import ZarrSource

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
