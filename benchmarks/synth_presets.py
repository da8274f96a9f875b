"""The synthetic data presets side by side: generation time, label statistics, the classical baseline.

    python benchmarks/synth_presets.py                       # (100, 400, 400) samples: a few minutes
    python benchmarks/synth_presets.py --shape 44 256 256    # the demo's held-out volume's size

For each preset (``easy``, ``cremi-like``, ``hard``) and seed: the time ``make_sample`` takes (and
its ratio to ``easy``'s, measured in the same run), the label statistics ``daskseg info --stats``
prints (calibre percentiles of the per-object, per-section equivalent diameters, boundary
fraction, fraction of voxels thinner than 200 nm), the raw's per-section brightness and contrast
changes, and the classical baseline's best VOI (``daskseg.segment.baseline``: smoothed raw
thresholded, 3-D components, small ones dropped, nearest fill, best threshold of a sweep).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from daskseg.segment.baseline import best_threshold_segmentation
from daskseg.segment.stats import format_statistics, intensity_statistics, label_statistics
from daskseg.synth import DATA_PRESETS, VOXEL_SIZE, make_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=[100, 400, 400], help="sample shape (voxels z y x)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="samples per preset")
    parser.add_argument("--presets", nargs="+", default=list(DATA_PRESETS), choices=list(DATA_PRESETS))
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline (the slow part)")
    args = parser.parse_args()
    shape = tuple(args.shape)
    rows = []
    for preset in args.presets:
        times, vois = [], []
        for seed in args.seeds:
            t0 = time.perf_counter()
            raw, labels = make_sample(shape, seed, preset=preset)
            times.append(time.perf_counter() - t0)
            print(f"\n== {preset}, seed {seed}, {shape}: generated in {times[-1]:.2f} s")
            print(format_statistics(label_statistics(labels, VOXEL_SIZE)))
            print(format_statistics(intensity_statistics(raw)))
            if not args.no_baseline:
                t0 = time.perf_counter()
                threshold, _, scores = best_threshold_segmentation(raw, labels, voxel_size=VOXEL_SIZE)
                vois.append(scores["voi"])
                print(f"baseline:          VOI {scores['voi']:.3f} (split {scores['voi_split']:.3f}, merge "
                      f"{scores['voi_merge']:.3f}), adapted Rand {scores['adapted_rand']:.3f} at threshold "
                      f"{threshold:.2f} ({time.perf_counter() - t0:.1f} s)")
        rows.append((preset, float(np.mean(times)), float(np.mean(vois)) if vois else float("nan")))
    base = dict((p, t) for p, t, _ in rows).get("easy")
    print("\n| preset | generation (s) | ratio to easy | baseline VOI |\n|---|---|---|---|")
    for preset, t, v in rows:
        ratio = f"{t / base:.2f}" if base else "-"
        print(f"| {preset} | {t:.2f} | {ratio} | {v:.3f} |")


if __name__ == "__main__":
    main()
