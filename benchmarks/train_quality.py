"""Which network recipe segments best for the same training time: the tutorial's, long-range
affinities, multitask LSD (MtLSD).

    python benchmarks/train_quality.py                  # 4 minutes of training per recipe, then predict/segment/evaluate
    python benchmarks/train_quality.py --seconds 600    # longer
    python benchmarks/train_quality.py --quick          # smoke check: small data, ~10 s of training each

Each recipe runs the demo's own code paths (``daskseg.demo``): the same synthetic samples
(``daskseg synth --preset``, default ``cremi-like``: three training samples and a held-out one),
the demo's U-Net trained with the tutorial's pipeline and augmentations for the same wall time
(compilation included: ``run_training(max_seconds=)``) on one LocalCluster, then ``daskseg
predict`` of the held-out volume, ``daskseg segment`` (2 x 2 x 2 blocks) and ``daskseg evaluate``
against its ground truth. Recipes:

- ``tutorial``: nearest-neighbour affinities (3 channels), watershed fragments merged by mean
  affinity (``--method watershed``), as the gunpowder tutorial and ``daskseg demo``;
- ``long-range``: ``daskseg net create --neighborhood long-range`` (8 channels: nearest plus
  (-2,0,0), (0,-3,0), (0,0,-3), (0,-9,0), (0,0,-9)), segmented by mutex watershed on all of them
  (``--method mws``);
- ``mtlsd``: affinities plus local shape descriptors (``daskseg net create --lsds``), watershed;
  skipped, saying so, while ``create_networks`` has no ``lsds`` option on this checkout.

The recipes are ``daskseg.demo.RECIPES`` (``daskseg demo --recipe``).

The table gives VOI split, merge and total and CREMI's adapted Rand error (lower is better) per
recipe, with each recipe's ratio to the tutorial's. The machine's load changes how many
iterations fit in the time: the iterations column says what each recipe got.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

def quick_settings(settings):
    """A smaller held-out volume and one worker: every stage runs, in about a minute in all."""
    return dataclasses.replace(settings, train_shape=(40, 288, 288), test_shape=(32, 160, 160),
                               predict_input=(28, 108, 108), workers=1)


def run_recipe(name: str, settings, samples: list[str], test_path: str, out_dir: str, client) -> dict:
    from daskseg.blockwise import evaluate
    from daskseg.demo import predict_held_out, segment_held_out, train_network
    from daskseg.synth import LABELS_DATASET

    recipe_dir = os.path.join(out_dir, name)
    trained = train_network(recipe_dir, samples, settings, client)
    t0 = time.perf_counter()
    prediction = os.path.join(recipe_dir, "prediction.zarr")
    predict_held_out(trained, test_path, os.path.join(prediction, "volumes", "pred_affs"), client)
    seg = segment_held_out(f"{prediction}/volumes/pred_affs", f"{prediction}/volumes/segmentation", settings, client)
    scores = evaluate(seg.outputs[settings.merge_threshold], f"{test_path}/{LABELS_DATASET}", client=client,
                      progress=False).scores()
    return {"recipe": name, "iterations": trained.iteration, "train_s": trained.seconds,
            "after_s": time.perf_counter() - t0, **scores}


def print_table(rows: list[dict], skipped: dict[str, str]) -> None:
    base = next((r for r in rows if r["recipe"] == "tutorial"), None)
    print()
    print(f"{'recipe':<12} {'iters':>6} {'train s':>8} {'VOI split':>10} {'VOI merge':>10} {'VOI':>7} "
          f"{'ARAND':>7} {'VOI/tut':>8} {'ARAND/tut':>10}")
    for r in rows:
        ratio_voi = r["voi"] / base["voi"] if base and base["voi"] else float("nan")
        ratio_arand = r["adapted_rand"] / base["adapted_rand"] if base and base["adapted_rand"] else float("nan")
        print(f"{r['recipe']:<12} {r['iterations']:>6d} {r['train_s']:>8.0f} {r['voi_split']:>10.3f} "
              f"{r['voi_merge']:>10.3f} {r['voi']:>7.3f} {r['adapted_rand']:>7.3f} {ratio_voi:>8.2f} "
              f"{ratio_arand:>10.2f}")
    for name, why in skipped.items():
        print(f"{name:<12} skipped: {why}")
    if base and len(rows) > 1:
        best = min(rows, key=lambda r: r["voi"])
        print(f"best VOI: {best['recipe']} ({best['voi']:.3f}, {100 * (1 - best['voi'] / base['voi']):.0f}% "
              f"lower than the tutorial's {base['voi']:.3f})" if best is not base else
              f"best VOI: the tutorial recipe ({base['voi']:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=240.0, help="training wall time per recipe (default 240)")
    parser.add_argument("--quick", action="store_true", help="small data, 10 s of training per recipe (smoke check)")
    parser.add_argument("--preset", default=None, help="synthetic data preset (default: the demo's, cremi-like)")
    parser.add_argument("--recipes", nargs="+", default=["tutorial", "long-range", "mtlsd"],
                        help="recipes of daskseg.demo.RECIPES (default: tutorial long-range mtlsd)")
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: the demo's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="keep everything here (default: a temporary directory)")
    args = parser.parse_args()

    from daskseg.cluster import client_session
    from daskseg.demo import RECIPES, DemoSettings, recipe_problem, with_recipe
    from daskseg.synth import write_cremi_samples, write_sample

    logging.getLogger("distributed").setLevel(logging.WARNING)
    settings = DemoSettings(seed=args.seed, iterations=10**9, train_seconds=args.seconds)
    preset = settings.preset = args.preset or settings.preset
    if args.quick:
        settings = dataclasses.replace(quick_settings(settings), train_seconds=10.0)
    if args.workers:
        settings.workers = args.workers
    skipped = {name: why for name in args.recipes if (why := recipe_problem(name))}
    # every recipe trains on the same samples: as wide as the widest recipe needs (MtLSD's descriptors
    # need the labels around a batch)
    settings.train_shape = tuple(max(sizes) for sizes in zip(settings.train_shape, *(
        RECIPES[name]["train_shape"] for name in args.recipes if name not in skipped and "train_shape" in RECIPES[name])))
    with tempfile.TemporaryDirectory(prefix="daskseg-train-quality-") as tmp:
        out_dir = os.path.abspath(args.out or tmp)
        data_dir = os.path.join(out_dir, "data")
        t0 = time.perf_counter()
        samples = write_cremi_samples(data_dir, settings.train_shape, seed=settings.seed, extension=".zarr",
                                      overwrite=True, preset=preset)
        test_path = os.path.join(data_dir, "test_sample.zarr")
        write_sample(test_path, settings.test_shape, seed=settings.seed + 100, overwrite=True, preset=preset)
        print(f"data: preset {preset!r}, 3 training samples {settings.train_shape}, held-out {settings.test_shape} "
              f"({time.perf_counter() - t0:.0f} s); {settings.train_seconds:g} s of training per recipe on "
              f"{settings.workers} worker(s)", flush=True)
        rows = []
        with client_session(None, n_workers=settings.workers) as client:
            for name in args.recipes:
                if name in skipped:
                    print(f"-- {name}: skipped: {skipped[name]}", flush=True)
                    continue
                recipe = with_recipe(settings, name)
                try:
                    row = run_recipe(name, recipe, samples, test_path, out_dir, client)
                except Exception as e:  # noqa: BLE001 - one recipe's failure must not lose the others' figures
                    skipped[name] = f"failed: {type(e).__name__}: {e}"
                    print(f"-- {name}: {skipped[name]}", flush=True)
                    continue
                print(f"-- {name}: {row['iterations']} iterations in {row['train_s']:.0f} s; predict, segment "
                      f"({recipe.segment_method}) and evaluate {row['after_s']:.0f} s; VOI split "
                      f"{row['voi_split']:.3f} merge {row['voi_merge']:.3f} total {row['voi']:.3f}, adapted Rand "
                      f"{row['adapted_rand']:.3f}", flush=True)
                rows.append(row)
    print_table(rows, skipped)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
