"""gunpowder's exception names are importable from daskseg and catch daskseg's request errors."""

import numpy as np
import pytest

import daskseg as gp
from daskseg.io import write_array


def test_gunpowder_exception_names_catch_a_bad_request(tmp_path):
    raw = gp.ArrayKey("RAW")
    data = np.arange(4 * 4 * 4, dtype=np.uint8).reshape(4, 4, 4)
    path = tmp_path / "a.zarr"
    write_array(path, "raw", data, voxel_size=(1, 1, 1), offset=(0, 0, 0))
    pipeline = gp.ZarrSource(str(path), {raw: "raw"})
    outside = gp.BatchRequest({raw: gp.ArraySpec(roi=gp.Roi((10, 10, 10), (2, 2, 2)))})
    with gp.build(pipeline):
        for cls in (gp.BatchRequestError, gp.PipelineRequestError, ValueError):
            with pytest.raises(cls, match="RAW"):
                pipeline.request_batch(outside)

