"""Pipeline nodes, one a module, named as in gunpowder."""

from .add_affinities import AddAffinities
from .add_local_shape_descriptor import AddLocalShapeDescriptor
from .array_source import ArraySource
from .as_type import AsType
from .balance_labels import BalanceLabels
from .crop import Crop
from .csv_points_source import CsvPointsSource
from .daisy_request_blocks import DaisyRequestBlocks
from .defect_augment import DefectAugment
from .deform_augment import DeformAugment
from .downsample import DownSample
from .dvid_source import DvidSource
from .elastic_augment import ElasticAugment
from .exclude_labels import ExcludeLabels
from .gp_array_source import GPArraySource
from .gp_graph_source import GPGraphSource
from .graph_source import GraphSource
from .grow_boundary import GrowBoundary
from .hdf5_source import Hdf5Source
from .hdf5_write import Hdf5Write
from .intensity_augment import IntensityAugment
from .intensity_scale_shift import IntensityScaleShift
from .iterate_locations import IterateLocations
from .klb_source import KlbSource
from .merge_provider import MergeProvider
from .noise_augment import NoiseAugment
from .normalize import Normalize
from .pad import Pad
from .pre_cache import PreCache
from .print_profiling_stats import PrintProfilingStats
from .producer_pool import ProducerPool
from .random_location import RandomLocation
from .random_provider import RandomProvider
from .rasterize_graph import RasterizationSettings, RasterizeGraph
from .reject import Reject
from .renumber_connected_components import RenumberConnectedComponents
from .resample import Resample
from .scan import Scan
from .scan_callback import ScanCallback
from .shift_augment import ShiftAugment
from .simple_augment import SimpleAugment
from .snapshot import Snapshot
from .specified_location import SpecifiedLocation
from .squeeze import Squeeze
from .stack import Stack
from .unsqueeze import Unsqueeze
from .upsample import UpSample
from .zarr_source import ZarrSource
from .zarr_write import ZarrWrite

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
