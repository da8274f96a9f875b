"""``Hdf5Write``: assemble the arrays of passing batches in one HDF5 file."""

from __future__ import annotations

from .dataset_write import DatasetWrite


class Hdf5Write(DatasetWrite):
    """Assemble arrays of passing batches in datasets of one HDF5 file.

    Useful below a :class:`Scan` to store the chunks it drives through the pipeline without holding
    the whole volume in memory. On the first batch that contains an array, its dataset is created
    covering the ROI that upstream provides for that array (``self.spec[key].roi``), with the
    array's voxel size, dtype and channel axes, ``resolution``/``voxel_size``/``offset`` attributes
    (so gunpowder, funlib and daskseg sources read it back in world units), and chunks that tile the
    passing blocks. Every passing array is then written at its ROI (the part inside the dataset).
    An existing dataset with the same shape, dtype, voxel size and ROI is written into; one that
    differs raises. Requests and batches pass through unchanged.

    Args:

        dataset_names (``dict[ArrayKey, str]``):

            Which array goes into which dataset, e.g. ``{raw: 'volumes/raw', pred_affs: 'volumes/pred_affs'}``
            (a leading ``/`` is allowed).

        output_dir (``str``):

            Directory of the file; created if missing.

        output_filename (``str``):

            Name of the ``.hdf``/``.h5``/``.hdf5`` file; created if missing.

        compression_type (``str`` or ``int``, optional):

            ``'gzip'`` (an int gzip level also means gzip), ``'lzf'``, or None for no compression.

        dataset_dtypes (``dict[ArrayKey, dtype]``, optional):

            Store these arrays with this dtype; the arrays in the pipeline keep theirs.

        store (``str``, optional):

            Gunpowder's newer name for the container's path (``store='out.hdf'``); replaces
            ``output_dir``/``output_filename``. Only paths are accepted, not store objects.
    """

    _format = "hdf5"
    _default_filename = "output.hdf"
