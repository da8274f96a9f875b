"""The provider protocol: spec propagation, `+`, build(), request checks and custom nodes."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp
from daskseg.errors import PipelineError, RequestError, SpecError
from daskseg.io import write_array

RAW = gp.ArrayKey("RAW")
LABELS = gp.ArrayKey("LABELS")
SUM = gp.ArrayKey("SUM")
NOISE = gp.ArrayKey("NOISE")
VS = gp.Coordinate((40, 4, 4))
OFFSET = gp.Coordinate((400, 40, 40))
SHAPE = (6, 12, 12)


# --- helper nodes, written the way a gunpowder user writes them --------------------------------


class ArraySource(gp.BatchProvider):
    """An in-memory source (a custom source node: ``setup`` declares, ``provide`` delivers)."""

    def __init__(self, key, data, voxel_size=VS, offset=OFFSET, log=None, fail_setup=False):
        self.key, self.data, self.voxel_size, self.offset = key, data, gp.Coordinate(voxel_size), offset
        self.log = log if log is not None else []
        self.fail_setup = fail_setup

    def setup(self):
        self.log.append(("setup", self.key.identifier))
        if self.fail_setup:
            raise RuntimeError(f"setup of {self.key} failed on purpose")
        roi = gp.Roi(self.offset, gp.Coordinate(self.data.shape[-3:]) * self.voxel_size)
        self.provides(self.key, gp.ArraySpec(roi=roi, voxel_size=self.voxel_size, dtype=self.data.dtype))

    def teardown(self):
        self.log.append(("teardown", self.key.identifier))

    def provide(self, request):
        batch = gp.Batch()
        for key, spec in request.items():
            begin = (spec.roi.begin - self.offset) / self.voxel_size
            end = begin + spec.roi.shape / self.voxel_size
            out = self.spec[key].copy()
            out.roi = spec.roi
            batch[key] = gp.Array(self.data[tuple(slice(b, e) for b, e in zip(begin, end))].copy(), out)
        return batch


class Recorder(gp.BatchFilter):
    """Records setup/teardown order; passes everything through."""

    def __init__(self, name, log, fail_teardown=False):
        self._name, self.log, self.fail_teardown = name, log, fail_teardown

    def setup(self):
        self.log.append(("setup", self._name))

    def teardown(self):
        self.log.append(("teardown", self._name))
        if self.fail_teardown:
            raise RuntimeError("teardown failed on purpose")


class OldStyleBoxSum(gp.BatchFilter):
    """Old gunpowder style: ``prepare`` grows the request in place, ``process`` edits the batch."""

    def __init__(self, key):
        self.key = key

    def setup(self):
        spec = self.spec[self.key].copy()
        spec.dtype = np.dtype(np.int64)
        self.updates(self.key, spec)
        self.context = gp.Coordinate((0, 0, self.spec[self.key].voxel_size[2]))

    def prepare(self, request):
        request[self.key].roi = request[self.key].roi.grow(self.context, self.context)

    def process(self, batch, request):
        data = batch[self.key].data.astype(np.int64)
        summed = data[..., :-2] + data[..., 1:-1] + data[..., 2:]
        spec = batch[self.key].spec.copy()
        spec.roi = spec.roi.grow(-self.context, -self.context)
        spec.dtype = np.dtype(np.int64)
        batch[self.key] = gp.Array(summed, spec)


class NewStyleBoxSum(gp.BatchFilter):
    """New gunpowder style: ``prepare`` returns the dependencies, ``process`` returns a batch."""

    def __init__(self, source, target):
        self.source, self.target = source, target

    def setup(self):
        spec = self.spec[self.source].copy()
        spec.dtype = np.dtype(np.int64)
        self.provides(self.target, spec)
        self.context = gp.Coordinate((0, 0, spec.voxel_size[2]))

    def prepare(self, request):
        deps = gp.BatchRequest()
        deps[self.source] = gp.ArraySpec(roi=request[self.target].roi.grow(self.context, self.context))
        return deps

    def process(self, batch, request):
        data = batch[self.source].data.astype(np.int64)
        spec = self.spec[self.target].copy()
        spec.roi = request[self.target].roi
        out = gp.Batch()
        out[self.target] = gp.Array(data[..., :-2] + data[..., 1:-1] + data[..., 2:], spec)
        return out


class Noise(gp.BatchFilter):
    """Adds noise drawn from the node's seeded stream."""

    def __init__(self, key):
        self.key = key

    def setup(self):
        spec = self.spec[self.key].copy()
        spec.dtype = np.dtype(np.float64)
        self.updates(self.key, spec)

    def prepare(self, request):
        return gp.BatchRequest({self.key: gp.ArraySpec(roi=request[self.key].roi)})

    def process(self, batch, request):
        array = batch[self.key]
        rng = self.random_generator(request)
        spec = array.spec.copy()
        spec.dtype = np.dtype(np.float64)
        out = gp.Batch()
        out[self.key] = gp.Array(array.data + rng.normal(size=array.data.shape), spec)
        return out


