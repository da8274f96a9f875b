"""ExcludeLabels: excluded ids become background; the ignore mask by hand, with erosion distance."""

from __future__ import annotations

import numpy as np

import daskseg as gp
from daskseg.io import write_array

LABELS = gp.ArrayKey("EL_LABELS")
MASK = gp.ArrayKey("EL_MASK")


def _pipeline(tmp_path, **kwargs):
    labels = np.array([[1, 1, 5, 5, 5, 5], [1, 1, 5, 5, 5, 5]], dtype=np.uint32)
    path = tmp_path / "el.zarr"
    write_array(path, "labels", labels, (2, 2))
    return gp.ZarrSource(path, {LABELS: "labels"}) + gp.ExcludeLabels(LABELS, [5], **kwargs)


def test_excluded_labels_become_background_value(tmp_path):
    pipeline = _pipeline(tmp_path, background_value=7)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((0, 0), (4, 12)))}))
    np.testing.assert_array_equal(batch[LABELS].data, [[1, 1, 7, 7, 7, 7]] * 2)


def test_ignore_mask_keeps_excluded_voxels_within_the_erode_distance(tmp_path):
    # excluded columns 2..5 are 2, 4, 6, 8 world units (voxel size 2) from the nearest included voxel
    pipeline = _pipeline(tmp_path, ignore_mask=MASK, ignore_mask_erode=5)
    roi = gp.Roi((0, 0), (4, 12))
    with gp.build(pipeline):
        assert pipeline.spec[MASK].dtype == np.uint8
        request = gp.BatchRequest({LABELS: gp.ArraySpec(roi=roi), MASK: gp.ArraySpec(roi=roi)})
        batch = pipeline.request_batch(request)
    np.testing.assert_array_equal(batch[MASK].data, [[1, 1, 1, 1, 0, 0]] * 2)
    np.testing.assert_array_equal(batch[LABELS].data, [[1, 1, 0, 0, 0, 0]] * 2)


def test_ignore_mask_alone_and_on_a_smaller_roi(tmp_path):
    pipeline = _pipeline(tmp_path, ignore_mask=MASK, ignore_mask_erode=0)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({MASK: gp.ArraySpec(roi=gp.Roi((0, 2), (2, 6)))}))
    assert MASK in batch and batch[MASK].spec.roi == gp.Roi((0, 2), (2, 6))
    np.testing.assert_array_equal(batch[MASK].data, [[1, 0, 0]])
