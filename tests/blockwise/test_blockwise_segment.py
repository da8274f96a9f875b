"""``daskseg.blockwise.segment`` on real Zarr files and a real LocalCluster: exactly the in-memory
partition (connected components; agglomeration of the same fragments), resumable, and bad input
refused at the door."""

from __future__ import annotations

import os

import numpy as np
import pytest
from dask_fixtures import local_client
from ome_checks import check_output
from segment_checks import read, same_partition, voronoi_labels

import daskseg.blockwise as bw
from daskseg.errors import GeometryError, InputDataError, LayoutMismatchError
from daskseg.io import open_dataset, set_attrs, write_array
from daskseg.report import gt_affinities
from daskseg.segment import SegmentError, agglomerate, connected_components
from daskseg.segment.evaluate import cremi_scores, voi

VS = (4, 4, 4)


def noisy_affinities(shape=(12, 48, 40), cells=30, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Affinities of a random Voronoi labelling, with noise that both breaks and leaks edges."""
    rng = np.random.default_rng(seed)
    labels = voronoi_labels(rng, shape, cells)
    affs = gt_affinities(labels).astype(np.float32) * 0.7 + rng.random((3, *shape), dtype=np.float32) * 0.45
    return np.clip(affs, 0, 1), labels


@pytest.fixture(scope="module")
def client():
    with local_client(2, processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def affs_path(tmp_path_factory):
    affs, labels = noisy_affinities()
    path = tmp_path_factory.mktemp("affs") / "pred.zarr"
    write_array(path, "volumes/pred_affs", affs, VS, chunk_shape=(4, 16, 8))
    write_array(path, "volumes/labels", labels, VS)
    return str(path)


@pytest.mark.parametrize("block_shape", [(4, 16, 8), (5, 17, 23), (12, 48, 40)])
def test_connected_components_exactly_as_in_memory(affs_path, tmp_path, client, block_shape):
    affs = read(f"{affs_path}/volumes/pred_affs")
    result = bw.segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "seg.zarr/volumes/seg"), [0.6, 0.8],
                        method="cc", block_shape=block_shape, client=client)
    for threshold, path in result.outputs.items():
        expected = connected_components(affs, threshold)
        assert len(np.unique(expected)) > 20  # the noise makes the thresholds matter
        assert same_partition(read(path), expected), (threshold, block_shape)


def test_connected_components_on_one_worker_and_cubic_blocks(affs_path, tmp_path):
    affs = read(f"{affs_path}/volumes/pred_affs")
    with local_client(1) as one:
        result = bw.segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "seg.zarr/seg"), [0.7], method="cc",
                            block_shape=(3, 6, 5), client=one)
    assert result.grid_shape == (4, 8, 8)  # 256 blocks, a reduction tree of 4 levels
    assert [s.name for s in result.stages][2:6] == [f"agglomerate-L{i}" for i in range(4)]
    assert same_partition(read(result.outputs[0.7]), connected_components(affs, 0.7))


@pytest.mark.parametrize("agglomeration", ["hierarchical", "static"])
def test_watershed_agglomeration_equals_in_memory_of_the_same_fragments(affs_path, tmp_path, client, agglomeration):
    affs = read(f"{affs_path}/volumes/pred_affs")
    out = str(tmp_path / "seg.zarr/volumes/segmentation")
    result = bw.segment(f"{affs_path}/volumes/pred_affs", out, [0.4, 0.6], block_shape=(6, 16, 16), client=client,
                        agglomeration=agglomeration)
    fragments = read(result.fragments)
    # ids are unique by construction: each fragment lies in the block its id names
    bits = (6 * 16 * 16).bit_length()  # room for one fragment per voxel of a block
    blocks = (fragments >> np.uint64(bits)).astype(np.int64)
    z, y, x = np.meshgrid(*(np.arange(n) // b for n, b in zip(fragments.shape, (6, 16, 16))), indexing="ij")
    assert (fragments > 0).all() and np.array_equal(blocks, (z * 3 + y) * 3 + x)
    assert set(result.outputs) == {0.4, 0.6} and result.outputs[0.4].endswith("segmentation_0.4")
    for threshold, path in result.outputs.items():
        expected = agglomerate(fragments, affs, threshold, hierarchical=agglomeration == "hierarchical")
        assert same_partition(read(path), expected)
    assert len(np.unique(read(result.outputs[0.4]))) < len(np.unique(read(result.outputs[0.6])))


@pytest.mark.parametrize("block_shape", [(4, 16, 8), (5, 17, 23), (6, 12, 10)])
def test_hierarchical_agglomeration_is_exact_for_any_blocks(affs_path, tmp_path, client, block_shape):
    affs = read(f"{affs_path}/volumes/pred_affs")
    result = bw.segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "s.zarr/seg"), [0.3, 0.5, 0.7],
                        block_shape=block_shape, client=client)
    fragments = read(result.fragments)
    for threshold, path in result.outputs.items():
        assert same_partition(read(path), agglomerate(fragments, affs, threshold)), (threshold, block_shape)


def test_watershed_blockwise_close_to_one_block(affs_path, tmp_path, client):
    affs_ds = f"{affs_path}/volumes/pred_affs"
    whole = bw.segment(affs_ds, str(tmp_path / "whole.zarr/seg"), [0.5], block_shape=(12, 48, 40), client=client)
    blocks = bw.segment(affs_ds, str(tmp_path / "blocks.zarr/seg"), [0.5], block_shape=(4, 16, 16), client=client)
    split, merge = voi(read(blocks.outputs[0.5]), read(whole.outputs[0.5]), ignore_gt=[])
    assert split + merge <= 0.05
    gt = read(f"{affs_path}/volumes/labels")
    assert sum(voi(read(blocks.outputs[0.5]), gt)) < 0.5
    # against the ground truth, blockwise scores within 0.02 of the one-block ones
    ours, one = cremi_scores(read(blocks.outputs[0.5]), gt), cremi_scores(read(whole.outputs[0.5]), gt)
    assert abs(ours["voi"] - one["voi"]) <= 0.02 and abs(ours["adapted_rand"] - one["adapted_rand"]) <= 0.02, \
        (ours, one)


def test_resume_after_an_interruption_gives_the_same_bytes(affs_path, tmp_path, client):
    affs_ds = f"{affs_path}/volumes/pred_affs"
    ref = bw.segment(affs_ds, str(tmp_path / "ref.zarr/seg"), [0.5], block_shape=(6, 16, 16), client=client)

    class Stop(Exception):
        pass

    seen = []

    def stop_in_edges(task, block):
        seen.append(task.name)
        if task.name == "edges" and seen.count("edges") == 5:
            raise Stop()

    out = str(tmp_path / "run.zarr/seg")
    with bw.Runner(client, on_block_done=stop_in_edges) as runner, pytest.raises(Stop):
        bw.segment(affs_ds, out, [0.5], block_shape=(6, 16, 16), runner=runner)
    again = bw.segment(affs_ds, out, [0.5], block_shape=(6, 16, 16), client=client)
    names = [s.name for s in again.stages]
    assert names[:2] == ["fragments", "edges"] and again.stages[0].processed == 0
    assert again.stages[0].skipped == 18 and 0 < again.stages[1].skipped < 18
    np.testing.assert_array_equal(read(again.outputs[0.5]), read(ref.outputs[0.5]))
    # ids from the smallest fragment: the same bytes, not only the same partition
    third = bw.segment(affs_ds, out, [0.5], block_shape=(6, 16, 16), client=client)
    assert all(s.processed == 0 for s in third.stages)


@pytest.mark.parametrize("method", ["watershed", "cc"])
def test_consecutive_ids_are_the_ranks_of_the_segment_ids(affs_path, tmp_path, client, method):
    """consecutive=True: ids 1..n, the rank of each segment's id among all (0 stays 0)."""
    affs_ds = f"{affs_path}/volumes/pred_affs"
    plain = bw.segment(affs_ds, str(tmp_path / "plain.zarr/seg"), [0.4, 0.7], method=method, block_shape=(5, 17, 23),
                       client=client)
    ours = bw.segment(affs_ds, str(tmp_path / "consecutive.zarr/seg"), [0.4, 0.7], method=method,
                      block_shape=(5, 17, 23), client=client, consecutive=True)
    assert [s.name for s in ours.stages].count("roots") == 2 and [s.name for s in ours.stages].count("offsets") == 2
    counts = []
    for t in (0.4, 0.7):
        segmentation, expected = read(ours.outputs[t]), read(plain.outputs[t])
        ids, rank = np.unique(expected, return_inverse=True)  # ranks 0..n-1 (0: background, if any)
        rank = rank.reshape(expected.shape).astype(np.uint64) + np.uint64(0 if ids[0] == 0 else 1)
        np.testing.assert_array_equal(segmentation, rank)
        counts.append(len(ids) - int(ids[0] == 0))
        assert segmentation.max() == counts[-1]
    assert max(counts) > 20  # many segments, spread over the 18 blocks
    attrs = open_dataset(str(tmp_path / "consecutive.zarr"), "seg_0.4").attrs["daskseg"]["producer"]
    assert attrs["consecutive"] is True


def test_segmentation_is_a_label_image_with_spatial_metadata(affs_path, tmp_path, client):
    result = bw.segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "s.zarr/volumes/seg"), [0.5],
                        block_shape=(12, 24, 20), client=client)
    seg = open_dataset(str(tmp_path / "s.zarr"), "volumes/seg")
    assert seg.dtype == np.uint64 and tuple(seg.voxel_size) == VS and seg.roi.shape == (48, 192, 160)
    assert seg.attrs["daskseg"]["producer"]["threshold"] == 0.5
    check_output(tmp_path / "s.zarr", "volumes/seg", VS, seg.roi.offset, label=True, shape=(12, 48, 40))
    check_output(tmp_path / "s.zarr", "volumes/fragments", VS, seg.roi.offset, label=True)
    assert os.path.isdir(os.path.join(result.graph_dir, "edges"))


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def test_bad_inputs_are_refused_before_anything_is_written(tmp_path, affs_path):
    affs, _ = noisy_affinities((4, 16, 16), cells=4)
    container = str(tmp_path / "bad.zarr")
    write_array(container, "two", affs[:2], VS)
    write_array(container, "logits", affs * 8 - 4, VS)
    write_array(container, "bytes", (affs * 255).astype(np.uint8), VS)
    write_array(container, "mask", np.ones((4, 16, 16), np.uint8), (8, 4, 4))
    out = str(tmp_path / "out.zarr/seg")
    with pytest.raises(SegmentError, match="2 channel|needs exactly 3 channels"):
        bw.segment(f"{container}/two", out)
    with pytest.raises(InputDataError, match=r"outside \[0, 1\]"):
        bw.segment(f"{container}/logits", out)
    with pytest.raises(InputDataError, match="without scaling metadata"):
        bw.segment(f"{container}/bytes", out)
    with pytest.raises(InputDataError, match="voxel size"):
        bw.segment(f"{affs_path}/volumes/pred_affs", out, mask=f"{container}/mask")
    with pytest.raises(SegmentError, match=r"in \[0, 1\]"):
        bw.segment(f"{affs_path}/volumes/pred_affs", out, [0.5, 1.5])
    assert not os.path.exists(tmp_path / "out.zarr")
    set_attrs(container, "bytes", {"daskseg": {"value_scale": 255}})
    tasks, _ = bw.plan_segment(f"{container}/bytes", out, block_shape=(4, 16, 16))
    assert [t.name for t in tasks] == ["fragments", "edges", "agglomerate-L0", "relabel"]


