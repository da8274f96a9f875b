"""A gunpowder points pipeline ported by the import swap: CSV points and a Zarr volume, merged, a
random location that holds a point, elastic and simple augmentation, and points rasterized; every
node must sit on its own marked voxel and on a drawn ball."""

from __future__ import annotations

import pickle

import numpy as np

import daskseg as gp
from daskseg.io import write_array

VOXEL_SIZE = (4, 2, 2)


def test_points_training_pipeline(tmp_path):
    rng = np.random.default_rng(3)
    shape = (30, 60, 60)
    voxels = rng.integers((8, 16, 16), (22, 44, 44), size=(6, 3))
    labels = np.zeros(shape, dtype=np.uint64)
    for i, v in enumerate(voxels, start=1):  # a 3-voxel cube per point, labelled with its row number
        labels[tuple(slice(c - 1, c + 2) for c in v)] = i
    write_array(tmp_path / "sample.zarr", "labels", labels, VOXEL_SIZE)
    # the points in voxels, at voxel centres, scaled to world units by the source (as gunpowder's scale=)
    csv = tmp_path / "points.csv"
    csv.write_text("".join(f"{z + 0.5},{y + 0.5},{x + 0.5},{i}\n" for i, (z, y, x) in enumerate(voxels, start=1)))

    labels_key = gp.ArrayKey("COMPAT_LABELS")
    points = gp.GraphKey("COMPAT_POINTS")
    drawn = gp.ArrayKey("COMPAT_DRAWN")
    pipeline = (
        (
            gp.ZarrSource(tmp_path / "sample.zarr", {labels_key: "labels"}, {labels_key: gp.ArraySpec(interpolatable=False)}),
            # the points' ROI is the volume's (the default, their bounding box, is too small for context)
            gp.CsvPointsSource(csv, points, [0, 1, 2], gp.GraphSpec(roi=gp.Roi((0, 0, 0), (120, 120, 120))), scale=VOXEL_SIZE, id_col=3),
        )
        + gp.MergeProvider()
        + gp.RandomLocation(ensure_nonempty=points)
        + gp.ElasticAugment((2, 10, 10), (0.5, 1, 1), (0, np.pi / 2))
        + gp.SimpleAugment(transpose_only=[1, 2])
        + gp.RasterizeGraph(points, drawn, gp.ArraySpec(voxel_size=VOXEL_SIZE), gp.RasterizationSettings(radius=(4, 4, 4)))
    )
    request = gp.BatchRequest()
    request.add(labels_key, (40, 40, 40))
    request.add(points, (40, 40, 40))
    request.add(drawn, (40, 40, 40))
    seen = 0
    with gp.build(pipeline):
        for seed in range(6):
            request.random_seed = seed
            batch = pipeline.request_batch(request)
            batch = pickle.loads(pickle.dumps(batch))  # batches with graphs travel to Dask workers
            nodes = list(batch[points].nodes)
            assert nodes
            for node in nodes:
                index = tuple(((node.location - np.asarray(request[points].roi.begin)) // VOXEL_SIZE).astype(int))
                assert batch[labels_key].data[index] == int(node.id)
                assert batch[drawn].data[index] == 1
                seen += 1
    assert seen >= 6
