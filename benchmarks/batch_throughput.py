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


# daskseg times providers that join upstreams (RandomProvider) including their upstreams' time;
# gunpowder does not time them: subtract what the upstream nodes report to get the node's own share
INCLUSIVE = {"RandomProvider": ("Hdf5Source", "Normalize", "RandomLocation")}


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
    for node, upstream in INCLUSIVE.items():
        if node in out:
            out[node] -= sum(out.get(u, 0.0) for u in upstream)
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
    args = parser.parse_args(argv)

    if args.engine is not None:  # one engine in this process (how the gunpowder side is run)
        nodes = args.nodes.split(",") if args.nodes else [name for name, _ in AUGMENTATIONS]
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
