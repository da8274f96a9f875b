"""``import daskseg as gp`` has every gunpowder 1.5 public name."""

import pytest

import daskseg as gp

# gunpowder 1.5: gunpowder/__init__.py, gunpowder/nodes/__init__.py and the pipeline's exceptions
GUNPOWDER_NAMES = """
Array ArrayKey ArrayKeys ArraySpec Batch BatchRequest build Coordinate ProviderSpec Roi Pipeline
BatchRequestError PipelineRequestError PipelineSetupError PipelineTeardownError ProducerPool
Edge Graph GraphKey GraphKeys GraphSpec Node
AddAffinities ArraySource AsType BalanceLabels BatchFilter BatchProvider Crop CsvPointsSource
DaisyRequestBlocks DefectAugment DeformAugment DownSample DvidSource ElasticAugment ExcludeLabels
GPArraySource GPGraphSource GraphSource GrowBoundary Hdf5Source Hdf5Write IntensityAugment
IntensityScaleShift IterateLocations KlbSource MergeProvider NoiseAugment Normalize Pad PreCache
PrintProfilingStats RandomLocation RandomProvider RasterizationSettings RasterizeGraph Reject
RenumberConnectedComponents Resample Scan ScanCallback ShiftAugment SimpleAugment Snapshot
SpecifiedLocation Squeeze Stack Unsqueeze UpSample ZarrSource ZarrWrite
""".split()


@pytest.mark.parametrize("name", GUNPOWDER_NAMES)
def test_gunpowder_name_is_importable(name):
    assert hasattr(gp, name), f"daskseg lacks gunpowder's {name}"
    assert name in gp.__all__ or name in ("Pipeline",), f"{name} is not in daskseg.__all__"


def test_star_import_gives_the_names():
    namespace: dict = {}
    exec("from daskseg import *", namespace)
    missing = [n for n in GUNPOWDER_NAMES if n not in namespace]
    assert not missing


def test_no_gunpowder_public_name_is_forgotten():
    import gunpowder  # a dev dependency: compared against in CI

    theirs = {n for n in dir(gunpowder) if n[0].isupper()}
    assert not theirs - set(dir(gp))
