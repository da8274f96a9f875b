"""DeformAugment: identity, labels never mixed, graph nodes land on their moved voxels, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from marked import BLOB, CENTRE, LABELS, label_under, marked, node_location, request
from recording import Recorder

import daskseg as gp


def test_without_jitter_rotation_or_scale_the_batch_is_unchanged():
    pipeline, location = marked((10, 20, 20), (2, 2, 2), (5, 10, 10))
    recorder = Recorder()
    augment = gp.DeformAugment((10, 10, 10), (0, 0, 0), rotate=False)
    roi = gp.Roi((4, 8, 8), (12, 24, 24))
    with gp.build(pipeline + recorder + augment):
        batch = (pipeline + recorder + augment).request_batch(request(roi))
    assert recorder.requests[0][LABELS].roi == roi
    assert np.allclose(node_location(batch), location)
    assert label_under(batch, location) == CENTRE


@pytest.mark.parametrize("rotation_axes", [None, [1, 2]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_node_on_a_marked_voxel_ends_on_the_moved_voxel(rotation_axes, seed):
    # the blob lies 8 voxels off the centre (28, 28, 28) of the request: rotations move it far
    pipeline, start = marked((56, 56, 56), (1, 1, 1), (34, 23, 30))
    augment = gp.DeformAugment((8, 8, 8), (1.5, 1.5, 1.5), scale_interval=(0.9, 1.1), rotation_axes=rotation_axes)
    roi = gp.Roi((16, 16, 16), (24, 24, 24))
    with gp.build(pipeline + augment):
        batch = (pipeline + augment).request_batch(request(roi, seed))
        again = (pipeline + augment).request_batch(request(roi, seed))
    data = batch[LABELS].data
    assert set(np.unique(data)) <= {0, BLOB, CENTRE}  # nearest neighbour: no new labels
    location = node_location(batch)
    assert label_under(batch, location) in (CENTRE, BLOB)
    blob = np.argwhere(np.isin(data, (CENTRE, BLOB)))
    centroid = np.asarray(roi.begin) + blob.mean(axis=0) + 0.5
    assert np.all(np.abs(location - centroid) <= 1)
    if rotation_axes is not None:  # rotations in y-x leave z to the jitter
        assert abs(location[0] - start[0]) < 4
    assert np.array_equal(again[LABELS].data, data) and np.array_equal(node_location(again), location)


def test_arguments():
    with pytest.raises(NotImplementedError, match="transform_key"):
        gp.DeformAugment((8, 8), (1, 1), transform_key=gp.ArrayKey("DA_TRANSFORM"))
    with pytest.raises(ValueError, match="same number"):
        gp.DeformAugment((8, 8, 8), (1, 1))
    with pytest.raises(AssertionError, match="rotation_axes"):
        gp.DeformAugment((8, 8, 8), (1, 1, 1), rotation_axes=[0, 3])
