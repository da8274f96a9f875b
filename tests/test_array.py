"""ArrayKey, ArraySpec and Array: cropping on the voxel grid, channel dims, readable errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from daskseg.array import Array, ArrayKey, ArraySpec
from daskseg.errors import GeometryError, SpecError
from daskseg.geometry import Coordinate, Roi

VS = Coordinate((40, 4, 4))


def ramp(shape) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)


def make(data, offset=(400, 40, 40), vs=VS) -> Array:
    spatial = data.shape[-len(vs) :]
    return Array(data, ArraySpec(roi=Roi(offset, Coordinate(spatial) * vs), voxel_size=vs))


def test_array_key_identity_and_pickle():
    a = ArrayKey("RAW")
    assert ArrayKey("RAW") is a and a == ArrayKey("RAW")
    assert a != ArrayKey("LABELS") and a < ArrayKey("SOMETHING")
    assert repr(a) == "RAW"
    assert pickle.loads(pickle.dumps(a)) is a
    assert len({a, ArrayKey("RAW")}) == 1


def test_array_spec_update_with_and_copy():
    base = ArraySpec(roi=Roi((0, 0), (8, 8)), voxel_size=(4, 4), dtype="uint8", interpolatable=True)
    assert base.voxel_size == Coordinate((4, 4)) and base.dtype == np.dtype(np.uint8)
    updated = base.update_with(ArraySpec(dtype=np.float32))
    assert updated.dtype == np.float32 and updated.roi == base.roi and updated.voxel_size == base.voxel_size
    assert base.dtype == np.uint8  # the original is untouched
    c = base.copy()
    c.roi = Roi((4, 4), (4, 4))
    assert base.roi == Roi((0, 0), (8, 8))
    with pytest.raises(SpecError, match="nonspatial"):
        ArraySpec(roi=Roi((0,), (1,)), nonspatial=True)


def test_array_takes_dtype_from_data():
    a = make(np.zeros((2, 3, 3), dtype=np.uint16))
    assert a.spec.dtype == np.uint16


def test_array_shape_must_match_roi():
    with pytest.raises(SpecError, match=r"\(2, 3, 4\).*\(2, 3, 3\)"):
        Array(np.zeros((2, 3, 4)), ArraySpec(roi=Roi((0, 0, 0), (80, 12, 12)), voxel_size=VS))
    with pytest.raises(GeometryError, match=r"not a multiple of its voxel size \(40, 4, 4\)"):
        Array(np.zeros((2, 3, 3)), ArraySpec(roi=Roi((0, 0, 0), (80, 12, 10)), voxel_size=VS))
    with pytest.raises(SpecError, match="no voxel size"):
        Array(np.zeros((2, 3, 3)), ArraySpec(roi=Roi((0, 0, 0), (80, 12, 12))))


def test_crop_selects_the_voxels_of_the_roi():
    data = ramp((5, 10, 10))
    a = make(data)  # ROI [400:600, 40:80, 40:80]
    roi = Roi((440, 48, 60), (80, 12, 8))  # voxels z 1:3, y 2:5, x 5:7
    cropped = a.crop(roi)
    assert cropped.spec.roi == roi
    assert cropped.spec.voxel_size == VS
    np.testing.assert_array_equal(cropped.data, data[1:3, 2:5, 5:7])
    # a copy by default, a view on request
    cropped.data[...] = -1
    assert data.min() == 0
    view = a.crop(roi, copy=False)
    assert np.shares_memory(view.data, data)


def test_crop_keeps_channel_dims_whole():
    data = ramp((3, 2, 5, 10, 10))
    a = make(data)
    roi = Roi((480, 40, 72), (40, 40, 8))
    cropped = a.crop(roi)
    assert cropped.data.shape == (3, 2, 1, 10, 2)
    np.testing.assert_array_equal(cropped.data, data[:, :, 2:3, 0:10, 8:10])


def test_crop_errors_name_rois_and_voxel_size():
    a = make(ramp((5, 10, 10)))
    outside = Roi((360, 40, 40), (80, 8, 8))
    with pytest.raises(GeometryError) as e:
        a.crop(outside)
    assert str(outside) in str(e.value) and str(a.spec.roi) in str(e.value)
    off_grid = Roi((400, 42, 40), (40, 8, 8))
    with pytest.raises(GeometryError) as e:
        a.crop(off_grid)
    assert str(off_grid) in str(e.value) and "(40, 4, 4)" in str(e.value)


def test_crop_respects_the_arrays_grid_offset():
    # an array whose offset is a multiple of the voxel size, cropped at another grid point
    a = make(ramp((4, 4, 4)), offset=(0, 4, 8))
    cropped = a.crop(Roi((40, 8, 12), (40, 4, 4)))
    assert cropped.data.item() == ramp((4, 4, 4))[1, 1, 1]


def test_nonspatial_array_crop_is_identity():
    a = Array(np.array([1.5, 2.5]), ArraySpec(nonspatial=True))
    assert a.crop(Roi((0,), (1,))).data is a.data


def test_merge_pastes_other_inside():
    base = make(np.zeros((4, 6, 6), dtype=np.uint8))
    patch = make(np.full((2, 2, 3), 7, dtype=np.uint8), offset=(440, 48, 52))
    merged = base.merge(patch, copy=True)
    expected = np.zeros((4, 6, 6), dtype=np.uint8)
    expected[1:3, 2:4, 3:6] = 7
    np.testing.assert_array_equal(merged.data, expected)
    assert base.data.max() == 0  # copy=True left the original alone
    # if other is not inside, other replaces
    bigger = make(np.ones((5, 7, 7), dtype=np.uint8), offset=(360, 36, 36))
    assert base.merge(bigger).data is bigger.data


def test_array_copy_is_deep():
    a = make(ramp((2, 2, 2)))
    b = a.copy()
    b.data[0, 0, 0] = 99
    assert a.data[0, 0, 0] == 0
    assert b.spec == a.spec


def test_checked_roi_and_voxel_size_name_what_lacks_them():
    spec = ArraySpec(roi=Roi((0, 0), (4, 4)), voxel_size=(2, 2))
    assert spec.checked_roi("RAW") == Roi((0, 0), (4, 4)) and spec.checked_voxel_size("RAW") == Coordinate((2, 2))
    with pytest.raises(SpecError, match="^Resample's source RAW has no ROI$"):
        ArraySpec(voxel_size=(2, 2)).checked_roi("Resample's source RAW")
    with pytest.raises(SpecError, match="^the request for PRED has no voxel size$"):
        ArraySpec(roi=Roi((0,), (4,))).checked_voxel_size("the request for PRED")