def ramp():
    return (np.arange(np.prod(SHAPE)) % 251).astype(np.uint8).reshape(SHAPE)


def request_for(key, offset, shape_vx, **kwargs):
    return gp.BatchRequest({key: gp.ArraySpec(roi=gp.Roi(offset, gp.Coordinate(shape_vx) * VS), **kwargs)}, **{})


@pytest.fixture
def zarr_raw(tmp_path):
    data = ramp()
    path = tmp_path / "sample.zarr"
    write_array(path, "raw", data, VS, offset=OFFSET)
    write_array(path, "labels", (data // 50).astype(np.uint64), VS, offset=OFFSET)
    return path, data


# --- spec propagation and declarations --------------------------------------------------------


def test_filter_spec_is_upstream_spec_plus_changes():
    data = ramp()
    source = ArraySource(RAW, data)
    box = OldStyleBoxSum(RAW)
    new = NewStyleBoxSum(RAW, SUM)
    pipeline = source + box + new
    with gp.build(pipeline):
        provided = source.spec[RAW]
        assert provided.roi == gp.Roi(OFFSET, gp.Coordinate(SHAPE) * VS) and provided.dtype == np.uint8
        assert box.spec[RAW].roi == provided.roi and box.spec[RAW].dtype == np.int64
        assert source.spec[RAW].dtype == np.uint8  # upstream untouched
        assert set(new.spec) == {RAW, SUM} and new.spec[SUM].voxel_size == VS
        assert pipeline.spec is new.spec


def test_provides_and_updates_errors():
    class ProvidesTwice(gp.BatchFilter):
        def setup(self):
            self.provides(RAW, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (40, 4, 4)), voxel_size=VS))

    class UpdatesMissing(gp.BatchFilter):
        def setup(self):
            self.updates(LABELS, gp.ArraySpec())

    class Misaligned(gp.BatchFilter):
        def setup(self):
            self.provides(SUM, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (40, 4, 6)), voxel_size=VS))

    with pytest.raises(SpecError, match="ProvidesTwice provides RAW.*already provided"):
        with gp.build(ArraySource(RAW, ramp()) + ProvidesTwice()):
            pass
    with pytest.raises(SpecError, match="UpdatesMissing updates LABELS.*not provided upstream"):
        with gp.build(ArraySource(RAW, ramp()) + UpdatesMissing()):
            pass
    with pytest.raises(SpecError, match=r"SUM.*\(40, 4, 4\)"):
        with gp.build(ArraySource(RAW, ramp()) + Misaligned()):
            pass


def test_filter_without_upstream_errors():
    with pytest.raises(PipelineError, match="exactly one upstream"):
        with gp.build(Recorder("alone", [])):
            pass


# --- + and tuples -------------------------------------------------------------------------------


def test_plus_builds_a_tree_with_tuples():
    log = []
    a, b = ArraySource(RAW, ramp(), log=log), ArraySource(LABELS, ramp(), log=log)
    ra, rb = Recorder("ra", log), Recorder("rb", log)
    merge, after = gp.MergeProvider(), Recorder("after", log)
    pipeline = (a + ra, b + rb) + merge + after
    assert isinstance(pipeline, gp.Pipeline)
    assert pipeline.output is after
    assert [n for n in pipeline.nodes()] == [a, ra, b, rb, merge, after]
    with gp.build(pipeline):
        assert set(pipeline.spec) == {RAW, LABELS}
        assert merge.get_upstream_providers() == [ra, rb]
    # tuples of bare nodes work too, and `+` does not change its operands
    p2 = (a, b) + gp.MergeProvider()
    assert [n for n in p2.nodes()][:2] == [a, b]
    assert [n for n in pipeline.nodes()] == [a, ra, b, rb, merge, after]
    with pytest.raises(PipelineError, match="tuple"):
        _ = (a, "not a node") + gp.MergeProvider()


