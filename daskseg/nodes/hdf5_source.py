"""``Hdf5Source``: arrays from an HDF5 file (e.g. the CREMI samples)."""

from .dataset_source import DatasetSource


class Hdf5Source(DatasetSource):
    """Provide arrays from datasets of an HDF5 file, reading only the requested ROIs.

    Args:

        filename (``str``):

            The ``.hdf``/``.h5`` file.

        datasets (``dict[ArrayKey, str]``):

            Which dataset provides which array, e.g. ``{raw: 'volumes/raw', labels:
            'volumes/labels/neuron_ids'}``.

        array_specs (``dict[ArrayKey, ArraySpec]``, optional):

            Override what is read from the file's ``resolution``/``offset`` attributes; without them, voxel
            size 1 per axis is assumed with a warning, as gunpowder does.

        channels_first (``bool``):

            Channel axes lead the spatial axes (the only supported layout).
    """