def test_output_of_another_layout_is_refused_and_kept(affs_path, tmp_path, client):
    out = str(tmp_path / "seg.zarr/seg")
    bw.segment(f"{affs_path}/volumes/pred_affs", out, [0.5], block_shape=(6, 16, 16), client=client)
    before = read(out)
    with pytest.raises(LayoutMismatchError):
        bw.segment(f"{affs_path}/volumes/pred_affs", out, [0.5], block_shape=(6, 24, 20), client=client)
    np.testing.assert_array_equal(read(out), before)
    with pytest.raises(GeometryError, match="outside"):
        bw.segment(f"{affs_path}/volumes/pred_affs", out, roi="0:48,0:400,0:160")


def test_region_graph_exports_to_sqlite_and_reads_in_duckdb(affs_path, tmp_path, client):
    import sqlite3

    from daskseg.blockwise.segmentation import export_sqlite
    from daskseg.segment import region_adjacency

    result = bw.segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "seg.zarr/volumes/segmentation"), [0.5],
                        block_shape=(6, 16, 16), client=client)
    fragments = read(result.fragments)
    edges, sums, counts = region_adjacency(fragments, read(f"{affs_path}/volumes/pred_affs"))
    database = tmp_path / "graph.db"
    assert export_sqlite(result.graph_dir, database) == {"nodes": len(np.unique(fragments)), "edges": len(edges)}
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT u, v, sum, count FROM edges ORDER BY u, v").fetchall()
        sizes = dict(db.execute("SELECT id, size FROM nodes").fetchall())
    assert [[u, v] for u, v, _, _ in rows] == edges.tolist()
    np.testing.assert_allclose([r[2] for r in rows], sums, rtol=1e-12)
    assert [r[3] for r in rows] == counts.tolist()
    ids, voxels = np.unique(fragments, return_counts=True)
    assert sizes == dict(zip(ids.tolist(), voxels.tolist()))
    duckdb = pytest.importorskip("duckdb")  # a dev dependency: always there in CI
    # the README's query: the per-block tables as one, parts of a contact summed
    query = (f"SELECT u, v, sum(sum) / sum(count) AS mean FROM '{result.graph_dir}/edges/*.parquet' "
             f"GROUP BY u, v ORDER BY u, v")
    means = duckdb.sql(query).fetchnumpy()["mean"]
    np.testing.assert_allclose(means, sums / counts, rtol=1e-12)


def test_segment_settings_take_effect(affs_path, tmp_path):
    """daskseg.segment.max-in-flight, .retries and .block-timeout (daskseg.yaml) set every stage's run."""
    import dask.config

    tasks, _ = bw.plan_segment(f"{affs_path}/volumes/pred_affs", str(tmp_path / "s.zarr/seg"), block_shape=(6, 16, 16))
    runner = bw.Runner()
    assert {runner.settings(t.settings) for t in tasks} == {("2x", 2, 1800.0)}  # daskseg.yaml's defaults
    with dask.config.set({"daskseg.segment.max-in-flight": 3, "daskseg.segment.retries": 0,
                          "daskseg.segment.block-timeout": "5 s"}):
        assert {runner.settings(t.settings) for t in tasks} == {(3, 0, 5.0)}
