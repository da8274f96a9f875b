"""Speed and memory of ``daskseg segment``: voxels/s against waterz and mwatershed, and memory flat
in the number of blocks.

    python benchmarks/segment_throughput.py            # defaults (10^5 simulated blocks): over an hour on 2 cores
    python benchmarks/segment_throughput.py --quick    # 10^3 and 8*10^3 simulated blocks: ~15 minutes
    python benchmarks/segment_throughput.py --skip memory --skip client   # throughput only

Part 1, throughput (voxels/s) on one synthetic volume (``daskseg.synth`` labels, affinities
degraded like a prediction: ``segment_quality.degraded_affinities``), in one run:

- waterz 0.10 (``waterz.agglomerate``: zwatershed fragments and mean-affinity agglomeration) and
  mwatershed 0.5 (``mwatershed.agglom``, nearest neighbours) single-process, affinities already in
  memory (their time is the call alone);
- ``daskseg.blockwise.segment`` (watershed fragments, hierarchical agglomeration up the reduction
  tree, relabel; reading and writing Zarr, done records and all) on a LocalCluster of 1 and of 2
  single-threaded worker processes, started and warmed before the clock starts.

The ratios daskseg / waterz and daskseg / mwatershed are printed side by side. waterz and
mwatershed need their wheels (``pip install waterz mwatershed``; waterz compiles with a C++
compiler); a missing one is reported and skipped.

Part 2, the agglomeration's memory per task as the volume grows: simulated volumes of
``--sim-blocks`` blocks (10^3, 10^4, 10^5 by default). The fragments and edges stages are not run:
their per-block Parquet tables are written directly, in the format those stages write
(``SegmentLayout``'s paths and columns), for ``--fragments-per-block`` fragments per block, three
of which touch the block's faces (one per axis: each contacts the same fragment of the neighbour
on either side, with a random score and contact size) and the rest interior (a chain of contacts
inside the block). Then every task of every level of the real reduction tree
(``agglomerate_block``) runs in this process, level by level, each measured with ``tracemalloc``
(peak of Python and numpy allocations while the task runs; Arrow's own buffers while a Parquet file
is decoded are not included) and with what it held (regions, pairs, undecided regions handed up).
The largest task of the tree must not grow with the number of blocks.

Part 3, client and scheduler memory flat in the number of blocks, as for predict: the real
``Runner`` (done record, bounded window, adaptive grouping) runs a no-op ``BlockwiseTask`` named
like a segment stage over grids of ``--client-blocks`` blocks, against a separate ``dask
scheduler`` process and two ``dask worker`` processes; client and scheduler RSS are sampled while
blocks finish. (``segment``'s stages all run on this runner; the per-block work is what part 1
times.)

Take figures on a quiet machine; the script prints the 1-minute load average with the results.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from predict_throughput import mb, rss, start_process_cluster  # noqa: E402
from segment_quality import degraded_affinities, quiet_stdout, run_mwatershed, run_waterz  # noqa: E402


def load() -> str:
    return f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


# --- part 1 -----------------------------------------------------------------------------------
def throughput(args, workdir: str) -> None:
    from distributed import Client, LocalCluster

    from daskseg.blockwise import segment
    from daskseg.io import open_dataset, write_array
    from daskseg.synth import LABELS_DATASET, write_sample

    path = os.path.join(workdir, "sample.zarr")
    _, labels = write_sample(path, tuple(args.shape), 0)
    affs = degraded_affinities(labels, 0)
    vs = open_dataset(path, LABELS_DATASET).voxel_size
    write_array(path, "volumes/affs", affs, vs, chunk_shape=(3, *args.block_shape))
    voxels = math.prod(args.shape)
    threshold = args.threshold
    print(f"volume {tuple(args.shape)} = {voxels / 1e6:.1f} M voxels, blocks {tuple(args.block_shape)}, "
          f"merge threshold {threshold}")
    rates: dict[str, float] = {}
    try:
        with quiet_stdout():
            run_waterz(affs[:, :4, :16, :16], [threshold])  # load the compiled module once
        _, seconds = run_waterz(affs, [threshold])
        rates["waterz (mean, 1 process)"] = voxels / seconds
    except ImportError as e:
        print(f"waterz: not installed ({e}) -- skipped")
    try:
        _, seconds = run_mwatershed(affs, 0.5, long_range=False)
        rates["mwatershed (nearest, 1 process)"] = voxels / seconds
    except ImportError as e:
        print(f"mwatershed: not installed ({e}) -- skipped")
    for workers in args.workers:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            # warm: the same job on a small ROI, so imports and first-call costs are not timed
            segment(f"{path}/volumes/affs", os.path.join(workdir, f"warm-{workers}.zarr/seg"), [threshold],
                    roi=f"0:{vs[0] * args.block_shape[0]},0:{vs[1] * args.block_shape[1]},"
                        f"0:{vs[2] * args.block_shape[2]}", block_shape=args.block_shape, client=client,
                    progress=False)
            t = time.perf_counter()
            result = segment(f"{path}/volumes/affs", os.path.join(workdir, f"seg-{workers}.zarr/seg"), [threshold],
                             block_shape=args.block_shape, client=client, progress=False)
            seconds = time.perf_counter() - t
        stages = ", ".join(f"{s.name} {s.seconds:.1f}" for s in result.stages)
        print(f"daskseg segment, {workers} worker(s): {seconds:.1f} s ({stages})")
        rates[f"daskseg segment ({workers} worker{'s' if workers > 1 else ''})"] = voxels / seconds
    print(f"{'method':40} {'M voxels/s':>10}")
    for name, rate in rates.items():
        print(f"{name:40} {rate / 1e6:10.2f}")
    for ours in [k for k in rates if k.startswith("daskseg")]:
        others = [k for k in rates if not k.startswith("daskseg")]
        print(f"ratios {ours}: " + ", ".join(f"/ {k.split(' (')[0]} = {rates[ours] / rates[k]:.2f}x" for k in others))
    print(load())


# --- part 2 -----------------------------------------------------------------------------------
def grid_side(blocks: int) -> tuple[int, int, int]:
    """The most cube-like grid shape with about ``blocks`` blocks."""
    side = max(1, round(blocks ** (1 / 3)))
    return (side, side, max(1, round(blocks / side**2)))


def simulate_tables(layout, k: int, seed: int) -> None:
    """Write the node and edge tables the fragments and edges stages would write for a volume of
    ``k`` fragments per block (see the module docstring)."""
    from daskseg.blockwise.segmentation.tables import write_table

    shape = layout.grid_shape
    rng = np.random.default_rng(seed)
    for index in np.ndindex(*shape):
        flat = int(np.ravel_multi_index(index, shape))
        ids = layout.first_id(flat) + np.arange(1, k + 1, dtype=np.uint64)
        open_level = np.zeros(k, np.int64)
        us, vs, levels = [ids[:-1]], [ids[1:]], [np.zeros(k - 1, np.uint8)]  # the interior chain
        for axis in range(3):
            for step in (-1, 1):
                other = list(index)
                other[axis] += step
                if not 0 <= other[axis] < shape[axis]:
                    continue
                level = int(layout.merge_level(np.array([index]), np.array([other]))[0])
                open_level[axis] = max(open_level[axis], level)
                if step == -1:  # each block owns the contacts with its lower neighbours
                    other_id = layout.first_id(int(np.ravel_multi_index(other, shape))) + np.uint64(axis + 1)
                    us.append(np.array([other_id], np.uint64))
                    vs.append(ids[axis : axis + 1])
                    levels.append(np.array([level], np.uint8))
        u, v = np.concatenate(us), np.concatenate(vs)
        count = rng.integers(1, 200, len(u))
        score = rng.random(len(u))
        write_table(layout.edges_path(index), {"u": u, "v": v, "sum": score * count, "count": count,
                                               "max": np.minimum(score + 0.2, 1.0), "level": np.concatenate(levels)})
        write_table(layout.nodes_path(index), {"id": ids, "size": np.full(k, 100, np.int64), "level": open_level})


def agglomeration_memory(args, workdir: str) -> None:
    from daskseg.blockwise.segmentation.agglomerate import agglomerate_block
    from daskseg.blockwise.segmentation.layout import SegmentLayout
    from daskseg.geometry import Coordinate, Roi

    block = Coordinate((64, 64, 64))
    summary = []
    for blocks in args.sim_blocks:
        shape = grid_side(blocks)
        for score in args.scores:
            layout = SegmentLayout(Roi((0, 0, 0), block * Coordinate(shape)), Coordinate((1, 1, 1)), block,
                                   os.path.join(workdir, f"graph-{blocks}-{score}"),
                                   ((-1, 0, 0), (0, -1, 0), (0, 0, -1)), tuple(args.thresholds), score)
            t = time.perf_counter()
            simulate_tables(layout, args.fragments_per_block, seed=blocks)
            written = time.perf_counter() - t
            print(f"-- {math.prod(shape):,} blocks {shape}, score {score}: tables written in {written:.0f} s; "
                  f"{layout.top_level + 1} levels")
            print("   level   tasks   largest task: peak MB   regions   pairs   undecided   seconds")
            largest = 0.0
            agglomerate_block(layout.level_grid(0).block(0), layout, 0)  # warm-up (imports), run again below
            t = time.perf_counter()
            for level in range(layout.top_level + 1):
                peaks, held = [], {"regions": 0, "pairs": 0, "undecided": 0}
                level_t = time.perf_counter()
                for i, sb in enumerate(layout.level_grid(level)):
                    traced = level > 0 or i < args.traced_per_level
                    if traced:
                        tracemalloc.start()
                    stats = agglomerate_block(sb, layout, level)
                    if traced:
                        peaks.append(tracemalloc.get_traced_memory()[1])
                        tracemalloc.stop()
                    for key in held:
                        held[key] = max(held[key], int(stats.get(key, 0)))
                largest = max(largest, max(peaks))
                print(f"   {level:5}   {len(layout.level_grid(level)):5,}   {max(peaks) / 2**20:20.2f}   "
                      f"{held['regions']:7,}   {held['pairs']:5,}   {held['undecided']:9,}   "
                      f"{time.perf_counter() - level_t:7.1f}")
            print(f"   the largest task of {math.prod(shape):,} blocks held {largest / 2**20:.2f} MB at its peak "
                  f"(all levels: {time.perf_counter() - t:.0f} s)")
            summary.append((math.prod(shape), score, largest))
    for score in args.scores:
        rows = [(n, p) for n, s, p in summary if s == score]
        print(f"agglomeration ({score}), largest task's peak by blocks: "
              + ", ".join(f"{n:,} blocks {p / 2**20:.2f} MB" for n, p in rows)
              + (f"; ratio largest/smallest volume {rows[-1][1] / rows[0][1]:.2f}x" if len(rows) > 1 else ""))
    print(load())


# --- part 3 -----------------------------------------------------------------------------------
def noop_block(block, *, cancel=None) -> dict:
    """A simulated block: its ROIs are computed (by the runner), nothing else is done."""
    return {}


def client_memory(args, workdir: str) -> None:
    from distributed import Client

    import daskseg as gp
    from daskseg.blockwise import BlockGrid
    from daskseg.blockwise.runner import BlockwiseTask, Runner

    env = dict(os.environ, PYTHONPATH=str(REPO), DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED="False")
    procs, port = start_process_cluster(argparse.Namespace(workers=2), env)
    rows = []
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            sched_pid = procs[0].pid
            for blocks in args.client_blocks:
                shape = grid_side(blocks)
                grid = BlockGrid(gp.Roi((0, 0, 0), tuple(64 * s for s in shape)), (64, 64, 64), (1, 1, 1), 8)
                task = BlockwiseTask("relabel", grid, noop_block, record_dir=os.path.join(workdir, f"rec-{blocks}"),
                                     layout={"simulated": blocks}, resume=False, settings="segment")
                samples: list[tuple[int, int, int]] = []
                done = [0]
                every = max(1, len(grid) // 20)

                def sample(task, block, done=done, samples=samples, every=every):
                    done[0] += 1
                    if done[0] % every == 0:
                        samples.append((done[0], rss(), rss(sched_pid)))

                before = (rss(), rss(sched_pid))
                t = time.perf_counter()
                with Runner(client, on_block_done=sample, progress=False) as runner:
                    result = runner.run(task)
                seconds = time.perf_counter() - t
                peak_client = max([s[1] for s in samples] + [rss()])
                peak_sched = max([s[2] for s in samples] + [rss(sched_pid)])
                print(f"-- {len(grid):,} no-op blocks in {result.tasks:,} tasks, {seconds:.1f} s: client RSS "
                      f"{mb(before[0])} -> peak {mb(peak_client)}, scheduler RSS {mb(before[1])} -> peak "
                      f"{mb(peak_sched)}")
                rows.append((len(grid), peak_client, peak_sched))
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(30)
    if len(rows) > 1:
        (n0, c0, s0), (n1, c1, s1) = rows[0], rows[-1]
        per = 1e5 / (n1 - n0)
        print(f"from {n0:,} to {n1:,} blocks the peaks grew: client {mb((c1 - c0) * per)}, scheduler "
              f"{mb((s1 - s0) * per)} per 100k blocks")
    print(load())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes for a fast check")
    parser.add_argument("--shape", type=int, nargs=3, default=None, help="part 1's volume (voxels)")
    parser.add_argument("--block-shape", type=int, nargs=3, default=None, help="part 1's blocks (voxels)")
    parser.add_argument("--threshold", type=float, default=0.5, help="the merge threshold of part 1")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts of part 1")
    parser.add_argument("--sim-blocks", type=int, nargs="+", default=None, help="part 2's simulated volumes")
    parser.add_argument("--scores", nargs="+", default=["hierarchical", "mean"],
                        choices=["hierarchical", "mean", "max"], help="part 2's agglomerations")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7], help="part 2's thresholds")
    parser.add_argument("--fragments-per-block", type=int, default=8)
    parser.add_argument("--traced-per-level", type=int, default=64,
                        help="level-0 tasks measured with tracemalloc (all tasks of higher levels are)")
    parser.add_argument("--client-blocks", type=int, nargs="+", default=None, help="part 3's simulated grids")
    parser.add_argument("--skip", choices=["throughput", "memory", "client"], action="append", default=[])
    parser.add_argument("--workdir", default=None, help="where the volumes go (default: a temporary directory)")
    args = parser.parse_args()
    args.shape = args.shape or ([32, 192, 192] if args.quick else [64, 384, 384])
    args.block_shape = args.block_shape or ([32, 96, 96] if args.quick else [32, 128, 128])
    args.sim_blocks = args.sim_blocks or ([1000, 8000] if args.quick else [1000, 10000, 100000])
    args.client_blocks = args.client_blocks or ([1000, 10000] if args.quick else [1000, 10000, 100000])
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        if "throughput" not in args.skip:
            print("== throughput: daskseg segment against waterz and mwatershed ==", flush=True)
            throughput(args, workdir)
        if "memory" not in args.skip:
            print("== agglomeration: memory per task as the volume grows (simulated tables) ==", flush=True)
            agglomeration_memory(args, workdir)
        if "client" not in args.skip:
            print("== client and scheduler memory by number of blocks ==", flush=True)
            client_memory(args, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
