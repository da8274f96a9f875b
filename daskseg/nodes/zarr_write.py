"""``ZarrWrite``: assemble the arrays of passing batches in one Zarr container."""

from __future__ import annotations

from .dataset_write import DatasetWrite


class ZarrWrite(DatasetWrite):
    """Assemble arrays of passing batches in arrays of one Zarr (v3) container.

    Useful below a :class:`Scan` to store the chunks it drives through the pipeline without holding
    the whole volume in memory. On the first batch that contains an array, its Zarr array is created
    covering the ROI that upstream provides for that array (``self.spec[key].roi``), with the
    array's voxel size, dtype and channel axes, and chunks that tile the passing blocks: an OME-Zarr
    image group (level ``s0`` inside, funlib attributes on it; an ``image-label`` for integer arrays
    that are not interpolatable), so napari, neuroglancer and funlib place it in nanometres.
    Every passing array is then written at its ROI (the part inside the dataset). An existing array
    with the same shape, dtype, voxel size and ROI is written into; one that differs raises.
    Requests and batches pass through unchanged.

    Args:

        dataset_names (``dict[ArrayKey, str]``):

            Which array goes into which dataset, e.g. ``{raw: 'volumes/raw', pred_affs: 'volumes/pred_affs'}``
            (a leading ``/`` is allowed).

        output_dir (``str``):

            Directory of the container; created if missing.

        output_filename (``str``):

            Name of the ``.zarr`` container; created if missing.

        compression_type (``str`` or ``int``, optional):

            ``'zstd'`` (Blosc), ``'gzip'`` (an int also means gzip), ``'default'``, or None for no
            compression.

        dataset_dtypes (``dict[ArrayKey, dtype]``, optional):

            Store these arrays with this dtype; the arrays in the pipeline keep theirs.

        store (``str``, optional):

            Gunpowder's newer name for the container's path (``store='out.zarr'``); replaces
            ``output_dir``/``output_filename``. Only paths are accepted, not store objects.
    """

    _format = "zarr"
    _default_filename = "output.zarr"