# --- build ------------------------------------------------------------------------------------


def test_build_sets_up_upstream_first_and_tears_down_downstream_first():
    log = []
    pipeline = ArraySource(RAW, ramp(), log=log) + Recorder("first", log) + Recorder("second", log)
    with gp.build(pipeline):
        assert log == [("setup", "RAW"), ("setup", "first"), ("setup", "second")]
    assert log[3:] == [("teardown", "second"), ("teardown", "first"), ("teardown", "RAW")]


def test_build_tears_down_on_error_in_the_body():
    log = []
    pipeline = ArraySource(RAW, ramp(), log=log) + Recorder("filter", log)
    with pytest.raises(ZeroDivisionError):
        with gp.build(pipeline):
            1 / 0
    assert log == [("setup", "RAW"), ("setup", "filter"), ("teardown", "filter"), ("teardown", "RAW")]


def test_build_tears_down_what_was_set_up_when_setup_fails():
    log = []
    pipeline = (
        ArraySource(LABELS, ramp(), log=log),
        ArraySource(RAW, ramp(), log=log, fail_setup=True),
    ) + gp.MergeProvider()
    with pytest.raises(RuntimeError, match="failed on purpose") as e:
        with gp.build(pipeline):
            pytest.fail("the body must not run")
    assert any("while setting up" in note for note in getattr(e.value, "__notes__", []))
    assert log == [("setup", "LABELS"), ("setup", "RAW"), ("teardown", "LABELS")]


def test_teardown_error_is_raised_after_all_nodes_tore_down():
    log = []
    pipeline = ArraySource(RAW, ramp(), log=log) + Recorder("bad", log, fail_teardown=True) + Recorder("ok", log)
    with pytest.raises(RuntimeError, match="teardown failed"):
        with gp.build(pipeline):
            pass
    assert log[-3:] == [("teardown", "ok"), ("teardown", "bad"), ("teardown", "RAW")]


def test_requesting_outside_build_errors():
    source = ArraySource(RAW, ramp())
    pipeline = source + Recorder("r", [])
    request = request_for(RAW, OFFSET, (1, 1, 1))
    with pytest.raises(PipelineError, match="not set up.*build"):
        pipeline.request_batch(request)
    with gp.build(pipeline):
        pipeline.request_batch(request)
    with pytest.raises(PipelineError, match="not set up"):
        pipeline.request_batch(request)


# --- request_batch delivers exactly what was requested -----------------------------------------


def test_request_batch_returns_exactly_the_requested_rois_and_keys(zarr_raw):
    path, data = zarr_raw
    source = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"})
    pipeline = source + NewStyleBoxSum(RAW, SUM)
    roi = gp.Roi(OFFSET + VS * (1, 2, 3), VS * (2, 4, 5))
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({SUM: gp.ArraySpec(roi=roi)}))
    # RAW was read with context by the filter, but neither RAW nor LABELS is delivered
    assert list(batch) == [SUM]
    assert batch[SUM].spec.roi == roi and batch[SUM].data.shape == (2, 4, 5)
    d = data.astype(np.int64)
    expected = d[1:3, 2:6, 2:7] + d[1:3, 2:6, 3:8] + d[1:3, 2:6, 4:9]
    np.testing.assert_array_equal(batch[SUM].data, expected)


def test_source_larger_delivery_is_cropped_to_the_request():
    class Greedy(ArraySource):
        def provide(self, request):  # always delivers everything
            batch = gp.Batch()
            batch[self.key] = gp.Array(self.data.copy(), self.spec[self.key])
            return batch

    data = ramp()
    source = Greedy(RAW, data)
    roi = gp.Roi(OFFSET + VS * (2, 3, 4), VS * (1, 2, 3))
    with gp.build(source):
        batch = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))
    assert batch[RAW].spec.roi == roi
    np.testing.assert_array_equal(batch[RAW].data, data[2:3, 3:5, 4:7])


