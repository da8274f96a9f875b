"""``segment``: affinities to a segmentation of any size, as resumable blockwise stages on Dask
(fragments, edges, agglomerate up a reduction tree, relabel). See ``job.py``."""

from .export import export_sqlite
from .job import SegmentResult, output_names, plan_segment, run_segment, segment
from .layout import SegmentLayout

__all__ = ["SegmentLayout", "export_sqlite", "SegmentResult", "output_names", "plan_segment", "run_segment", "segment"]
