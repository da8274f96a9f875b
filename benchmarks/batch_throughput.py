"""Training-batch throughput of the tutorial pipeline, daskseg and gunpowder 1.5 side by side.

The pipeline is the tutorial's: three samples (HDF5, ``volumes/raw`` and
``volumes/labels/neuron_ids`` with ``resolution``/``offset`` attributes) each read by
``Hdf5Source + Normalize + RandomLocation``, then ``RandomProvider``, ``ElasticAugment([4,40,40],
[0,2,2], [0,pi/2], prob_slip=0.05, prob_shift=0.05, max_misalign=25)``,
``SimpleAugment(transpose_only=[1,2])``, ``IntensityAugment(raw, 0.9, 1.1, -0.1, 0.1,
z_section_wise=True)``, ``GrowBoundary(labels, steps=3, only_xy=True)``, ``AddAffinities`` and
``BalanceLabels``; requests of 84x268x268 voxels of raw and 56x56x56 of affinities and weights at
(40, 4, 4) nm. Both libraries build it with the same code (:func:`build_pipeline` takes the module),
run in one process each, on the same files; gunpowder runs in ``.venv-anchors`` as a subprocess.

    python benchmarks/batch_throughput.py                  # both, ratio printed
    python benchmarks/batch_throughput.py --batches 50 --gunpowder-batches 0

Figures are wall-clock and CPU seconds per batch (CPU time is less disturbed by other processes on
a shared machine) and each node's share of a batch from ``batch.profiling_stats``.

A second section puts ``PreCache(cache_size=2 x workers, num_workers)`` after the pipeline, for 1
and 2 workers (``--precache-workers``): daskseg's workers are Dask worker processes of a
LocalCluster, gunpowder's are its forked processes. It prints the production rate, the ratio of
the rates, and the fraction of time a stand-in training loop (``--train-step`` seconds of sleep a
batch, as a GPU step leaves the CPU free) waited for batches.

Importable: ``build_daskseg_pipeline(paths)`` returns the daskseg pipeline and its keys,
``tutorial_request(gp, keys)`` the request, ``write_samples(directory)`` the sample files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
DEFAULT_DIR = REPO / "bench_output" / "batch_throughput"

VOXEL_SIZE = (40, 4, 4)
INPUT_SHAPE = (84, 268, 268)
OUTPUT_SHAPE = (56, 56, 56)
NEIGHBORHOOD = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]
# room for the rotated (x sqrt 2) and misaligned (+-25 voxels a shift) input region
SAMPLE_SHAPE = (100, 600, 600)
RAW_DATASET = "volumes/raw"
LABELS_DATASET = "volumes/labels/neuron_ids"

# (name, factory(gp, keys)) in pipeline order after RandomProvider; a node missing from a library is
# left out of both pipelines, so that they stay identical
AUGMENTATIONS = [
    ("ElasticAugment", lambda gp, k: gp.ElasticAugment(
        [4, 40, 40], [0, 2, 2], [0, math.pi / 2.0], prob_slip=0.05, prob_shift=0.05, max_misalign=25)),
    ("SimpleAugment", lambda gp, k: gp.SimpleAugment(transpose_only=[1, 2])),
    ("IntensityAugment", lambda gp, k: gp.IntensityAugment(
        k["raw"], scale_min=0.9, scale_max=1.1, shift_min=-0.1, shift_max=0.1, z_section_wise=True)),
    ("GrowBoundary", lambda gp, k: gp.GrowBoundary(k["labels"], steps=3, only_xy=True)),
    ("AddAffinities", lambda gp, k: gp.AddAffinities(NEIGHBORHOOD, k["labels"], k["affs"])),
    ("BalanceLabels", lambda gp, k: gp.BalanceLabels(k["affs"], k["weights"])),
]


def write_samples(directory: str | os.PathLike = DEFAULT_DIR, shape=SAMPLE_SHAPE, names=("A", "B", "C")) -> list[Path]:
    """Three synthetic CREMI-like samples as uncompressed HDF5 files (kept and reused)."""
    from daskseg.io import write_array

    try:
        from daskseg.synth import make_sample
    except ImportError:  # pragma: no cover - synth is part of daskseg; keep the benchmark standalone
        make_sample = _random_sample
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = directory / f"sample_{name}_{'x'.join(map(str, shape))}.hdf"
        if not path.exists():
            raw, labels = make_sample(tuple(shape), seed=i)
            tmp = path.with_suffix(".tmp.hdf")
            write_array(tmp, RAW_DATASET, raw, VOXEL_SIZE, compression=None)
            write_array(tmp, LABELS_DATASET, labels, VOXEL_SIZE, compression=None)
            tmp.rename(path)
        paths.append(path)
    return paths


def _random_sample(shape, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, 200, size=tuple(-(-s // f) for s, f in zip(shape, (1, 10, 10))), dtype=np.uint64)
    labels = coarse.repeat(10, axis=1).repeat(10, axis=2)[: shape[0], : shape[1], : shape[2]]
    raw = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return raw, labels


def tutorial_keys(gp) -> dict:
    return {
        "raw": gp.ArrayKey("RAW"),
        "labels": gp.ArrayKey("LABELS"),
        "affs": gp.ArrayKey("AFFINITIES"),
        "weights": gp.ArrayKey("LOSS_WEIGHTS"),
    }


def tutorial_request(gp, keys: dict, random_seed: int | None = None):
    vs = gp.Coordinate(VOXEL_SIZE)
    request = gp.BatchRequest() if random_seed is None else gp.BatchRequest(random_seed=random_seed)
    request.add(keys["raw"], gp.Coordinate(INPUT_SHAPE) * vs)
    request.add(keys["affs"], gp.Coordinate(OUTPUT_SHAPE) * vs)
    request.add(keys["weights"], gp.Coordinate(OUTPUT_SHAPE) * vs)
    return request


def available_augmentations(*modules) -> list[str]:
    """Names of the augmentation/label nodes every given module has."""
    return [name for name, _ in AUGMENTATIONS if all(hasattr(m, name) for m in modules)]


def build_pipeline(gp, sample_paths, keys: dict, nodes: list[str]):
    """The tutorial's training pipeline (without training) in library ``gp`` (daskseg or gunpowder)."""
    sources = tuple(
        gp.Hdf5Source(str(path), datasets={keys["raw"]: RAW_DATASET, keys["labels"]: LABELS_DATASET})
        + gp.Normalize(keys["raw"])
        + gp.RandomLocation()
        for path in sample_paths
    )
    pipeline = sources + gp.RandomProvider()
    factories = dict(AUGMENTATIONS)
    for name in nodes:
        pipeline = pipeline + factories[name](gp, keys)
    return pipeline