def test_delivered_dtype_must_match_declared():
    class Liar(gp.BatchFilter):
        def setup(self):
            spec = self.spec[RAW].copy()
            spec.dtype = np.dtype(np.float32)
            self.updates(RAW, spec)

        def process(self, batch, request):
            spec = batch[RAW].spec.update_with(gp.ArraySpec(dtype=np.float64))
            batch[RAW] = gp.Array(batch[RAW].data.astype(np.float64), spec)

    pipeline = ArraySource(RAW, ramp()) + Liar()
    with gp.build(pipeline):
        with pytest.raises(SpecError, match="Liar delivered RAW as float64.*float32"):
            pipeline.request_batch(request_for(RAW, OFFSET, (1, 1, 1)))


# --- request errors -------------------------------------------------------------------------------


@pytest.fixture
def built(zarr_raw):
    path, data = zarr_raw
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + Recorder("r", [])
    with gp.build(pipeline):
        yield pipeline


def _raises_naming(pipeline, request, *parts):
    with pytest.raises(RequestError) as e:
        pipeline.request_batch(request)
    for part in parts:
        assert str(part) in str(e.value), f"{part!r} not in {e.value}"
    return e.value


def test_unknown_key_is_a_request_error(built):
    roi = gp.Roi(OFFSET, VS)
    _raises_naming(built, gp.BatchRequest({LABELS: gp.ArraySpec(roi=roi)}), "LABELS", roi, "RAW")


def test_roi_outside_the_data_is_a_request_error(built):
    provided = gp.Roi(OFFSET, gp.Coordinate(SHAPE) * VS)
    roi = gp.Roi(OFFSET - VS, VS * 2)
    _raises_naming(built, gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}), "RAW", roi, provided)


def test_roi_off_the_voxel_grid_is_a_request_error(built):
    roi = gp.Roi(OFFSET + (0, 2, 0), VS * 2)
    _raises_naming(built, gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}), "RAW", roi, VS)
    shape_off = gp.Roi(OFFSET, VS * 2 + (0, 0, 1))
    _raises_naming(built, gp.BatchRequest({RAW: gp.ArraySpec(roi=shape_off)}), "RAW", shape_off)


def test_voxel_size_mismatch_is_a_request_error(built):
    roi = gp.Roi(OFFSET, VS * 2)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=roi, voxel_size=(40, 8, 8))})
    _raises_naming(built, request, "RAW", roi, "(40, 8, 8)", VS)


def test_dtype_mismatch_is_a_request_error(built):
    roi = gp.Roi(OFFSET, VS * 2)
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=roi, dtype=np.float32)})
    _raises_naming(built, request, "RAW", roi, "float32", "uint8")


# --- custom nodes the gunpowder way -----------------------------------------------------------------


def test_old_style_prepare_modifying_the_request_in_place():
    data = ramp()
    pipeline = ArraySource(RAW, data) + OldStyleBoxSum(RAW)
    roi = gp.Roi(OFFSET + VS * (0, 1, 1), VS * (2, 3, 4))
    request = gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)})
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert request[RAW].roi == roi  # the caller's request is not modified
    assert batch[RAW].spec.roi == roi and batch[RAW].data.dtype == np.int64
    d = data.astype(np.int64)
    np.testing.assert_array_equal(batch[RAW].data, d[0:2, 1:4, 0:4] + d[0:2, 1:4, 1:5] + d[0:2, 1:4, 2:6])


def test_old_style_needs_context_inside_the_data():
    pipeline = ArraySource(RAW, ramp()) + OldStyleBoxSum(RAW)
    roi = gp.Roi(OFFSET, VS * (1, 1, 1))  # the x-context lies outside the data
    with gp.build(pipeline):
        with pytest.raises(RequestError, match="RAW.*outside"):
            pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))


def test_new_style_returning_dependencies(zarr_raw):
    path, data = zarr_raw
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + NewStyleBoxSum(RAW, SUM)
    roi_sum = gp.Roi(OFFSET + VS * (3, 0, 1), VS * (2, 2, 2))
    roi_raw = gp.Roi(OFFSET + VS * (0, 5, 5), VS * (1, 1, 1))
    with gp.build(pipeline):
        batch = pipeline.request_batch(
            gp.BatchRequest({SUM: gp.ArraySpec(roi=roi_sum), RAW: gp.ArraySpec(roi=roi_raw)})
        )
    assert set(batch) == {SUM, RAW}
    assert batch[RAW].spec.roi == roi_raw
    np.testing.assert_array_equal(batch[RAW].data, data[0:1, 5:6, 5:6])
    d = data.astype(np.int64)
    np.testing.assert_array_equal(batch[SUM].data, d[3:5, 0:2, 0:2] + d[3:5, 0:2, 1:3] + d[3:5, 0:2, 2:4])


