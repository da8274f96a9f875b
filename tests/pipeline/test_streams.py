"""Random streams keyed by a node's identity (class and index among its class, or ``seed_name``),
not by its position; nested builds of one pipeline set it up once, as in gunpowder."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array
from daskseg.pipeline.streams import stream_key, stream_names

RAW = gp.ArrayKey("STREAM_RAW")
LABELS = gp.ArrayKey("STREAM_LABELS")
VS = (4, 2, 2)


@pytest.fixture
def sample(tmp_path):
    rng = np.random.default_rng(1)
    shape = (20, 40, 40)
    path = tmp_path / "s.zarr"
    write_array(path, "raw", rng.integers(0, 255, shape, dtype=np.uint8), VS)
    write_array(path, "labels", (np.arange(np.prod(shape), dtype=np.uint64) // 5).reshape(shape), VS)
    return path


def elastic():
    return gp.ElasticAugment([2, 5, 5], [0, 1, 1], [0, np.pi / 2])


def request(seed):
    r = gp.BatchRequest(random_seed=seed)
    r.add(RAW, gp.Coordinate((6, 16, 16)) * gp.Coordinate(VS))
    r.add(LABELS, gp.Coordinate((6, 16, 16)) * gp.Coordinate(VS))
    return r


def labels_of(pipeline, seeds=(1, 2, 3)):
    with gp.build(pipeline):
        return [pipeline.request_batch(request(s))[LABELS].data for s in seeds]


def source(path):
    return gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"})


def test_inserting_a_normalize_upstream_leaves_the_elastic_draws_unchanged(sample):
    plain = labels_of(source(sample) + gp.RandomLocation() + elastic())
    with_normalize = labels_of(source(sample) + gp.Normalize(RAW) + gp.RandomLocation() + elastic())
    for a, b in zip(plain, with_normalize):
        np.testing.assert_array_equal(a, b)
    # the draws are random: another seed, another location and deformation
    assert not np.array_equal(plain[0], plain[1])


def test_nodes_of_one_class_get_their_own_streams_and_seed_name_overrides(sample):
    first, second = elastic(), elastic()
    pipeline = source(sample) + gp.RandomLocation() + first + second
    with gp.build(pipeline):
        assert (first.random_stream, second.random_stream) == ("ElasticAugment#0", "ElasticAugment#1")
        assert first.random_generator(request(1)).random() != second.random_generator(request(1)).random()
    assert first.random_stream is None  # given by the build, not kept after it

    # a named node draws the same numbers in any pipeline
    named_a, named_b = elastic(), elastic()
    named_a.seed_name = named_b.seed_name = "deform"
    with gp.build(source(sample) + gp.RandomLocation() + named_a):
        draw_a = named_a.random_generator(request(1)).random()
    with gp.build(source(sample) + gp.Normalize(RAW) + elastic() + named_b):
        assert named_b.random_stream == "deform"
        assert named_b.random_generator(request(1)).random() == draw_a


def test_stream_names_and_keys():
    nodes = [gp.Normalize(RAW), elastic(), gp.Normalize(RAW), elastic()]
    nodes[2].seed_name = "mine"
    assert stream_names(nodes) == ["Normalize#0", "ElasticAugment#0", "mine", "ElasticAugment#1"]
    assert stream_key("ElasticAugment#0") != stream_key("ElasticAugment#1")
    # the same in another process with another hash seed (a Dask worker): not Python's salted hash()
    code = "from daskseg.pipeline.streams import stream_key; print(stream_key('ElasticAugment#0'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(stream_key("ElasticAugment#0"))


class CountingSource(gp.BatchProvider):
    thread_safe = True

    def __init__(self):
        self.setups = 0
        self.teardowns = 0

    def setup(self):
        self.setups += 1
        self.provides(RAW, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (40, 40, 40)), voxel_size=gp.Coordinate(VS)))

    def provide(self, request):
        batch = gp.Batch()
        spec = self.spec[RAW].copy()
        spec.roi = request[RAW].roi
        batch[RAW] = gp.Array(np.zeros(spec.roi.shape / spec.voxel_size, np.float32), spec)
        return batch

    def teardown(self):
        self.teardowns += 1


def raw_request():
    r = gp.BatchRequest(random_seed=0)
    r.add(RAW, (8, 8, 8))
    return r


def test_a_nested_build_of_the_same_pipeline_sets_up_once_and_leaves_the_outer_working():
    src = CountingSource()
    pipeline = src + gp.Normalize(RAW)
    with gp.build(pipeline):
        with gp.build(pipeline):
            pipeline.request_batch(raw_request())
        pipeline.request_batch(raw_request())  # the inner exit did not tear it down
        with pytest.raises(gp.DaskSegError, match="already set up"):  # src alone is another pipeline
            with gp.build(src):
                pass
        pipeline.request_batch(raw_request())
    assert (src.setups, src.teardowns) == (1, 1)
    assert not src.is_set_up

    node = CountingSource()
    with gp.build(node):
        with gp.build(node):
            node.request_batch(raw_request())
        node.request_batch(raw_request())
    assert (node.setups, node.teardowns) == (1, 1)


def test_a_node_in_two_built_pipelines_is_refused_by_name():
    src = CountingSource()
    first = src + gp.Normalize(RAW)
    second = src + gp.IntensityScaleShift(RAW, 2.0, 0.0)
    with gp.build(first):
        with pytest.raises(gp.DaskSegError, match="CountingSource is already set up in the built pipeline"):
            with gp.build(second):
                pass
        first.request_batch(raw_request())  # the refused build left the first one working
    assert (src.setups, src.teardowns) == (1, 1)