def build_daskseg_pipeline(sample_paths, nodes: list[str] | None = None):
    """``(pipeline, keys)``: the daskseg tutorial pipeline on ``sample_paths``."""
    import daskseg

    keys = tutorial_keys(daskseg)
    nodes = available_augmentations(daskseg) if nodes is None else nodes
    return build_pipeline(daskseg, sample_paths, keys, nodes), keys


def _node_name(name: str) -> str:
    return re.sub(r"\[.*\]$", "", name)


def _node_seconds(engine: str, batch) -> dict[str, float]:
    out: dict[str, float] = {}
    if engine == "daskseg":
        items = [(node, sum(times)) for (node, _), times in batch.profiling_stats.timings.items()]
    else:
        items = [
            (node, summary.mean() * summary.counts())
            for (node, _), summary in batch.profiling_stats.get_timing_summaries().items()
        ]
    for node, seconds in items:
        out[_node_name(node)] = out.get(_node_name(node), 0.0) + seconds
    return out


def run(engine: str, sample_paths, batches: int, warmup: int, nodes: list[str], seed: int = 0) -> dict:
    """Request ``warmup + batches`` batches in this process; figures of the timed ones."""
    if engine == "daskseg":
        import daskseg as gp

        gp.set_seed(seed)
    else:
        import warnings

        warnings.simplefilter("ignore")
        import gunpowder as gp

        np.random.seed(seed)
        import random

        random.seed(seed)
    keys = tutorial_keys(gp)
    pipeline = build_pipeline(gp, sample_paths, keys, nodes)
    node_totals: dict[str, float] = {}
    with gp.build(pipeline):
        for _ in range(warmup):
            pipeline.request_batch(tutorial_request(gp, keys))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(batches):
            batch = pipeline.request_batch(tutorial_request(gp, keys))
            for node, seconds in _node_seconds(engine, batch).items():
                node_totals[node] = node_totals.get(node, 0.0) + seconds
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    shapes = {name: list(batch[key].data.shape) for name, key in keys.items() if key in batch}
    return {
        "engine": engine,
        "batches": batches,
        "wall_per_batch": wall / batches,
        "cpu_per_batch": cpu / batches,
        "nodes": {node: seconds / batches for node, seconds in node_totals.items()},
        "shapes": shapes,
    }


