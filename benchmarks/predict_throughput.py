"""Throughput and memory of ``daskseg predict``, side by side with the compute limit and map_overlap.

    python benchmarks/predict_throughput.py            # defaults: a few minutes on 2 cores
    python benchmarks/predict_throughput.py --quick    # a smaller run, for a fast check
    python benchmarks/predict_throughput.py --network  # the U-Net (daskseg.jax.inference) instead of
                                                       # the numpy stand-in

Part 1, throughput (voxels/s) on a synthetic volume, all with the same processor and blocks:

- bare: the processor's forward over every block in one loop, inputs already in memory (the compute
  limit; its compile/warm-up is not counted), both in this process and inside a Dask worker (the
  same loop as one task: worker processes run the same code slower or faster than this one);
- daskseg: ``daskseg.blockwise.predict`` on a LocalCluster (workers warmed up first), reading from and
  writing to Zarr, done records and all (its overhead is the ratio to the bare loop in a worker);
- map_overlap: ``dask.array.map_overlap`` + ``to_zarr`` doing the same computation on the same cluster.

Part 2, memory flat in the number of blocks: ``submit_bounded`` over a simulated grid of >= 1,000,000
blocks that do no work (with the done record), against a real ``dask scheduler`` process and
``dask worker`` processes, sampling client, scheduler and worker RSS while it runs for
``--sim-seconds``: once with one block per task (the scheduler's worst case) and once with the
adaptive groups ``daskseg predict`` uses by default; daisy 2.0 over the same kind of blocks, when
``.venv-anchors`` has it (``make bench-anchors``); and, for contrast, the time and memory of merely
building a ``map_overlap`` graph of ``--graph-blocks`` blocks (extrapolated per million blocks).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daskseg.blockwise.processor import TiledProcessor  # noqa: E402

# --- the numpy stand-in for a network ---------------------------------------------------------
KERNELS = np.random.default_rng(0).random((4, 5, 5, 5)).astype(np.float32) / 125


def stand_in_forward(batch: np.ndarray) -> np.ndarray:
    """Three valid 5x5x5 layers of 4 filters each, then 3 'affinity' channels: ~0.3 s a tile on one core,
    the order of a small U-Net's forward on a CPU."""
    from scipy import ndimage as ndi

    out = []
    for tile in batch:
        x = tile
        for _ in range(3):
            x = sum(ndi.correlate(x, k, mode="constant") for k in KERNELS)[2:-2, 2:-2, 2:-2] / len(KERNELS)
        out.append(np.stack([x, x * 0.5, 1 - x]))
    return np.asarray(out, dtype=np.float32)


class StandIn(TiledProcessor):
    """Tiles of input (36, 76, 76) -> output (24, 64, 64) voxels, 3 channels."""

    def __init__(self):
        super().__init__((36, 76, 76), (24, 64, 64), output_channels=(3,))

    def cache_key(self):
        return ("benchmark-stand-in",)

    def identity(self):
        return {"type": "benchmark-stand-in"}

    def prepare(self, raw):
        return raw.astype(np.float32) * np.float32(1 / 255)

    def setup(self):
        return stand_in_forward


def network_processor(workdir: str):
    """A U-Net of CREMI style (6 feature maps, x3 per level, two (1,2,2) downsamplings), input
    (40, 132, 132) -> output (20, 92, 92), random weights saved as a checkpoint."""
    from daskseg.blockwise.network import NetworkProcessor
    from daskseg.jax.checkpoint import save_checkpoint
    from daskseg.jax.model import FlaxUNetModel
    from daskseg.models import NetConfig, UNetConfig

    arch = UNetConfig(num_fmaps=6, fmap_inc_factor=3, downsample_factors=[(1, 2, 2), (1, 2, 2)])
    config = NetConfig(name="bench_net", input_shape=(40, 132, 132), architecture=arch)
    config_path = os.path.join(workdir, "bench_net_config.json")
    config.save(config_path)
    state = FlaxUNetModel(config_path, seed=0).initialize()
    checkpoint = save_checkpoint(os.path.join(workdir, "bench_net"), 1, state)
    return NetworkProcessor(config_path, checkpoint)


