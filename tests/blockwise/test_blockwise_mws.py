"""``daskseg.blockwise.segment(method='mws')``: mutex watershed fragments per block with context on
long-range affinities, the neighbourhood read from the affinities' attributes; one block is exactly
the in-memory mutex watershed, and many blocks stay close to it."""

from __future__ import annotations

import numpy as np
import pytest
from dask_fixtures import local_client
from segment_checks import read, same_partition, voronoi_labels

import daskseg.blockwise as bw
from daskseg.io import set_attrs, write_array
from daskseg.report import gt_affinities
from daskseg.segment import SegmentError, mutex_watershed
from daskseg.segment.evaluate import voi

VS = (4, 4, 4)
LONG_RANGE = [[-1, 0, 0], [0, -1, 0], [0, 0, -1], [-2, 0, 0], [0, -4, 0], [0, 0, -4]]


def noisy_long_range(shape=(12, 48, 40), cells=30, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Long-range affinities of a random Voronoi labelling, noisy enough that some boundary edges leak."""
    rng = np.random.default_rng(seed)
    labels = voronoi_labels(rng, shape, cells)
    affs = gt_affinities(labels, LONG_RANGE).astype(np.float32) * 0.5
    affs += rng.random(affs.shape, dtype=np.float32) * 0.6
    return np.clip(affs, 0, 1), labels


@pytest.fixture(scope="module")
def client():
    with local_client(2, processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def affs_path(tmp_path_factory):
    affs, labels = noisy_long_range()
    path = tmp_path_factory.mktemp("affs") / "pred.zarr"
    write_array(path, "volumes/pred_affs", affs, VS, chunk_shape=(6, 16, 8))
    set_attrs(path, "volumes/pred_affs", {"daskseg": {"affinity_neighborhood": LONG_RANGE}})
    write_array(path, "volumes/labels", labels, VS)
    return str(path)


def test_one_block_is_the_in_memory_mutex_watershed(affs_path, tmp_path, client):
    affs = read(f"{affs_path}/volumes/pred_affs")
    result = bw.segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "s.zarr/seg"), [0.5], method="mws",
                        block_shape=(12, 48, 40), client=client)
    expected = mutex_watershed(affs, LONG_RANGE, min_size=10)
    assert same_partition(read(result.outputs[0.5]), expected)
    # the neighbourhood came from the attributes: without the long-range channels it merges more
    nearest_only = mutex_watershed(affs[:3], LONG_RANGE[:3], min_size=10)
    assert len(np.unique(nearest_only)) < len(np.unique(expected))
    gt = read(f"{affs_path}/volumes/labels")
    assert sum(voi(expected, gt)) < sum(voi(nearest_only, gt))


def test_blockwise_is_close_to_one_block(affs_path, tmp_path, client):
    affs_ds = f"{affs_path}/volumes/pred_affs"
    whole = bw.segment(affs_ds, str(tmp_path / "whole.zarr/seg"), [0.5], method="mws", block_shape=(12, 48, 40),
                       client=client)
    one_block = read(whole.outputs[0.5])
    gt = read(f"{affs_path}/volumes/labels")
    assert sum(voi(one_block, gt)) < 0.01  # the long-range edges resolve every leak of this volume
    measured = {}
    for face_edges in ("all", "nearest"):
        blocks = bw.segment(affs_ds, str(tmp_path / f"{face_edges}.zarr/seg"), [0.5, 0.6], method="mws",
                            block_shape=(6, 16, 16), client=client, mws={"face_edges": face_edges})
        assert len(np.unique(read(blocks.fragments))) > len(np.unique(one_block))  # block faces cut objects
        for t, path in blocks.outputs.items():
            measured[face_edges, t] = voi(read(path), one_block, ignore_gt=[])
    # pieces cut apart by block faces are re-joined by the mean affinity between them. At 0.6 exactly as
    # one block decides; at 0.5 a few small face contacts, whose mean is noisy, merge objects: VOI
    # 0.101 measured on every channel ('all', the default: long-range edges count against a merge),
    # 0.145 on the nearest-neighbour channels alone; all of it merge
    assert sum(measured["all", 0.6]) <= 0.05 and sum(measured["nearest", 0.6]) <= 0.05
    assert measured["all", 0.5][0] <= 0.01 and measured["nearest", 0.5][0] <= 0.01
    assert measured["all", 0.5][1] < measured["nearest", 0.5][1] <= 0.3


def test_edges_use_the_nearest_neighbour_channels(affs_path, tmp_path, client):
    result = bw.segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "s.zarr/seg"), [0.5], method="cc",
                        block_shape=(6, 16, 16), client=client)
    from daskseg.segment import connected_components

    affs = read(f"{affs_path}/volumes/pred_affs")
    assert same_partition(read(result.outputs[0.5]), connected_components(affs[:3], 0.5))


def test_bad_neighbourhoods_are_refused(affs_path, tmp_path):
    affs_ds = f"{affs_path}/volumes/pred_affs"
    with pytest.raises(SegmentError, match=r"record the neighbourhood .* but .* was given"):
        bw.plan_segment(affs_ds, str(tmp_path / "a.zarr/seg"), method="mws", neighborhood=LONG_RANGE[:3])
    affs, _ = noisy_long_range((6, 16, 16), 4)
    path = tmp_path / "plain.zarr"
    write_array(path, "affs", affs, VS)  # no attribute: nearest neighbours assumed, 3 channels
    with pytest.raises(SegmentError, match="have shape \\(6, 6, 16, 16\\).*needs exactly 3 channels"):
        bw.plan_segment(f"{path}/affs", str(tmp_path / "b.zarr/seg"), method="mws")
    with pytest.raises(SegmentError, match="nearest-neighbour offset along every axis"):
        bw.plan_segment(f"{path}/affs", str(tmp_path / "c.zarr/seg"), method="mws",
                        neighborhood=[[-1, 0, 0], [0, -1, 0], [-2, 0, 0], [0, -4, 0], [0, 0, -4], [0, -8, 0]])
    with pytest.raises(SegmentError, match="unknown mutex watershed arguments"):
        bw.plan_segment(affs_ds, str(tmp_path / "d.zarr/seg"), method="mws", mws={"sigma": 1})
    with pytest.raises(SegmentError, match="apply only to method 'mws'"):
        bw.plan_segment(affs_ds, str(tmp_path / "e.zarr/seg"), method="watershed", mws={"bias": 0.4})
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()
