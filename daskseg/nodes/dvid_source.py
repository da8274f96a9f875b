"""``DvidSource``: importable for ported scripts, not supported (it needs a DVID server)."""

from __future__ import annotations

from ._unsupported import Unsupported


class DvidSource(Unsupported):
    """gunpowder's source for a DVID server. Not supported: export the volume to Zarr (e.g. with
    DVID's own export) and read it with :class:`ZarrSource`."""

    instead = "export the volume to Zarr and use ZarrSource (or Hdf5Source for an HDF5 export)"