# --- helpers ----------------------------------------------------------------------------------
def rss(pid: int | None = None) -> int:
    import psutil

    return psutil.Process(pid or os.getpid()).memory_info().rss


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warm(client, processor) -> None:
    """Build the processor state (load/compile) on every worker, so timings exclude it."""
    shape = tuple(processor.input_shape)
    client.run(lambda: processor(np.zeros(shape, np.uint8)).shape)


# --- part 1 -----------------------------------------------------------------------------------
def bare_loop(processor, raw_path: str, grid) -> float:
    """Seconds of the processor over every block's input, inputs read into memory first (not timed)."""
    from daskseg.io import open_dataset

    raw = open_dataset(raw_path, "raw")
    inputs = [raw.read(block.read_roi) for block in grid]
    processor(inputs[0])  # compile / warm up (cached per process)
    t = time.perf_counter()
    for x in inputs:
        processor(x)
    return time.perf_counter() - t


def throughput(args, workdir: str) -> None:
    import dask.array as da
    import zarr
    from distributed import Client, LocalCluster

    import daskseg as gp
    from daskseg.blockwise import BlockGrid, predict
    from daskseg.io import open_dataset, write_array

    processor = network_processor(workdir) if args.network else StandIn()
    step = processor.block_step
    block = tuple(args.block_multiple * s for s in step)
    grid_blocks = tuple(args.blocks)
    ctx_neg, ctx_pos = processor.context_neg, processor.context_pos
    out_shape = tuple(b * g for b, g in zip(block, grid_blocks))
    raw_shape = tuple(o + n + p for o, n, p in zip(out_shape, ctx_neg, ctx_pos))
    raw = np.random.default_rng(0).integers(0, 255, raw_shape, dtype=np.uint8)
    read_shape = tuple(b + n + p for b, n, p in zip(block, ctx_neg, ctx_pos))
    raw_path = os.path.join(workdir, "raw.zarr")
    write_array(raw_path, "raw", raw, (1, 1, 1), chunk_shape=read_shape)
    vs = gp.Coordinate((1, 1, 1))
    roi = gp.Roi(ctx_neg, out_shape)
    grid = BlockGrid(roi, block, vs, ctx_neg, ctx_pos, min_block_shape=processor.min_block_shape)
    voxels = math.prod(out_shape)
    print(f"volume: raw {raw_shape}, output {out_shape}, {len(grid)} blocks of {block} voxels, processor "
          f"{type(processor).__name__} (tile {tuple(processor.input_shape)} -> {tuple(processor.output_shape_tile)}); "
          f"best of {args.repeat}, interleaved", flush=True)

    # map_overlap + to_zarr over the same region and blocks: first and last chunks carry the context
    arr = da.from_zarr(f"{raw_path}/raw").rechunk(tuple(
        (n + block[d],) + (block[d],) * (grid_blocks[d] - 2) + (block[d] + p,) if grid_blocks[d] > 1
        else (n + block[d] + p,)
        for d, (n, p) in enumerate(zip(ctx_neg, ctx_pos))
    ))
    out_chunks = (processor.output_channels,) + tuple((block[d],) * grid_blocks[d] for d in range(3))
    depth = {d: (int(ctx_neg[d]), int(ctx_pos[d])) for d in range(3)}

    times: dict[str, list[float]] = {"local": [], "worker": [], "daskseg": [], "overlap": []}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        warm(client, processor)
        for _ in range(args.repeat):
            times["local"].append(bare_loop(processor, raw_path, grid))
            times["worker"].append(client.submit(bare_loop, processor, raw_path, grid, pure=False).result())
            t = time.perf_counter()
            result = predict(raw=f"{raw_path}/raw", out=f"{workdir}/pred.zarr/affs", processor=processor, roi=roi,
                             block_shape=block, client=client, resume=False, overwrite=True, progress=False)
            times["daskseg"].append(time.perf_counter() - t)
            lazy = da.map_overlap(processor, arr, depth=depth, boundary="none", trim=False, chunks=out_chunks,
                                  new_axis=0, dtype=np.float32, meta=np.empty((0, 0, 0, 0), np.float32))
            tasks = len(lazy.__dask_graph__())
            t = time.perf_counter()
            lazy.to_zarr(f"{workdir}/overlap.zarr", component="affs", overwrite=True)
            times["overlap"].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    ts = result.task_seconds
    label = f"{args.workers} worker(s)"
    print(f"bare forward, this process:    {best['local']:7.2f} s  {voxels / best['local']:12,.0f} voxels/s")
    print(f"bare forward, in a worker:     {best['worker']:7.2f} s  {voxels / best['worker']:12,.0f} voxels/s")
    print(f"daskseg predict, {label}:  {best['daskseg']:7.2f} s  {voxels / best['daskseg']:12,.0f} voxels/s   "
          f"(last run, summed in tasks: read {ts['read']:.2f} s, process {ts['process']:.2f} s, "
          f"write {ts['write']:.2f} s)")
    print(f"map_overlap + to_zarr:         {best['overlap']:7.2f} s  {voxels / best['overlap']:12,.0f} voxels/s   "
          f"({tasks} tasks in its graph for {len(grid)} blocks)")
    same = np.array_equal(open_dataset(f"{workdir}/pred.zarr", "affs").read(),
                          zarr.open_array(f"{workdir}/overlap.zarr", path="affs")[:])
    print(f"ratios: daskseg / bare in a worker = {best['daskseg'] / best['worker']:.3f}; daskseg / bare here = "
          f"{best['daskseg'] / best['local']:.3f} ({label}); map_overlap / daskseg = "
          f"{best['overlap'] / best['daskseg']:.2f}; outputs equal: {same}")
    print("all times (s): " + "; ".join(f"{k} " + ", ".join(f"{x:.2f}" for x in v) for k, v in times.items()))


