"""Anchor: how fast daisy 2.0 schedules blocks that do no work (blocks/s, ms/block, scheduler RSS).

This is a benchmark *anchor*: it runs in the separate venv ``.venv-anchors`` (``make bench-anchors``
installs daisy 2.0 and funlib.geometry 0.3 there) so that ``benchmarks/predict_throughput.py`` can
print daskseg's blocks/s beside daisy's in one run. daisy is never a dependency of daskseg; nothing
here imports daskseg and nothing in daskseg imports daisy.

What it measures
    One ``daisy.Task`` over a cubic-ish 3D total ROI cut into exactly ``--blocks`` blocks of 64^3
    voxels (world units = voxels, offset 0, read ROI == write ROI, i.e. no context, so the blocks are
    independent; ``read_write_conflict=False``, ``fit="shrink"``). The process function returns
    immediately, but it runs where daisy runs real work: ``daisy.run_blockwise([task])`` with
    ``max_workers=W`` spawns W worker processes (``python -m daisy._subprocess_worker``), each of
    which pulls blocks from daisy's (Rust) scheduler over TCP in the acquire/process/release loop.
    So the figure is daisy's per-block scheduling + transport + worker-loop cost, plus its fixed
    start-up (spawning and connecting the workers), which is included in ``seconds``.

    - ``seconds``: wall time of ``daisy.run_blockwise`` (worker start-up and shutdown included);
      ``blocks_per_s = completed / seconds``, ``ms_per_block = 1000 * seconds / completed``.
    - RSS is that of this process, which runs daisy's scheduler/server (and the threads that spawn
      and wait on the worker processes): ``rss_start_mb`` right before ``run_blockwise`` (daisy
      imported, task built), ``rss_end_mb`` right after it; ``rss_per_100k_blocks_mb`` is the
      growth scaled to 100,000 completed blocks. ``rss_peak_mb`` is the process's high-water mark
      (VmHWM), ``rss_first_progress_mb`` the RSS at daisy's first progress report (~0.5 s in,
      workers running; at the end for shorter runs) and ``worker_rss_max_mb`` the largest RSS any
      worker process reached. Measured: daisy's scheduler grows by a fixed ~1.5 MiB when the run
      starts (even for 1 block) and then stays flat, so ``rss_per_100k_blocks_mb`` overstates
      per-block growth for small ``--blocks`` (compare ``rss_end_mb`` with ``rss_first_progress_mb``).
    - ``completed`` is daisy's own count (``TaskState.completed_count``, as seen by the progress
      observer's final callback); every block must be completed unless ``--seconds`` stopped the
      run (``stopped_early``). The script exits 1 if blocks are missing without such a stop.

    daisy's done markers / block tracking are off (``tracking_path=False``,
    ``block_tracking=False``) unless ``--tracking`` is given, which writes daisy's per-block done
    markers into a temporary directory (the counterpart of daskseg's done record).

``--seconds S`` (a cap)
    daisy 2.0 *can* be stopped early: its run loop aborts on SIGINT ("abort requested, exiting run
    loop"), raises ``KeyboardInterrupt`` and still hands the final ``TaskState`` to the progress
    observer. With ``--seconds S`` a timer sends SIGINT to this process S seconds after
    ``run_blockwise`` started (only while the run is in progress); the figures are then computed
    from the blocks completed up to the abort, and ``stopped_early`` is true. The grid itself is not
    shrunk. A Ctrl-C from the user is not mistaken for the cap: it is re-raised.

Output
    ``--json`` prints exactly one JSON line on stdout::

        {"tool": "daisy", "version": "2.0.0", "blocks": N, "workers": W, "seconds": ...,
         "blocks_per_s": ..., "ms_per_block": ..., "rss_start_mb": ..., "rss_end_mb": ...,
         "rss_per_100k_blocks_mb": ..., "completed": ..., ...}

    Without it, a short human-readable summary. Everything else (daisy's warnings and logging,
    anything a worker prints, the execution summary daisy writes to stdout) is sent to stderr: file
    descriptor 1 points at stderr for the whole run and is restored only to print the result.
    daisy's tqdm progress bar and execution summary are disabled.

Run (from the repository root)::

    .venv-anchors/bin/python benchmarks/anchors/daisy_noop_blocks.py                # 100,000 blocks, 1 worker
    .venv-anchors/bin/python benchmarks/anchors/daisy_noop_blocks.py --blocks 20000 --workers 2 --json
    .venv-anchors/bin/python benchmarks/anchors/daisy_noop_blocks.py --blocks 1000000 --seconds 60 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import sys
import tempfile
import threading
import time

BLOCK = 64  # block edge in voxels (= world units)
TASK_ID = "noop"


def noop(block):
    """The process function: does nothing. Defined at module level so daisy can ship it to its
    worker processes (cloudpickle, by value from ``__main__``)."""
    return


def grid_shape(n: int) -> tuple[int, int, int]:
    """Three factors of ``n`` (a <= b <= c, a * b * c == n) as close to a cube as possible, so the
    total ROI holds exactly ``n`` blocks (100,000 -> 40 x 50 x 50; a prime n degenerates to 1 x 1 x n)."""
    best = (1, 1, n)
    for a in range(1, round(n ** (1 / 3)) + 2):
        if n % a:
            continue
        m = n // a
        for b in range(a, math.isqrt(m) + 1):
            if m % b == 0 and max(a, b, m // b) / min(a, b, m // b) < best[2] / best[0]:
                best = (a, b, m // b)
    return best


def _proc_status_mb(field: str) -> float:
    """``VmRSS``/``VmHWM`` of this process in MiB (Linux); the peak from getrusage elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Observer:
    """daisy progress observer: keeps the latest ``TaskState``s (so the counts survive an aborted run)
    and whether the run loop is live (so the ``--seconds`` timer only interrupts daisy's loop)."""

    def __init__(self):
        self.states = None
        self.running = False
        self.lock = threading.Lock()
        self.rss_first_progress = None  # RSS at daisy's first progress report (~0.5 s into the run)

    def on_start(self, states):
        with self.lock:
            self.states = states
            self.running = True

    def on_progress(self, states):
        self.states = states
        if self.rss_first_progress is None:
            self.rss_first_progress = _proc_status_mb("VmRSS")

    def on_finish(self, states):
        with self.lock:
            self.states = states
            self.running = False


