"""gunpowder 1.5 reads what daskseg writes: the level arrays of daskseg's OME-Zarr images carry the
funlib attributes gunpowder's ZarrSource (through funlib.persistence) reads, so a gunpowder pipeline
pointed at ``<image>/s0`` gets the batch a daskseg pipeline gets from the image's name."""

from __future__ import annotations

import numpy as np
import pytest

import daskseg
from daskseg.io import write_array
from daskseg.synth import LABELS_DATASET, OME_LABELS_DATASET, RAW_DATASET, write_sample

gunpowder = pytest.importorskip("gunpowder", reason="gunpowder is a dev dependency (pip install -e .[dev])")


def _batch(gp, store, datasets, roi):
    keys = {name: gp.ArrayKey(name.upper()) for name in datasets}
    source = gp.ZarrSource(str(store), {keys[name]: path for name, path in datasets.items()})
    request = gp.BatchRequest()
    for key in keys.values():
        request[key] = gp.ArraySpec(roi=gp.Roi(*roi))
    with gp.build(source):
        batch = source.request_batch(request)
    return {name: batch[key] for name, key in keys.items()}


def test_gunpowder_reads_daskseg_samples_and_outputs_at_their_level_0(tmp_path):
    sample = tmp_path / "sample.zarr"
    write_sample(sample, (6, 24, 24), seed=3, offset=(80, 16, 16), preset="easy")
    affs = np.random.default_rng(1).random((3, 4, 16, 16)).astype(np.float32)
    write_array(tmp_path / "pred.zarr", "volumes/pred_affs", affs, (40, 4, 4), offset=(120, 32, 32))
    roi = ((160, 40, 36), (80, 24, 20))
    ours = _batch(daskseg, sample, {"raw": RAW_DATASET, "labels": LABELS_DATASET}, roi)
    ours.update(_batch(daskseg, tmp_path / "pred.zarr", {"affs": "volumes/pred_affs"}, roi))
    theirs = _batch(gunpowder, sample, {"raw": f"{RAW_DATASET}/s0", "labels": f"{OME_LABELS_DATASET}/s0"}, roi)
    theirs.update(_batch(gunpowder, tmp_path / "pred.zarr", {"affs": "volumes/pred_affs/s0"}, roi))
    for name in ("raw", "labels", "affs"):
        assert tuple(theirs[name].spec.roi.offset) == tuple(ours[name].spec.roi.offset) == roi[0]
        assert tuple(theirs[name].spec.voxel_size) == tuple(ours[name].spec.voxel_size) == (40, 4, 4)
        np.testing.assert_array_equal(theirs[name].data, ours[name].data)
    assert ours["affs"].data.shape == (3, 2, 6, 5)