# --- part 2 -----------------------------------------------------------------------------------
def noop_block(item, grid):
    """A simulated block: compute its ROIs, do nothing; returns the seconds it took (for grouping)."""
    t = time.perf_counter()
    for flat in item:
        grid.block(flat)
    return {"process": time.perf_counter() - t}


class Enough(Exception):
    pass


def start_process_cluster(args, env) -> tuple[list, int]:
    """A ``dask scheduler`` and ``args.workers`` single-threaded ``dask worker`` processes on 127.0.0.1."""
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], **quiet)]
    for _ in range(args.workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                       "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], **quiet))
    return procs, port


def simulate(args, workdir: str, grid, grouped: bool, trim: bool) -> dict:
    """Run no-op blocks of ``grid`` for ``args.sim_seconds`` (or to the end) against real processes.

    One block per task (``grouped=False``: the scheduler's worst case) or ``AdaptiveGroups`` as
    ``daskseg predict`` uses by default. Samples client, scheduler and worker RSS as blocks finish.
    """
    from distributed import Client

    from daskseg.blockwise import AdaptiveGroups, DoneRecord
    from daskseg.blockwise.grouping import max_blocks_per_task
    from daskseg.blockwise.submit import submit_bounded

    env = dict(os.environ, PYTHONPATH=str(REPO))
    if args.no_profile:  # the event-loop profilers keep up to an hour of history: growth with time, not blocks
        env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    procs, port = start_process_cluster(args, env)
    try:
        client = Client(f"tcp://127.0.0.1:{port}", timeout=60)
        client.wait_for_workers(args.workers, timeout=120)
        sched_pid = procs[0].pid
        worker_pids = list(client.run(os.getpid).values())
        samples = []
        record = DoneRecord(os.path.join(workdir, f"sim-record-{grouped}-{trim}"), grid.layout(), len(grid),
                            resume=False)
        start = time.perf_counter()
        count = tasks = 0
        next_sample = 0
        pending = len(grid)
        groups = AdaptiveGroups(record.pending(), max_blocks=max_blocks_per_task(pending, args.workers)) \
            if grouped else ((i,) for i in record.pending())

        def on_done(item, result):
            nonlocal count, tasks, next_sample
            for flat in item:
                record.mark_done(flat)
            count += len(item)
            tasks += 1
            if grouped:
                groups.observe(len(item), result["process"])
            now = time.perf_counter() - start
            if now >= next_sample:
                held = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
                samples.append((count, now, rss(), rss(sched_pid), sum(rss(p) for p in worker_pids), held, tasks))
                next_sample = now + args.sim_seconds / 40
            if time.perf_counter() - start > args.sim_seconds:
                raise Enough

        token = "0badc0de"
        try:
            submit_bounded(client, noop_block, groups,
                           key=lambda it: grid.block(it[0]).key("predict-block", token) + f"-x{len(it)}",
                           args=(grid,), max_in_flight="4x", retries=0, on_done=on_done,
                           trim_every=args.trim_every if trim else 0)
        except Enough:
            pass
        elapsed = time.perf_counter() - start
        samples.append((count, elapsed, rss(), rss(sched_pid), sum(rss(p) for p in worker_pids), 0, tasks))
        record.close()
        client.close()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(30)
    mode = "adaptive groups (predict's default)" if grouped else "one block per task"
    print(f"-- {mode}, {'with' if trim else 'WITHOUT'} trimming: {count:,} of {len(grid):,} no-op blocks in "
          f"{tasks:,} tasks, {elapsed:.1f} s ({count / elapsed:,.0f} blocks/s, {1000 * elapsed / max(count, 1):.3f} "
          f"ms/block; {args.workers} worker(s), at most {4 * args.workers} tasks in flight)")
    print("   blocks done     tasks   client RSS   scheduler RSS   worker RSS   tasks held by the scheduler")
    for c, _, cr, sr, wr, held, t in samples[:: max(1, len(samples) // 6)] + [samples[-1]]:
        print(f"   {c:11,}  {t:8,}   {mb(cr):>10}   {mb(sr):>13}   {mb(wr):>10}   {held:>5}")
    # growth after warm-up: from the first trim on (the caches fill until then), else the last 3/4
    trimmed = [x for x in samples if x[6] >= args.trim_every] if trim else []
    first = trimmed[0] if len(trimmed) > len(samples) // 4 else samples[len(samples) // 4]
    last = samples[-1]
    dblocks = max(last[0] - first[0], 1)
    per = {name: (last[i] - first[i]) * 1e5 / dblocks for name, i in (("client", 2), ("scheduler", 3), ("worker", 4))}
    print(f"   from {first[0]:,} to {last[0]:,} blocks ({first[6]:,} to {last[6]:,} tasks, after warm-up), per 100k "
          "blocks: "
          + ", ".join(f"{k} {mb(v)}" for k, v in per.items())
          + f"; tasks held never above {max(s[5] for s in samples)}")
    return {"blocks": count, "tasks": tasks, "seconds": elapsed, "per_100k": per}


def daisy_anchor(args) -> dict | None:
    """daisy 2.0's no-op blocks/s over the same number of blocks, from the anchors venv (if installed)."""
    import json

    python = os.environ.get("DASKSEG_ANCHORS_PYTHON") or str(REPO / ".venv-anchors" / "bin" / "python")
    script = REPO / "benchmarks" / "anchors" / "daisy_noop_blocks.py"
    if not (os.path.exists(python) and script.exists()):
        print("daisy anchor: no .venv-anchors (make bench-anchors) -- skipped")
        return None
    out = subprocess.run([python, str(script), "--blocks", str(args.daisy_blocks), "--workers", str(args.workers),
                          "--json"], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        print(f"daisy anchor failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    first = result.get("rss_first_progress_mb", result["rss_start_mb"])  # daisy's one-off step at start excluded
    growth = (result["rss_end_mb"] - first) * 1e5 / max(result["blocks"], 1)
    print(f"-- daisy {result.get('version', '2.0')}: {result['blocks']:,} no-op blocks in {result['seconds']:.1f} s "
          f"({result['blocks_per_s']:,.0f} blocks/s, {result['ms_per_block']:.3f} ms/block, {args.workers} worker(s)); "
          f"its scheduler process grew {growth:.1f} MB per 100k blocks after its first progress report")
    return result


def flat_memory(args, workdir: str) -> None:
    import daskseg as gp
    from daskseg.blockwise import BlockGrid

    side = round(args.sim_blocks ** (1 / 3))
    while side**3 < args.sim_blocks:
        side += 1
    grid = BlockGrid(gp.Roi((0, 0, 0), (side * 64,) * 3), (64, 64, 64), (1, 1, 1), 8)
    single = simulate(args, workdir, grid, grouped=False, trim=not args.no_trim)
    grouped = simulate(args, workdir, grid, grouped=True, trim=not args.no_trim)
    daisy = daisy_anchor(args)
    rate = {k: r["blocks"] / r["seconds"] for k, r in (("single", single), ("grouped", grouped))}
    line = (f"ratios: adaptive groups / one block per task = {rate['grouped'] / rate['single']:.1f}x blocks/s")
    if daisy:
        line += (f"; daskseg (adaptive groups) / daisy = {rate['grouped'] / daisy['blocks_per_s']:.2f}x; "
                 f"daskseg (one block per task) / daisy = {rate['single'] / daisy['blocks_per_s']:.2f}x")
    print(line)


def map_overlap_contrast(args) -> None:
    """Time and memory of merely building the map_overlap graph of ``args.graph_blocks`` blocks."""
    import dask.array as da

    n = args.graph_blocks
    gside = round(n ** (1 / 3))
    gc.collect()
    before = rss()
    t = time.perf_counter()
    x = da.zeros((gside * 8,) * 3, chunks=8, dtype=np.uint8)
    y = x.map_overlap(lambda b: b, depth=1, boundary="none")
    graph = dict(y.__dask_graph__())
    build = time.perf_counter() - t
    grown = rss() - before
    nblocks = gside**3
    print(f"map_overlap graph of {nblocks:,} blocks: {len(graph):,} tasks ({len(graph) / nblocks:.1f} per block), "
          f"built in {build:.1f} s using {mb(grown)}; per 1,000,000 blocks: about {build * 1e6 / nblocks:,.0f} s "
          f"and {mb(grown * 1e6 / nblocks)} before the first block runs")
    del graph, y, x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a fast check")
    parser.add_argument("--network", action="store_true", help="use a small U-Net instead of the numpy stand-in")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1 compares with the bare loop)")
    parser.add_argument("--blocks", type=int, nargs=3, default=[2, 3, 3], help="blocks per dimension")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement (the best counts)")
    parser.add_argument("--block-multiple", type=int, default=1, help="tiles per block per dimension")
    parser.add_argument("--sim-blocks", type=int, default=1_000_000, help="blocks of the simulated volume")
    parser.add_argument("--sim-seconds", type=float, default=60, help="how long to run the simulated volume")
    parser.add_argument("--graph-blocks", type=int, default=8000, help="blocks of the map_overlap graph contrast")
    parser.add_argument("--no-profile", action="store_true", help="disable the scheduler's and workers' profilers")
    parser.add_argument("--no-trim", action="store_true", help="do not trim per-task leftovers (to see them grow)")
    parser.add_argument("--trim-every", type=int, default=10_000, help="tasks between trims of per-task leftovers")
    parser.add_argument("--daisy-blocks", type=int, default=100_000, help="no-op blocks for the daisy anchor")
    parser.add_argument("--skip", choices=["throughput", "memory"], action="append", default=[])
    args = parser.parse_args()
    if args.quick:
        args.blocks = [1, 2, 2]
        args.sim_seconds = min(args.sim_seconds, 10)
        args.graph_blocks = 1000
        args.daisy_blocks = min(args.daisy_blocks, 5000)
        args.trim_every = min(args.trim_every, 500)
    with tempfile.TemporaryDirectory(prefix="daskseg-bench-") as workdir:
        if "throughput" not in args.skip:
            print("== throughput ==", flush=True)
            throughput(args, workdir)
        if "memory" not in args.skip:
            print("== memory while submitting a simulated volume ==", flush=True)
            flat_memory(args, workdir)
            map_overlap_contrast(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
