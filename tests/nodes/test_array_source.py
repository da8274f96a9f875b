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
