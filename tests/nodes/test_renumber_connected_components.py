"""RenumberConnectedComponents: face-connected components of one value get their own labels."""

from __future__ import annotations

import numpy as np

import daskseg as gp
from daskseg.io import write_array

LABELS = gp.ArrayKey("RCC_LABELS")


def test_components_of_the_same_value_are_split_and_numbered_in_order(tmp_path):
    labels = np.array(
        [
            [3, 3, 0, 3],
            [0, 0, 0, 3],
            [9, 0, 3, 0],  # the lone 3 touches the right-hand 3s only diagonally: separate
        ],
        dtype=np.uint16,
    )
    path = tmp_path / "rcc.zarr"
    write_array(path, "labels", labels, (1, 1))
    pipeline = gp.ZarrSource(path, {LABELS: "labels"}) + gp.RenumberConnectedComponents(LABELS)
    with gp.build(pipeline):
        batch = pipeline.request_batch(gp.BatchRequest({LABELS: gp.ArraySpec(roi=gp.Roi((0, 0), (3, 4)))}))
    out = batch[LABELS].data
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 4, 0]])