def run(blocks: int, workers: int, seconds: float | None, tracking: bool) -> dict:
    import daisy
    import daisy.logging as daisy_logging
    from funlib.geometry import Roi

    # No ./daisy_logs in the working directory: worker output falls through to the console (stderr).
    daisy_logging.set_log_basedir(None)

    shape = grid_shape(blocks)
    block_roi = Roi((0, 0, 0), (BLOCK,) * 3)
    tracking_dir = tempfile.TemporaryDirectory(prefix="daisy-noop-") if tracking else None
    task = daisy.Task(
        TASK_ID,
        total_roi=Roi((0, 0, 0), tuple(s * BLOCK for s in shape)),
        read_roi=block_roi,
        write_roi=block_roi,
        process_function=noop,
        read_write_conflict=False,
        fit="shrink",
        max_workers=workers,
        tracking_path=os.path.join(tracking_dir.name, TASK_ID) if tracking_dir else False,
    )
    grid = list(task.block_grid_shape)
    if math.prod(grid) != blocks:
        raise RuntimeError(f"daisy cut the total ROI into {grid} blocks, not {blocks}")

    observer = _Observer()
    fired = threading.Event()

    def stop():
        with observer.lock:
            if observer.running:
                fired.set()
                os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(seconds, stop) if seconds else None
    rss_start = _proc_status_mb("VmRSS")
    t0 = time.perf_counter()
    if timer:
        timer.start()
    try:
        daisy.run_blockwise(
            [task],
            progress=observer,
            summary=False,
            return_states=True,
            block_tracking=tracking,
            host="127.0.0.1",
        )
        stopped = False
    except KeyboardInterrupt:
        if not fired.is_set():
            raise
        stopped = True
    finally:
        elapsed = time.perf_counter() - t0
        if timer:
            timer.cancel()
    rss_end = _proc_status_mb("VmRSS")
    if tracking_dir:
        tracking_dir.cleanup()

    state = observer.states[TASK_ID] if observer.states else None
    completed = state.completed_count if state else 0
    growth = rss_end - rss_start
    return {
        "tool": "daisy",
        "version": daisy.__version__,
        "blocks": blocks,
        "workers": workers,
        "seconds": round(elapsed, 4),
        "blocks_per_s": round(completed / elapsed, 1) if elapsed > 0 else None,
        "ms_per_block": round(1000 * elapsed / completed, 5) if completed else None,
        "rss_start_mb": round(rss_start, 2),
        "rss_end_mb": round(rss_end, 2),
        "rss_per_100k_blocks_mb": round(growth / completed * 100_000, 3) if completed else None,
        "completed": completed,
        "failed": state.failed_count if state else None,
        "stopped_early": stopped,
        "seconds_cap": seconds,
        "grid": grid,
        "block_voxels": [BLOCK] * 3,
        "tracking": tracking,
        "worker_starts": state.worker_start_count if state else None,
        "rss_peak_mb": round(_proc_status_mb("VmHWM"), 2),
        "rss_first_progress_mb": (
            round(observer.rss_first_progress, 2) if observer.rss_first_progress is not None else None
        ),
        "worker_rss_max_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 2),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=100_000, help="number of 64^3 blocks (default 100000)")
    p.add_argument("--workers", type=int, default=1, help="daisy worker processes (default 1)")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop daisy (SIGINT, its own abort path) after this many seconds")
    p.add_argument("--tracking", action="store_true", help="let daisy write its per-block done markers")
    p.add_argument("--json", action="store_true", help="print one JSON line on stdout")
    args = p.parse_args(argv)
    if args.blocks < 1 or args.workers < 1:
        p.error("--blocks and --workers must be >= 1")

    # Everything but the result goes to stderr: point fd 1 at stderr for the run.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        result = run(args.blocks, args.workers, args.seconds, args.tracking)
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)

    if args.json:
        print(json.dumps(result), flush=True)
    else:
        r = result
        print(
            f"daisy {r['version']}: {r['completed']:,}/{r['blocks']:,} no-op blocks of 64^3 "
            f"(grid {'x'.join(map(str, r['grid']))}) with {r['workers']} worker(s) in {r['seconds']:.2f} s"
            f"{' (stopped by --seconds)' if r['stopped_early'] else ''}\n"
            f"  {r['blocks_per_s']:,.0f} blocks/s, {r['ms_per_block']:.4f} ms/block\n"
            f"  scheduler RSS {r['rss_start_mb']:.1f} -> {r['rss_end_mb']:.1f} MiB "
            f"({r['rss_per_100k_blocks_mb']:+.2f} MiB per 100k blocks; peak {r['rss_peak_mb']:.1f} MiB), "
            f"worker RSS max {r['worker_rss_max_mb']:.1f} MiB",
            flush=True,
        )
    if result["completed"] != result["blocks"] and not result["stopped_early"]:
        print(f"error: daisy completed {result['completed']} of {result['blocks']} blocks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
