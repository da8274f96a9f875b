"""RandomProvider: choice among upstreams, probabilities, the common spec."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import PipelineError, SpecError
from daskseg.io import write_array

RAW, LABELS, CHOSEN = gp.ArrayKey("RAW"), gp.ArrayKey("LABELS"), gp.ArrayKey("CHOSEN")
VS = gp.Coordinate((4, 2, 2))


def make_source(tmp_path, name, value, offset=(0, 0, 0), shape=(4, 4, 4), vs=VS, dtype=np.uint8, labels=False):
    path = tmp_path / f"{name}.zarr"
    write_array(path, "raw", np.full(shape, value, dtype=dtype), vs, offset=offset)
    datasets = {RAW: "raw"}
    if labels:
        write_array(path, "labels", np.full(shape, value, dtype=np.uint64), vs, offset=offset)
        datasets[LABELS] = "labels"
    return gp.ZarrSource(path, datasets)


def request(seed, with_key=True):
    r = gp.BatchRequest({RAW: gp.ArraySpec(roi=gp.Roi((4, 2, 2), VS * 2))}, random_seed=seed)
    if with_key:
        r[CHOSEN] = gp.ArraySpec(nonspatial=True)
    return r


def test_each_request_goes_to_one_upstream_and_the_key_tells_which(tmp_path):
    sources = tuple(make_source(tmp_path, f"s{i}", 10 * i) for i in range(3))
    pipeline = sources + gp.RandomProvider(random_provider_key=CHOSEN)
    seen = set()
    with gp.build(pipeline):
        for seed in range(40):
            batch = pipeline.request_batch(request(seed))
            index = int(batch[CHOSEN].data)
            assert batch[CHOSEN].spec.nonspatial
            assert np.all(batch[RAW].data == 10 * index)
            seen.add(index)
    assert seen == {0, 1, 2}


def test_probabilities_steer_the_choice(tmp_path):
    sources = (make_source(tmp_path, "a", 1), make_source(tmp_path, "b", 2))
    for probabilities, expected in (([1, 0], {1}), ([0, 5], {2})):
        pipeline = sources + gp.RandomProvider(probabilities=probabilities)
        with gp.build(pipeline):
            values = {int(pipeline.request_batch(request(s, False))[RAW].data[0, 0, 0]) for s in range(20)}
        assert values == expected
    pipeline = sources + gp.RandomProvider(probabilities=[3, 1])  # not normalized: 75 % / 25 %
    with gp.build(pipeline):
        values = [int(pipeline.request_batch(request(s, False))[RAW].data[0, 0, 0]) for s in range(400)]
    assert 0.65 < values.count(1) / 400 < 0.85


def test_same_seed_same_choice(tmp_path):
    sources = tuple(make_source(tmp_path, f"s{i}", i) for i in range(4))
    pipeline = sources + gp.RandomProvider(random_provider_key=CHOSEN)
    with gp.build(pipeline):
        first = [int(pipeline.request_batch(request(s))[CHOSEN].data) for s in range(10)]
        second = [int(pipeline.request_batch(request(s))[CHOSEN].data) for s in range(10)]
    assert first == second and len(set(first)) > 1


def test_spec_is_the_intersection_of_the_upstream_specs(tmp_path):
    a = make_source(tmp_path, "a", 1, offset=(0, 0, 0), shape=(4, 4, 4), labels=True)  # [0:16, 0:8, 0:8]
    b = make_source(tmp_path, "b", 2, offset=(8, 2, 4), shape=(4, 4, 4))  # [8:24, 2:10, 4:12]
    pipeline = (a, b) + gp.RandomProvider()
    with gp.build(pipeline):
        assert set(pipeline.spec) == {RAW}  # LABELS is only in a
        assert pipeline.spec[RAW].roi == gp.Roi((8, 2, 4), (8, 6, 4))
        assert pipeline.spec[RAW].voxel_size == VS and pipeline.spec[RAW].dtype == np.uint8
        # every request the spec allows works in either upstream
        values = set()
        for seed in range(20):
            r = gp.BatchRequest({RAW: gp.ArraySpec(roi=pipeline.spec[RAW].roi)}, random_seed=seed)
            values.add(int(pipeline.request_batch(r)[RAW].data[0, 0, 0]))
        assert values == {1, 2}


def test_upstreams_without_a_common_key_raise(tmp_path):
    path = tmp_path / "l.zarr"
    write_array(path, "labels", np.zeros((2, 2, 2), dtype=np.uint64), VS)
    pipeline = (make_source(tmp_path, "a", 1), gp.ZarrSource(path, {LABELS: "labels"})) + gp.RandomProvider()
    with pytest.raises(SpecError, match="share no key.*RAW.*LABELS"):
        with gp.build(pipeline):
            pass


def test_upstreams_must_agree_on_voxel_size_and_dtype(tmp_path):
    a = make_source(tmp_path, "a", 1)
    b = make_source(tmp_path, "b", 1, vs=(4, 4, 4))
    with pytest.raises(SpecError, match=r"RAW.*voxel_size.*\(4, 2, 2\).*\(4, 4, 4\)"):
        with gp.build((a, b) + gp.RandomProvider()):
            pass
    c = make_source(tmp_path, "c", 1, dtype=np.uint16)
    with pytest.raises(SpecError, match="RAW.*dtype.*uint8.*uint16"):
        with gp.build((a, c) + gp.RandomProvider()):
            pass


def test_wrong_number_of_probabilities(tmp_path):
    sources = (make_source(tmp_path, "a", 1), make_source(tmp_path, "b", 2))
    with pytest.raises(PipelineError, match="3 probabilities.*2 upstream"):
        with gp.build(sources + gp.RandomProvider(probabilities=[1, 1, 1])):
            pass
    with pytest.raises(ValueError, match="non-negative"):
        gp.RandomProvider(probabilities=[0, 0])
