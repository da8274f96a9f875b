"""Pipeline nodes, one a module, named as in gunpowder."""

from .hdf5_source import Hdf5Source
from .zarr_source import ZarrSource
from .crop import Crop
from .merge_provider import MergeProvider
from .normalize import Normalize
from .pad import Pad
from .random_location import RandomLocation
from .random_provider import RandomProvider
from .hdf5_write import Hdf5Write
from .print_profiling_stats import PrintProfilingStats
from .scan import Scan
from .snapshot import Snapshot
from .zarr_write import ZarrWrite
from .grow_boundary import GrowBoundary
from .add_affinities import AddAffinities
from .balance_labels import BalanceLabels
from .intensity_augment import IntensityAugment
from .intensity_scale_shift import IntensityScaleShift
from .noise_augment import NoiseAugment
from .unsqueeze import Unsqueeze
from .squeeze import Squeeze
from .stack import Stack
from .as_type import AsType
from .pre_cache import PreCache
from .elastic_augment import ElasticAugment
from .simple_augment import SimpleAugment
from .shift_augment import ShiftAugment
from .defect_augment import DefectAugment
from .scan_callback import ScanCallback
from .exclude_labels import ExcludeLabels
from .reject import Reject
from .renumber_connected_components import RenumberConnectedComponents
from .downsample import DownSample
from .upsample import UpSample
from .daisy_request_blocks import DaisyRequestBlocks
from .dvid_source import DvidSource
from .klb_source import KlbSource
from .producer_pool import ProducerPool
from .specified_location import SpecifiedLocation
from .iterate_locations import IterateLocations
from .array_source import ArraySource
from .resample import Resample
from .graph_source import GraphSource
from .gp_graph_source import GPGraphSource
from .gp_array_source import GPArraySource
from .csv_points_source import CsvPointsSource
from .rasterize_graph import RasterizationSettings, RasterizeGraph
from .deform_augment import DeformAugment

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