# --- randomness ---------------------------------------------------------------------------------------


def test_same_seed_gives_identical_batches(zarr_raw):
    path, _ = zarr_raw
    pipeline = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"}) + gp.RandomLocation() + Noise(RAW)
    request = gp.BatchRequest()
    request.add(RAW, VS * (2, 4, 4))
    request.add(LABELS, VS * (2, 2, 2))
    with gp.build(pipeline):
        a = pipeline.request_batch(_seeded(request, 7))
        b = pipeline.request_batch(_seeded(request, 7))
        others = [pipeline.request_batch(_seeded(request, s)) for s in range(8, 12)]
    for key in (RAW, LABELS):
        assert a[key].spec.roi == b[key].spec.roi == request[key].roi
        np.testing.assert_array_equal(a[key].data, b[key].data)
    assert any(not np.array_equal(a[RAW].data, o[RAW].data) for o in others)


def test_set_seed_makes_unseeded_requests_reproducible(zarr_raw):
    path, _ = zarr_raw
    pipeline = gp.ZarrSource(path, {RAW: "raw"}) + gp.RandomLocation() + Noise(RAW)
    request = gp.BatchRequest()
    request.add(RAW, VS * (1, 3, 3))
    with gp.build(pipeline):
        gp.set_seed(3)
        first = [pipeline.request_batch(request)[RAW].data for _ in range(3)]
        gp.set_seed(3)
        second = [pipeline.request_batch(request)[RAW].data for _ in range(3)]
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], first[1])


def _seeded(request, seed):
    out = request.copy()
    out.random_seed = seed
    return out


# --- placeholders and mixed-style prepare -------------------------------------------------------


def test_placeholders_are_not_delivered_and_never_read_by_sources(zarr_raw):
    path, data = zarr_raw
    seen = []

    class SeesPlaceholders(gp.BatchFilter):
        def prepare(self, request):
            seen.append({k: s.placeholder for k, s in request.items()})

    source = gp.ZarrSource(path, {RAW: "raw", LABELS: "labels"})
    roi = gp.Roi(OFFSET, VS * 2)
    far_outside = gp.Roi(OFFSET - VS * 100, VS * 300)
    request = gp.BatchRequest(
        {RAW: gp.ArraySpec(roi=roi), LABELS: gp.ArraySpec(roi=far_outside, placeholder=True)}
    )
    for pipeline in (source, (source,) + gp.RandomProvider() + SeesPlaceholders()):
        with gp.build(pipeline):
            batch = pipeline.request_batch(request)
        assert list(batch) == [RAW]
        np.testing.assert_array_equal(batch[RAW].data, data[:2, :2, :2])
    assert seen == [{RAW: False, LABELS: True}]


def test_prepare_may_change_the_request_in_place_and_return_dependencies():
    """As gunpowder's Pad does: shrink the request in place, and depend on another key."""
    data = ramp()

    class ShrinkAndDepend(gp.BatchFilter):
        def prepare(self, request):
            request[RAW].roi = request[RAW].roi.grow(None, -VS)
            # process() sees only the dependencies, so RAW is listed too (in its shrunk ROI)
            return gp.BatchRequest({RAW: request[RAW].copy(), LABELS: gp.ArraySpec(roi=request[RAW].roi)})

        def process(self, batch, request):
            assert batch[RAW].spec.roi == batch[LABELS].spec.roi == request[RAW].roi.grow(None, -VS)
            spec = batch[RAW].spec.copy()
            spec.roi = request[RAW].roi
            padded = np.pad(batch[RAW].data + batch[LABELS].data, ((0, 1), (0, 1), (0, 1)))
            out = gp.Batch()
            out[RAW] = gp.Array(padded.astype(np.uint8), spec)
            return out

    pipeline = (ArraySource(RAW, data), ArraySource(LABELS, data // 2)) + gp.MergeProvider() + ShrinkAndDepend()
    roi = gp.Roi(OFFSET + VS, VS * 3)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))
    assert list(batch) == [RAW] and batch[RAW].spec.roi == roi
    expected = np.zeros((3, 3, 3), dtype=np.uint8)
    expected[:2, :2, :2] = data[1:3, 1:3, 1:3] + data[1:3, 1:3, 1:3] // 2
    np.testing.assert_array_equal(batch[RAW].data, expected)
