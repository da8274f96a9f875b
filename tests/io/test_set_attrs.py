"""set_attrs writes attributes on a dataset or the container root, in Zarr and HDF5 alike."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import zarr

from daskseg.io import open_dataset, set_attrs, write_array


@pytest.mark.parametrize("suffix", [".zarr", ".hdf"])
def test_dataset_and_root_attributes_round_trip(tmp_path, suffix):
    path = str(tmp_path / f"c{suffix}")
    write_array(path, "volumes/raw", np.zeros((2, 3, 4), np.uint8), (40, 4, 4))
    set_attrs(path, "/volumes/raw", {"value_range": [0.0, 1.0]})
    set_attrs(path, None, {"iteration": 7})
    if suffix == ".zarr":
        array_attrs = dict(zarr.open_array(f"{path}/volumes/raw/s0", mode="r").attrs)  # the image's level 0
        root_attrs = dict(zarr.open_group(path, mode="r").attrs)
    else:
        with h5py.File(path, "r") as f:
            array_attrs = {k: np.asarray(v).tolist() for k, v in f["volumes/raw"].attrs.items()}
            root_attrs = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
    assert array_attrs["value_range"] == [0.0, 1.0]
    assert root_attrs["iteration"] == 7
    # the spatial metadata written with the data is untouched
    assert open_dataset(path, "volumes/raw").voxel_size == (40, 4, 4)
