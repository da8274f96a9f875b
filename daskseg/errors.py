"""Errors raised by daskseg: one small hierarchy so callers can catch daskseg's own failures."""


class DaskSegError(Exception):
    """Base class of every error daskseg raises on purpose."""


class GeometryError(DaskSegError, ValueError, AssertionError):
    """A ROI or coordinate does not fit the voxel grid or the dimensions it is used with.

    Also an ``AssertionError``, which is what funlib.geometry raises for the same mistakes.
    """


class BatchRequestError(DaskSegError):
    """gunpowder's name: a node failed while serving a request (``except gp.BatchRequestError``)."""


class PipelineRequestError(DaskSegError):
    """gunpowder's name: a pipeline failed while serving a request."""


class PipelineSetupError(DaskSegError):
    """gunpowder's name: a node failed in ``setup()`` while the pipeline was built."""


class PipelineTeardownError(DaskSegError):
    """gunpowder's name: a node failed in ``teardown()`` while the pipeline was torn down."""


class ArgumentError(DaskSegError, ValueError, AssertionError):
    """A node or function was given a bad argument.

    Also an ``AssertionError``: gunpowder checks node arguments with ``assert``, so ported scripts
    and tests that catch ``AssertionError`` keep working.
    """


class RequestError(BatchRequestError, PipelineRequestError, ValueError):
    """A request asks for something upstream does not provide (key, ROI, voxel size)."""


class SpecError(DaskSegError, ValueError):
    """A node declared or received an inconsistent spec (dtype, voxel size, ROI)."""


class DatasetError(DaskSegError, ValueError):
    """A Zarr or HDF5 dataset is missing, unreadable, or lacks the metadata daskseg needs."""


class MissingVoxelSizeError(DatasetError):
    """A dataset has no voxel size metadata and none was given (the CLI says ``--voxel-size``)."""


class DeterministicError(DaskSegError):
    """An error that recurs on every try with the same inputs (unusable data, an unreadable file):
    blockwise runs report it at once instead of retrying the block."""


class InputDataError(DatasetError, DeterministicError):
    """Input data a network cannot use as it is (dtype, channels, value range, all NaN)."""


class PipelineError(DaskSegError, RuntimeError):
    """A pipeline is wired or used wrongly (no upstream, used outside build(), ...)."""
