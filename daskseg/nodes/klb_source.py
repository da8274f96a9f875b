"""``KlbSource``: importable for ported scripts, not supported (no KLB reader is available)."""

from __future__ import annotations

from ._unsupported import Unsupported


class KlbSource(Unsupported):
    """gunpowder's source for KLB files (pyklb). Not supported: convert the files to Zarr (read
    them with pyklb, write with ``daskseg.io.write_array``) and use :class:`ZarrSource`."""

    instead = "convert the KLB files to Zarr (pyklb + daskseg.io.write_array) and use ZarrSource"
