"""Blockwise processing of large volumes on Dask: the block grid, done records, the bounded
submission loop, blocks per task, the plan/run split (``BlockwiseTask`` + ``Runner``, see
``runner.py``), ``predict`` (``daskseg predict``), ``segment`` (``daskseg segment``, its stages in
``segmentation/``), ``evaluate`` (``daskseg evaluate``), ``pyramid`` (``daskseg pyramid``) and
``run_pipeline`` (a gunpowder-style pipeline per block, the Dask way of gunpowder's
``DaisyRequestBlocks``).

Nothing here imports JAX: ``NetworkProcessor`` loads it inside the workers, on first use.
"""

from ..errors import (
    AlignmentError,
    BlocksFailedError,
    BlockTimeoutError,
    BlockwiseError,
    LayoutMismatchError,
    RecordLockedError,
)
from .done import DoneRecord
from .evaluate import EvaluateResult, evaluate, plan_evaluate, run_evaluate
from .grid import Block, BlockGrid, check_alignment
from .grouping import AdaptiveGroups, fixed_groups
from .pipeline_job import run_pipeline
from .predict import PredictResult, plan_predict, predict
from .processor import BlockProcessor, FunctionProcessor
from .pyramid import PyramidResult, plan_pyramid, pyramid, run_pyramid
from .runner import BlockwiseTask, Runner, RunResult, run_blockwise
from .segmentation import SegmentResult, plan_segment, segment
from .submit import BlockFailure, submit_bounded


def __getattr__(name: str):
    if name == "NetworkProcessor":
        from .network import NetworkProcessor

        return NetworkProcessor
    raise AttributeError(f"module 'daskseg.blockwise' has no attribute {name!r}")


__all__ = [
    "AdaptiveGroups",
    "AlignmentError",
    "Block",
    "BlockFailure",
    "BlockGrid",
    "BlockProcessor",
    "BlockTimeoutError",
    "BlockwiseTask",
    "BlocksFailedError",
    "BlockwiseError",
    "DoneRecord",
    "EvaluateResult",
    "FunctionProcessor",
    "LayoutMismatchError",
    "NetworkProcessor",
    "PredictResult",
    "PyramidResult",
    "RecordLockedError",
    "RunResult",
    "SegmentResult",
    "Runner",
    "check_alignment",
    "evaluate",
    "fixed_groups",
    "plan_evaluate",
    "plan_predict",
    "plan_pyramid",
    "plan_segment",
    "predict",
    "pyramid",
    "run_blockwise",
    "run_evaluate",
    "run_pipeline",
    "run_pyramid",
    "segment",
    "submit_bounded",
]
