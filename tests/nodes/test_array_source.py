"""ArraySource over a real funlib.persistence Array (a Zarr written by funlib.persistence)."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg as gp

fp = pytest.importorskip("funlib.persistence")

RAW = gp.ArrayKey("AS_RAW")


def test_array_source_provides_the_arrays_roi_and_reads_world_units(tmp_path):
    data = np.arange(6 * 8, dtype=np.float32).reshape(6, 8)
    array = fp.prepare_ds(
        tmp_path / "a.zarr", shape=data.shape, offset=(10, 20), voxel_size=(2, 5), dtype=np.float32
    )
    array[array.roi] = data
    source = gp.ArraySource(RAW, fp.open_ds(tmp_path / "a.zarr"))
    with gp.build(source):
        spec = source.spec[RAW]
        assert spec.roi == gp.Roi((10, 20), (12, 40)) and spec.voxel_size == (2, 5)
        assert spec.dtype == np.float32 and spec.interpolatable is True
        roi = gp.Roi((12, 30), (4, 10))
        batch = source.request_batch(gp.BatchRequest({RAW: gp.ArraySpec(roi=roi)}))
    assert batch[RAW].spec.roi == roi
    np.testing.assert_array_equal(batch[RAW].data, data[1:3, 2:4])


def test_array_source_refuses_what_is_not_an_array():
    with pytest.raises(ValueError, match="open_ds"):
        gp.ArraySource(RAW, np.zeros((2, 2)))
    with pytest.raises(AssertionError):
        gp.ArraySource("raw", np.zeros((2, 2)))


def test_funlib_open_ds_reads_a_daskseg_output_level_as_daskseg_does(tmp_path):
    """funlib.persistence opens the level array of an OME-Zarr image daskseg wrote with the same
    voxel size, offset, ROI, axis names and channel axis as daskseg's ZarrSource opening the group."""
    from daskseg.io import write_array

    data = np.random.default_rng(0).random((3, 4, 6, 5)).astype(np.float32)
    write_array(tmp_path / "o.zarr", "volumes/pred_affs", data, (40, 4, 4), offset=(400, 80, 40))
    array = fp.open_ds(tmp_path / "o.zarr" / "volumes" / "pred_affs" / "s0")
    assert tuple(array.voxel_size) == (40, 4, 4) and tuple(array.offset) == (400, 80, 40)
    assert tuple(array.roi.shape) == (160, 24, 20) and array.channel_dims == 1
    assert list(array.axis_names) == ["c^", "z", "y", "x"] and list(array.units) == ["nm"] * 3
    key = gp.ArrayKey("AS_AFFS")
    roi = gp.Roi((440, 84, 44), (80, 8, 12))
    request = gp.BatchRequest({key: gp.ArraySpec(roi=roi)})
    sources = [gp.ArraySource(key, array), gp.ZarrSource(tmp_path / "o.zarr", {key: "volumes/pred_affs"})]
    got = []
    for source in sources:
        with gp.build(source):
            assert source.spec[key].roi == gp.Roi((400, 80, 40), (160, 24, 20))
            got.append(source.request_batch(request)[key].data)
    np.testing.assert_array_equal(got[0], data[:, 1:3, 1:3, 1:4])
    np.testing.assert_array_equal(got[1], got[0])