def run_gunpowder(sample_paths, batches: int, warmup: int, nodes: list[str]) -> dict | str:
    """Run :func:`run` for gunpowder in the anchor venv; the result, or why there is none."""
    if not ANCHOR_PYTHON.exists():
        return f"no {ANCHOR_PYTHON.relative_to(REPO)} (make bench-anchors installs gunpowder 1.5)"
    check = subprocess.run([str(ANCHOR_PYTHON), "-c", "import gunpowder"], capture_output=True, text=True)
    if check.returncode != 0:
        return "gunpowder is not importable in .venv-anchors: " + check.stderr.strip().splitlines()[-1]
    cmd = [
        str(ANCHOR_PYTHON), str(Path(__file__).resolve()), "--engine", "gunpowder", "--json",
        "--batches", str(batches), "--warmup", str(warmup), "--nodes", ",".join(nodes),
        "--samples", *map(str, sample_paths),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return "gunpowder run failed:\n" + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(result: dict) -> None:
    print(
        f"{result['engine']:>10}: {1 / result['wall_per_batch']:7.2f} batches/s  "
        f"({result['wall_per_batch'] * 1000:8.1f} ms wall, {result['cpu_per_batch'] * 1000:8.1f} ms CPU per batch, "
        f"{result['batches']} batches)"
    )
    total = result["wall_per_batch"]
    for node, seconds in sorted(result["nodes"].items(), key=lambda kv: -kv[1]):
        print(f"{'':12}{node:<18} {seconds * 1000:8.1f} ms  {100 * seconds / total:5.1f}%")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="timed daskseg batches")
    parser.add_argument("--gunpowder-batches", type=int, default=3, help="timed gunpowder batches (0: skip gunpowder)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--samples", nargs="*", help="sample files (default: synthetic ones in bench_output/)")
    parser.add_argument("--engine", choices=["daskseg", "gunpowder"], help=argparse.SUPPRESS)
    parser.add_argument("--nodes", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    add_precache_arguments(parser)
    args = parser.parse_args(argv)

    if args.engine is not None:  # one engine in this process (how the gunpowder side is run)
        nodes = args.nodes.split(",") if args.nodes else [name for name, _ in AUGMENTATIONS]
        if args.precache_run:
            result = run_precache(args.engine, args.samples, args.precache_run, args.batches, args.loop_batches,
                                  nodes, args.train_step)
        else:
            result = run(args.engine, args.samples, args.batches, args.warmup, nodes)
        print(json.dumps(result) if args.json else result)
        return 0

    import daskseg

    paths = [Path(p) for p in args.samples] if args.samples else write_samples()
    nodes = available_augmentations(daskseg)
    missing = [name for name, _ in AUGMENTATIONS if name not in nodes]
    print(f"tutorial pipeline on {len(paths)} samples; request raw {INPUT_SHAPE}, affinities/weights {OUTPUT_SHAPE} voxels")
    if missing:
        print(f"(not in daskseg yet, left out of both pipelines: {', '.join(missing)})")
    ours = run("daskseg", paths, args.batches, args.warmup, nodes)
    _report(ours)
    if args.gunpowder_batches > 0:
        theirs = run_gunpowder(paths, args.gunpowder_batches, args.warmup, nodes)
        if isinstance(theirs, str):
            print(f"gunpowder: {theirs}")
        else:
            _report(theirs)
            print(
                f"daskseg / gunpowder throughput: {theirs['wall_per_batch'] / ours['wall_per_batch']:.1f}x (wall), "
                f"{theirs['cpu_per_batch'] / ours['cpu_per_batch']:.1f}x (CPU)"
            )
    precache_section(args, paths, nodes)
    return 0


# --- PreCache: batches produced in parallel while the training loop consumes them ----------------
# (daskseg: Dask workers of a LocalCluster that PreCache starts; gunpowder: its forked processes)

PRECACHE_WORKERS = (1, 2)
TRAIN_STEP_SECONDS = 0.2  # a stand-in GPU train step of the tutorial U-Net: the CPU stays free
PACED_MARGIN = 1.5  # the paced loop's step lets producers make 1.5 batches per step


def _training_loop(pipeline, make_request, batches: int, step: float, settle: int = 0) -> float:
    """Run ``settle + batches`` iterations of get-a-batch + ``sleep(step)``; the fraction of the last
    ``batches`` iterations' time spent waiting for a batch (the first ``settle`` let the cache fill)."""
    waited = total = 0.0
    for i in range(settle + batches):
        t0 = time.perf_counter()
        pipeline.request_batch(make_request())
        t1 = time.perf_counter()
        time.sleep(step)
        if i >= settle:
            waited += t1 - t0
            total += time.perf_counter() - t0
    return waited / total if batches else float("nan")


def run_precache(engine: str, sample_paths, num_workers: int, batches: int, loop_batches: int, nodes: list[str],
                 train_step: float = TRAIN_STEP_SECONDS, paced: bool = False, seed: int = 0) -> dict:
    """The tutorial pipeline + ``PreCache(cache_size=2 * num_workers, num_workers)`` in library ``engine``.

    After the workers have started and the batches made meanwhile have been consumed, measures the
    production rate (``batches`` requested back to back), then the fraction of time a training loop
    of ``loop_batches`` iterations (after ``cache_size`` more that let the cache refill) waits for
    batches when each iteration also sleeps ``train_step`` seconds (a stand-in GPU step: the CPU
    stays free for the producers). With ``paced``, a second
    loop's step is set from the measured rate so that producers are ``PACED_MARGIN`` times faster
    than the consumer: it should not wait at all.
    """
    if engine == "daskseg":
        import daskseg as gp

        gp.set_seed(seed)
    else:
        import warnings

        warnings.simplefilter("ignore")
        import gunpowder as gp

        np.random.seed(seed)
    keys = tutorial_keys(gp)

    def make_request():
        return tutorial_request(gp, keys)

    cache_size = 2 * num_workers
    pipeline = build_pipeline(gp, sample_paths, keys, nodes) + gp.PreCache(cache_size=cache_size, num_workers=num_workers)
    with gp.build(pipeline):
        t0 = time.perf_counter()
        pipeline.request_batch(make_request())
        first = time.perf_counter() - t0
        for _ in range(num_workers):  # drain what was made while the workers started: steady state
            pipeline.request_batch(make_request())
        t0 = time.perf_counter()
        for _ in range(batches):
            pipeline.request_batch(make_request())
        rate = batches / (time.perf_counter() - t0)
        waited = _training_loop(pipeline, make_request, loop_batches, train_step, settle=cache_size)
        paced_step = PACED_MARGIN / rate
        paced_waited = (
            _training_loop(pipeline, make_request, loop_batches, paced_step, settle=cache_size) if paced else float("nan")
        )
    return {
        "engine": engine,
        "workers": num_workers,
        "batches": batches,
        "first_batch_s": first,
        "batches_per_s": rate,
        "loop_batches": loop_batches,
        "train_step_s": train_step,
        "waited_fraction": waited,
        "paced_step_s": paced_step,
        "paced_waited_fraction": paced_waited,
    }


def run_gunpowder_precache(sample_paths, num_workers: int, batches: int, loop_batches: int, nodes: list[str],
                           train_step: float) -> dict | str:
    """:func:`run_precache` for gunpowder in the anchor venv; the result, or why there is none."""
    if not ANCHOR_PYTHON.exists():
        return f"no {ANCHOR_PYTHON.relative_to(REPO)} (make bench-anchors installs gunpowder 1.5)"
    cmd = [
        str(ANCHOR_PYTHON), str(Path(__file__).resolve()), "--engine", "gunpowder", "--json",
        "--precache-run", str(num_workers), "--batches", str(batches), "--loop-batches", str(loop_batches),
        "--train-step", str(train_step), "--nodes", ",".join(nodes), "--samples", *map(str, sample_paths),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return "gunpowder PreCache run failed:\n" + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_precache_arguments(parser) -> None:
    parser.add_argument("--precache-workers", default=",".join(map(str, PRECACHE_WORKERS)),
                        help="PreCache worker counts to compare (empty: skip the PreCache section)")
    parser.add_argument("--precache-batches", type=int, default=12, help="timed daskseg batches per worker count")
    parser.add_argument("--gunpowder-precache-batches", type=int, default=3,
                        help="timed gunpowder PreCache batches per worker count (0: skip gunpowder)")
    parser.add_argument("--loop-batches", type=int, default=20, help="iterations of the stand-in training loop")
    parser.add_argument("--train-step", type=float, default=TRAIN_STEP_SECONDS,
                        help="seconds of the stand-in train step (a sleep: the GPU works, the CPU is free)")
    parser.add_argument("--precache-run", type=int, help=argparse.SUPPRESS)


def _report_precache(result: dict) -> None:
    rate, step = result["batches_per_s"], result["train_step_s"]
    print(
        f"{result['engine']:>10} x{result['workers']}: {rate:7.2f} batches/s ({result['batches']} batches; "
        f"first after {result['first_batch_s']:.1f} s); training loop of {result['loop_batches']} "
        f"x {step * 1000:.0f} ms steps (producers {rate * step:.1f}x as fast) waited "
        f"{100 * result['waited_fraction']:.1f}% of its time"
    )
    if result["paced_waited_fraction"] == result["paced_waited_fraction"]:  # not NaN
        print(
            f"{'':>14}paced loop, {result['paced_step_s'] * 1000:.0f} ms steps (producers {PACED_MARGIN}x as fast): "
            f"waited {100 * result['paced_waited_fraction']:.1f}% of its time"
        )


def precache_section(args, paths, nodes: list[str]) -> None:
    """Print daskseg's (and gunpowder's) PreCache throughput for each worker count, with ratios."""
    workers = [int(w) for w in args.precache_workers.split(",") if w.strip()]
    if not workers:
        return
    print(f"\nPreCache(cache_size=2 x workers, num_workers=workers); stand-in train step {args.train_step * 1000:.0f} ms")
    ours = {}
    for n in workers:
        ours[n] = run_precache("daskseg", paths, n, args.precache_batches, args.loop_batches, nodes, args.train_step,
                               paced=True)
        _report_precache(ours[n])
    base = workers[0]
    for n in workers[1:]:
        print(f"daskseg scaling x{n} / x{base} workers: {ours[n]['batches_per_s'] / ours[base]['batches_per_s']:.2f}x "
              f"(ideal {n / base:.0f}x where {n} cores are free; this machine has {os.cpu_count()})")
    if args.gunpowder_precache_batches <= 0:
        return
    loop = max(2, args.loop_batches // 5)
    for n in workers:
        result = run_gunpowder_precache(paths, n, args.gunpowder_precache_batches, loop, nodes, args.train_step)
        if isinstance(result, str):
            print(f"gunpowder x{n}: {result}")
            return
        _report_precache(result)
        print(f"daskseg / gunpowder PreCache throughput at {n} workers: "
              f"{ours[n]['batches_per_s'] / result['batches_per_s']:.1f}x")

if __name__ == "__main__":
    sys.exit(main())
