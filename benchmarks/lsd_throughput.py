"""Local shape descriptors of one training batch: daskseg against the ``lsds`` package, side by side.

The labels are a synthetic CREMI-like sample (``daskseg.synth.make_sample``, 40x4x4 nm): the
descriptors of an output block of 56x56x56 voxels (the tutorial's training output) with
``sigma`` = 80 nm, so the labels read are grown by the Gaussian's 3 sigma (6 voxels in z, 60 in
y and x). Both compute the same block from the same labels, for each ``downsample`` factor; the
script prints seconds per block, the ratio lsds / daskseg, and the largest difference (lsds
rounds in float32). Figures on the shared 2-core development machine (busy): 0.8 s against 150 s
at downsample 1 (~190x), 0.27 s against 9.9 s at downsample 2 (~36x).

    python benchmarks/lsd_throughput.py                  # downsample 1 and 2
    python benchmarks/lsd_throughput.py --downsample 2 --sigma 120

``lsds`` is a dev dependency (``pip install lsds``); without it only daskseg's time is printed.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

from daskseg.local_shape_descriptor import get_local_shape_descriptors, kernel_reach
from daskseg.synth import make_sample

VOXEL_SIZE = (40, 4, 4)
OUTPUT_SHAPE = (56, 56, 56)


def _time(fn, repeats: int) -> tuple[float, np.ndarray]:
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=float, default=80.0, help="nm (default 80)")
    parser.add_argument("--downsample", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        from gunpowder import Roi
        from lsd.train.local_shape_descriptor import get_local_shape_descriptors as lsds_descriptors
    except ImportError as e:
        lsds_descriptors = None
        print(f"lsds not importable ({e}): daskseg only")

    for df in args.downsample:
        reach = kernel_reach((args.sigma,) * 3, VOXEL_SIZE, "gaussian", df)
        shape = tuple(o + 2 * r for o, r in zip(OUTPUT_SHAPE, reach))
        _, labels = make_sample(shape, seed=args.seed, voxel_size=VOXEL_SIZE)
        region = tuple(slice(r, r + o) for r, o in zip(reach, OUTPUT_SHAPE))
        objects = len(np.unique(labels[region]))
        ours_s, ours = _time(
            partial(
                get_local_shape_descriptors, labels, args.sigma, voxel_size=VOXEL_SIZE, region=region, downsample=df
            ),
            args.repeats,
        )
        line = f"downsample {df}: labels {shape}, {objects} objects in the block; daskseg {ours_s:.2f} s"
        if lsds_descriptors is not None:
            roi = Roi(reach, OUTPUT_SHAPE)
            theirs_s, theirs = _time(
                partial(lsds_descriptors, labels, (args.sigma,) * 3, voxel_size=VOXEL_SIZE, roi=roi, downsample=df),
                args.repeats,
            )
            diff = np.abs(ours - theirs)
            line += (
                f", lsds {theirs_s:.2f} s, ratio lsds/daskseg {theirs_s / ours_s:.1f}x; "
                f"max |diff| {diff.max():.1e}, mean {diff.mean():.1e}"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
