"""Errors raised by daskseg: one small hierarchy so callers can catch daskseg's own failures.

Every error class lives here, each subclassing ``DaskSegError`` and the builtin it refines; the
modules that raise them import them from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .blockwise.submit import BlockFailure


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


# --- Configuration -----------------------------------------------------------------------------------


class SchemaError(DaskSegError, ValueError):
    """A configuration value has the wrong type, is out of range, or a key is unknown or missing."""


class TrainingConfigError(SchemaError):
    """The training YAML is missing a field, has an unknown one or one of the wrong type, or names
    data that does not fit."""


class SampleTooSmallError(TrainingConfigError):
    """A training sample is smaller than one batch reads with the augmentations at their worst."""


# --- Networks and training ---------------------------------------------------------------------------


class NetConfigError(DaskSegError, ValueError):
    """A network config is not valid JSON, not a daskseg network config, or has wrong or unknown fields."""


class ShapeError(DaskSegError, ValueError):
    """An input shape the network cannot process, with the nearest ones it can."""


class CheckpointError(DaskSegError, RuntimeError):
    """A checkpoint is missing, unreadable, not a daskseg/gunpowder checkpoint, or does not fit the network."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file, and no checkpoints of that basename."""


class CheckpointPickleError(CheckpointError):
    """A checkpoint is a pickle, which could run code when loaded, and pickles were not allowed."""


class CheckpointLockedError(CheckpointError):
    """Another process trains with the same checkpoint basename (two runs would interleave checkpoints and logs)."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint could not be written (disk full, no permission, ...); nothing half-written is left."""


class LossLogError(DaskSegError, ValueError):
    """A CSV file is not a training log: no rows, no ``iteration``/``loss`` columns, or a value that is not a number."""


# --- Data --------------------------------------------------------------------------------------------


class SynthError(DaskSegError, ValueError):
    """Parameters of a synthetic sample are invalid (shape, voxel size, densities)."""


class SampleExistsError(SynthError, FileExistsError):
    """A sample to write exists already and ``overwrite`` was not given."""


# --- Segmentation ------------------------------------------------------------------------------------


class SegmentError(DaskSegError, ValueError):
    """Affinities, fragments or label arrays do not fit together (shape, channels, neighbourhood)."""


# --- Cluster and blockwise runs ----------------------------------------------------------------------


class ClusterError(DaskSegError, ConnectionError):
    """A Dask scheduler could not be reached or a cluster could not be started."""


class BlockwiseError(DaskSegError, RuntimeError):
    """A blockwise run cannot start (bad layout, alignment, inputs) or some of its blocks failed."""


class AlignmentError(BlockwiseError, GeometryError):
    """The block grid does not cover whole chunks (or shards) of the output array."""


class BlockTimeoutError(BlockwiseError, TimeoutError):
    """A block ran longer than its time limit."""


class BlockCancelledError(BlockwiseError):
    """A block was told to stop (its time limit passed) before it wrote anything."""


class BlocksFailedError(BlockwiseError):
    """Some blocks failed after all retries; ``failures`` lists them (the others were written)."""

    def __init__(
        self,
        failures: Sequence[BlockFailure],
        total: int,
        stopped_early: bool = False,
        hint: str = "",
        unit: str = "tasks",
    ):
        self.failures = list(failures)
        shown = "; ".join(str(f) for f in self.failures[:10])
        more = f" (and {len(self.failures) - 10} more)" if len(self.failures) > 10 else ""
        stop = " Stopped submitting after too many failures." if stopped_early else ""
        first = self.failures[0].traceback
        first_tb = f"\nTraceback of the first failure:\n{first}" if first else ""
        super().__init__(
            f"{len(self.failures)} of {total} {unit} failed after all retries: {shown}{more}.{stop}{hint}{first_tb}"
        )


class LayoutMismatchError(BlockwiseError):
    """An existing done record belongs to a different block layout than the one requested."""


class RecordLockedError(BlockwiseError):
    """Another process holds the done record (a second run on the same output)."""


class UnusableCheckpointError(CheckpointError, DeterministicError):
    """The checkpoint cannot be read or does not fit the network: every try fails alike."""


class OutputOverlapsInputError(DatasetError):
    """The output is, contains, or lies inside an input: writing it would destroy the input."""


# --- Viewing ------------------------------------------------------------------------------------------


class ViewerError(DaskSegError, RuntimeError):
    """A viewer cannot be opened (its package is not installed, nothing to show)."""
