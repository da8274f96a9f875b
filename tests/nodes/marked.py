"""A labelled volume with one marked blob and a graph node on the blob's centre voxel, for tests that
check graph nodes move with the arrays."""

from __future__ import annotations

import numpy as np

import daskseg as gp

LABELS = gp.ArrayKey("MARKED_LABELS")
POINTS = gp.GraphKey("MARKED_POINTS")
CENTRE, BLOB = 9, 7  # label of the centre voxel, and of the voxels around it


def marked(shape, voxel_size, centre, half: int = 1):
    """Sources of ``LABELS`` (a blob of ``2 half + 1`` voxels a side around voxel ``centre``, its
    centre voxel labelled apart) and ``POINTS`` (one node, id 1, at the centre of that voxel), merged.

    Returns the pipeline and the node's location.
    """
    labels = np.zeros(shape, dtype=np.uint64)
    labels[tuple(slice(c - half, c + half + 1) for c in centre)] = BLOB
    labels[tuple(centre)] = CENTRE
    vs = np.asarray(voxel_size)
    roi = gp.Roi((0,) * len(shape), tuple(np.asarray(shape) * vs))
    location = (np.asarray(centre) + 0.5) * vs
    graph = gp.Graph([gp.Node(1, location.astype(np.float64))], [], gp.GraphSpec(roi=roi))
    arrays = gp.GPArraySource(LABELS, gp.Array(labels, gp.ArraySpec(roi=roi, voxel_size=voxel_size, interpolatable=False)))
    return (arrays, gp.GPGraphSource(POINTS, graph)) + gp.MergeProvider(), location


def request(roi, seed=0):
    out = gp.BatchRequest(random_seed=seed)
    out[LABELS] = gp.ArraySpec(roi=roi)
    out[POINTS] = gp.GraphSpec(roi=roi)
    return out


def label_under(batch, location) -> int:
    """The label of the output voxel that contains ``location``."""
    array = batch[LABELS]
    index = np.floor((np.asarray(location) - np.asarray(array.spec.roi.begin)) / np.asarray(array.spec.voxel_size))
    return int(array.data[tuple(index.astype(int))])


def node_location(batch) -> np.ndarray:
    (node,) = batch[POINTS].nodes
    return np.asarray(node.location, dtype=np.float64)
