"""``daskseg.blockwise.run_pipeline``: a gunpowder-style pipeline per block on the blockwise runner
(the Dask way of gunpowder's ``DaisyRequestBlocks``), on real Zarr files and a real LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest
from dask_fixtures import local_client
from scipy import ndimage as ndi

import daskseg as gp
import daskseg.blockwise as bw
from daskseg.errors import ArgumentError
from daskseg.io import open_dataset, write_array

VS = (2, 1, 1)
RAW, SMOOTH = gp.ArrayKey("RP_RAW"), gp.ArrayKey("RP_SMOOTH")


class Smooth(gp.BatchFilter):
    """A user's node written against gunpowder's protocol: a 3x3x3 mean of ``RAW`` provided as
    ``SMOOTH`` on the ROI requested, reading one voxel of context on every side."""

    def setup(self):
        spec = self.spec[RAW].copy()
        spec.dtype = np.dtype(np.float32)
        spec.roi = spec.roi.grow(-gp.Coordinate(VS), -gp.Coordinate(VS))
        self.provides(SMOOTH, spec)

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[SMOOTH].roi.grow(gp.Coordinate(VS), gp.Coordinate(VS))
        return deps

    def process(self, batch, request):
        out = ndi.uniform_filter(batch[RAW].data.astype(np.float32), 3)[1:-1, 1:-1, 1:-1]
        spec = self.spec[SMOOTH].copy()
        spec.roi = request[SMOOTH].roi
        result = gp.Batch()
        result[SMOOTH] = gp.Array(out, spec)
        return result


@pytest.fixture(scope="module")
def client():
    with local_client(2, processes=False) as c:
        yield c


@pytest.fixture()
def raw(tmp_path):
    data = np.random.default_rng(3).random((10, 34, 30)).astype(np.float32)
    write_array(tmp_path / "in.zarr", "raw", data, VS)
    return data


def pipeline_and_reference(tmp_path):
    pipeline = (gp.ZarrSource(str(tmp_path / "in.zarr"), {RAW: "raw"}) + Smooth()
                + gp.ZarrWrite({SMOOTH: "smooth"}, output_dir=str(tmp_path), output_filename="out.zarr"))
    reference = gp.BatchRequest()
    reference[RAW] = gp.Roi((0, 0, 0), (12, 10, 10))  # a block of 4x8x8 voxels with one voxel of context
    reference[SMOOTH] = gp.Roi((2, 1, 1), (8, 8, 8))
    return pipeline, reference, {RAW: "read_roi", SMOOTH: "write_roi"}


def expected(raw: np.ndarray) -> np.ndarray:
    return ndi.uniform_filter(raw, 3)[1:-1, 1:-1, 1:-1]


def test_every_block_through_the_pipeline_gives_the_whole_volume(tmp_path, raw, client):
    pipeline, reference, roi_map = pipeline_and_reference(tmp_path)
    result = bw.run_pipeline(pipeline, reference, roi_map, str(tmp_path / "record"), client=client)
    # the default total ROI: what the source provides, shrunk by the context: 8 x 32 x 28 voxels
    assert result.num_blocks == 2 * 4 * 4 and result.processed == result.num_blocks
    out = open_dataset(str(tmp_path / "out.zarr"), "smooth")
    assert out.roi == gp.Roi((2, 1, 1), (16, 32, 28))
    np.testing.assert_allclose(out.read(), expected(raw), rtol=1e-6)
    # the workers' copies of the pipeline were torn down after the run
    assert set(client.run(lambda: __import__("daskseg.worker_state", fromlist=["x"]).STATE.count("pipelines"))
               .values()) == {0}


def test_an_interrupted_run_resumes_with_the_blocks_not_done(tmp_path, raw, client):
    pipeline, reference, roi_map = pipeline_and_reference(tmp_path)

    class Stop(Exception):
        pass

    def stop(task, block, seen=[]):  # noqa: B006 - counts across calls
        seen.append(block.index)
        if len(seen) == 5:
            raise Stop()

    with bw.Runner(client, on_block_done=stop) as runner, pytest.raises(Stop):
        bw.run_pipeline(pipeline, reference, roi_map, str(tmp_path / "record"), runner=runner)
    again = bw.run_pipeline(pipeline, reference, roi_map, str(tmp_path / "record"), client=client)
    assert again.skipped >= 5 and again.skipped + again.processed == again.num_blocks == 32
    np.testing.assert_allclose(open_dataset(str(tmp_path / "out.zarr"), "smooth").read(), expected(raw), rtol=1e-6)
    assert bw.run_pipeline(pipeline, reference, roi_map, str(tmp_path / "record"), client=client).processed == 0


def test_a_total_roi_and_bad_roi_maps(tmp_path, raw, client):
    pipeline, reference, roi_map = pipeline_and_reference(tmp_path)
    roi = gp.Roi((4, 9, 9), (8, 16, 8))
    result = bw.run_pipeline(pipeline, reference, roi_map, str(tmp_path / "record"), total_roi=roi, client=client)
    assert result.num_blocks == 1 * 2 * 1
    out = open_dataset(str(tmp_path / "out.zarr"), "smooth")
    np.testing.assert_allclose(out.read(roi), expected(raw)[1:5, 8:24, 8:16], rtol=1e-6)
    with pytest.raises(ArgumentError, match="'read_roi' or 'write_roi'"):
        bw.run_pipeline(pipeline, reference, {RAW: "read", SMOOTH: "write_roi"}, str(tmp_path / "r2"))
    with pytest.raises(ArgumentError, match="common ROI"):
        bw.run_pipeline(pipeline, reference, {RAW: "write_roi", SMOOTH: "write_roi"}, str(tmp_path / "r3"))


def test_daisy_request_blocks_points_to_run_pipeline():
    try:
        import daisy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="daskseg.blockwise.run_pipeline"):
            gp.DaisyRequestBlocks(gp.BatchRequest(), {})
    else:
        pytest.skip("daisy is installed: DaisyRequestBlocks runs with it")
