"""Behaviour shared by ZarrWrite and Hdf5Write (their common base, nodes/dataset_write.py)."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import DatasetError, SpecError
from daskseg.io import list_datasets, open_dataset, write_array
from daskseg.nodes.dataset_write import block_chunk_shape

RAW = gp.ArrayKey("WRITE_RAW")
AFFS = gp.ArrayKey("WRITE_AFFS")
VS = (40, 4, 4)
OFFSET = (400, 40, 40)

WRITERS = [(gp.ZarrWrite, "out.zarr"), (gp.Hdf5Write, "out.hdf")]


@pytest.fixture
def volume(tmp_path):
    raw = (np.arange(6 * 20 * 24) % 251).astype(np.uint8).reshape(6, 20, 24)
    path = tmp_path / "in.zarr"
    write_array(path, "raw", raw, VS, offset=OFFSET)
    return path, raw


class Affs(gp.BatchFilter):
    """Provides a 3-channel float array: channel c holds (c + 1) * raw."""

    def setup(self):
        spec = self.spec[RAW].copy()
        spec.dtype = np.dtype(np.float32)
        self.provides(AFFS, spec)

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[RAW] = request[AFFS].copy()
        return deps

    def process(self, batch, request):
        raw = batch[RAW].data.astype(np.float32)
        spec = self.spec[AFFS].copy()
        spec.roi = request[AFFS].roi
        out = gp.Batch()
        out[AFFS] = gp.Array(np.stack([raw * (c + 1) for c in range(3)]), spec)
        return out


def _request(key, offset, shape):
    request = gp.BatchRequest()
    request[key] = gp.ArraySpec(roi=gp.Roi(offset, shape))
    return request


@pytest.mark.parametrize("writer_cls,filename", WRITERS)
def test_batches_are_written_in_place_and_pass_through(tmp_path, volume, writer_cls, filename):
    path, raw = volume
    writer = writer_cls({RAW: "/volumes/raw"}, output_dir=tmp_path / "out", output_filename=filename)
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + writer
    first = _request(RAW, (440, 48, 40), (120, 32, 40))
    second = _request(RAW, (560, 100, 100), (80, 20, 36))
    with gp.build(pipeline):
        batch = pipeline.request_batch(first)
        pipeline.request_batch(second)
    np.testing.assert_array_equal(batch[RAW].data, raw[1:4, 2:10, 0:10])  # unchanged downstream
    ds = open_dataset(tmp_path / "out" / filename, "volumes/raw")
    assert ds.roi == gp.Roi(OFFSET, (240, 80, 96)) and ds.voxel_size == gp.Coordinate(VS)
    assert ds.dtype == np.uint8
    stored = ds.read()
    expected = np.zeros_like(raw)
    expected[1:4, 2:10, 0:10] = raw[1:4, 2:10, 0:10]
    expected[4:6, 15:20, 15:24] = raw[4:6, 15:20, 15:24]
    np.testing.assert_array_equal(stored, expected)


@pytest.mark.parametrize("writer_cls,filename", WRITERS)
def test_channels_dtypes_and_the_upstream_roi(tmp_path, volume, writer_cls, filename):
    path, raw = volume
    writer = writer_cls(
        {AFFS: "volumes/affs", RAW: "volumes/raw"},
        output_dir=tmp_path,
        output_filename=filename,
        dataset_dtypes={AFFS: np.float16},
    )
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + Affs() + writer
    request = _request(AFFS, (480, 60, 60), (80, 40, 48))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert batch[AFFS].data.dtype == np.float32  # the pipeline keeps its dtype
    affs = open_dataset(tmp_path / filename, "volumes/affs")
    assert affs.shape == (3, 6, 20, 24) and affs.dtype == np.float16 and affs.roi == gp.Roi(OFFSET, (240, 80, 96))
    np.testing.assert_array_equal(
        affs.read(gp.Roi((480, 60, 60), (80, 40, 48))),
        np.stack([raw[2:4, 5:15, 5:17].astype(np.float16) * (c + 1) for c in range(3)]),
    )
    # RAW was not requested, so it never passed the writer: no dataset is made for it
    assert list_datasets(tmp_path / filename) == ["volumes/affs"]


@pytest.mark.parametrize("writer_cls,filename", WRITERS)
def test_existing_dataset_is_reused_if_it_matches_and_refused_otherwise(tmp_path, volume, writer_cls, filename):
    path, raw = volume
    source = gp.ZarrSource(path, {RAW: "raw"})
    for offset in [(400, 40, 40), (560, 40, 40)]:  # a second run adds to the first one's dataset
        pipeline = source + writer_cls({RAW: "raw"}, output_dir=tmp_path, output_filename=filename)
        with gp.build(pipeline):
            pipeline.request_batch(_request(RAW, offset, (80, 80, 96)))
    np.testing.assert_array_equal(open_dataset(tmp_path / filename, "raw").read(), np.where(
        np.arange(6)[:, None, None] // 2 == 1, 0, raw
    ))
    pipeline = source + writer_cls({RAW: "raw"}, output_dir=tmp_path, output_filename=filename,
                                   dataset_dtypes={RAW: np.float32})
    with gp.build(pipeline), pytest.raises(DatasetError, match="exists with shape"):
        pipeline.request_batch(_request(RAW, (400, 40, 40), (80, 80, 96)))


@pytest.mark.parametrize("writer_cls,filename", WRITERS)
def test_configuration_errors_name_the_problem(tmp_path, volume, writer_cls, filename):
    path, _ = volume
    with pytest.raises(SpecError, match="WRITE_AFFS.*not provided upstream"):
        with gp.build(gp.ZarrSource(path, {RAW: "raw"}) + writer_cls({AFFS: "affs"}, output_dir=tmp_path,
                                                                      output_filename=filename)):
            pass
    wrong = "out.hdf" if filename.endswith(".zarr") else "out.zarr"
    with pytest.raises(DatasetError, match="change the extension"):
        writer_cls({RAW: "raw"}, output_filename=wrong)


def test_unbounded_upstream_roi_cannot_be_written(tmp_path):
    class Noise(gp.BatchProvider):
        def setup(self):
            self.provides(RAW, gp.ArraySpec(roi=gp.Roi((None, None), (None, None)), voxel_size=(1, 1), dtype=np.uint8))

        def provide(self, request):
            batch = gp.Batch()
            spec = self.spec[RAW].copy()
            spec.roi = request[RAW].roi
            batch[RAW] = gp.Array(np.zeros(tuple(spec.roi.shape), np.uint8), spec)
            return batch

    pipeline = Noise() + gp.ZarrWrite({RAW: "raw"}, output_dir=tmp_path)
    with gp.build(pipeline), pytest.raises(SpecError, match="not a bounded one"):
        pipeline.request_batch(_request(RAW, (0, 0), (4, 4)))


def test_written_blocks_are_tiled_by_chunks():
    assert block_chunk_shape((6, 16, 16)) == (6, 16, 16)
    chunk = block_chunk_shape((84, 268, 268))
    assert np.prod(chunk) <= 64**3
    # every chunk side divides the block into at most a few pieces of (nearly) equal size
    assert all(-(-b // c) * c - b < -(-b // c) for b, c in zip((84, 268, 268), chunk))
