"""Segmentation quality on the same affinities: daskseg (blockwise and in memory), waterz, mwatershed.

    python benchmarks/segment_quality.py            # 2 synthetic samples (40, 256, 256): a few minutes
    python benchmarks/segment_quality.py --quick    # one small sample, few settings: < 1 min
    python benchmarks/segment_quality.py --affs demo_output/prediction.zarr/volumes/pred_affs \\
        --gt demo_output/data/test_sample.zarr/volumes/labels   # a prediction instead

Every method gets the same affinities (gunpowder's nearest-neighbour convention, offsets
(-1,0,0), (0,-1,0), (0,0,-1): channel ``c`` at ``p`` is the affinity of ``p`` and ``p + offset_c``)
and is scored by the same function (``daskseg.segment.cremi_scores``: VOI split/merge and CREMI's
adapted Rand error, ground-truth label 0 ignored). Each method is swept over its thresholds; the
table at the end gives each method's best setting (lowest VOI split + merge, averaged over samples).

Methods:

- ``daskseg segment`` (``daskseg.blockwise.segment`` on a LocalCluster, ``--workers`` workers,
  ``--block-shape`` blocks): watershed fragments at a fragment threshold, merged by mean affinity
  up the reduction tree, every merge threshold in one pass (the time is that pass: fragments,
  edges, agglomeration, relabel, Zarr in and out); and ``--method cc`` (connected components of the
  voxel edges above each threshold, exact).
- daskseg in memory: ``daskseg.segment.affinities_to_segmentation`` (hierarchical agglomeration by
  mean affinity), one call per (fragment threshold, merge threshold).
- waterz 0.10: ``waterz.agglomerate(affs, thresholds)`` (its own zwatershed fragments, then
  hierarchical merging by ``OneMinus<MeanAffinity>`` and by the median,
  ``OneMinus<HistogramQuantileAffinity<RegionGraphType, 50, ScoreValue, 256>>``). A waterz threshold
  ``w`` merges while ``1 - score < w``, so it is reported as the affinity threshold ``1 - w`` to
  compare with daskseg's. All thresholds in one pass (the time is that pass). Also waterz's mean
  agglomeration of daskseg's fragments (``fragments=``), to separate fragments from merging.
- mwatershed 0.5: ``mwatershed.agglom(affs - bias, offsets)``, (a) nearest neighbours only, (b)
  nearest neighbours plus long-range offsets (0,-3,0), (0,0,-3), (0,-9,0), (0,0,-9), whose
  affinities are computed from the same nearest-neighbour ones as the smallest affinity along the
  straight path (a boundary crossed anywhere on the way separates the two ends); long-range edges
  get a bias 0.2 higher (split-biased, as mwatershed's documentation advises). Users usually train
  the network to predict the long-range affinities; here they are derived, so mwatershed sees no
  information the others lack.

Affinity conventions were checked in waterz's source (``backend/region_graph.hpp``: for voxel ``p``
and axis ``d`` it pairs ``seg[p]`` with ``seg[p - e_d]`` and reads ``aff[d][p]``, i.e. gunpowder's
(-1,0,0) neighbourhood) and are re-checked on tiny volumes at start (``check_conventions``).

Synthetic affinities (``degraded_affinities``) start from the ground-truth affinities of a
``daskseg.synth.write_sample`` sample (1 inside an object, 0 across a label change) and are degraded
the way predictions are wrong:

1. thick boundaries: the boundary map (1 - affinity) is blurred in-plane (sigma 1 voxel) and
   rescaled so a one-voxel membrane keeps depth 1 (about 3 voxels below 0.5, as predicted ones);
2. membrane gaps: where a smooth random field (sigma (1, 4, 4) voxels) exceeds 2 sd (about 2% of
   the volume, in patches) the boundary map is multiplied by 0.15 (faint membranes: merge errors);
3. false membranes: where another such field exceeds 2.3 sd, the boundary map is at least 0.85
   (dark organelles inside objects: split errors);
4. pixel noise: Gaussian noise of sd 0.8 added in logit space (values clipped to [0.02, 0.98]
   first), so values stay in (0, 1).

Take figures on a quiet machine; the script prints the 1-minute load average with the results.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NEAREST = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))
LONG_RANGE = ((0, -3, 0), (0, 0, -3), (0, -9, 0), (0, 0, -9))
HIST_MEDIAN = "OneMinus<HistogramQuantileAffinity<RegionGraphType, 50, ScoreValue, 256>>"


# --- affinities -------------------------------------------------------------------------------
def degraded_affinities(labels: np.ndarray, seed: int = 0, *, blur: float = 1.0, gaps: float = 2.0,
                        false_membranes: float = 2.3, noise: float = 0.8) -> np.ndarray:
    """Ground-truth affinities of ``labels`` degraded like a prediction (see the module docstring).

    Args:
        labels (np.ndarray): (z, y, x) ground truth.
        seed (int): the random fields and noise.
        blur (float): in-plane sigma (voxels) that thickens boundaries.
        gaps (float): sd above which a smooth field marks membrane gaps.
        false_membranes (float): sd above which a smooth field marks false membranes.
        noise (float): sd of the noise in logit space.

    Returns float32 (3, z, y, x) in (0, 1).
    """
    from scipy import ndimage as ndi

    from daskseg.report import gt_affinities

    rng = np.random.default_rng(seed)
    boundary = 1.0 - gt_affinities(labels, NEAREST).astype(np.float32)
    delta = np.zeros(41)
    delta[20] = 1.0
    peak = float(ndi.gaussian_filter1d(delta, blur)[20])
    boundary = np.stack([ndi.gaussian_filter(c, (0, blur, blur)) for c in boundary]) / np.float32(peak)
    np.clip(boundary, 0.0, 1.0, out=boundary)

    def field() -> np.ndarray:
        f = ndi.gaussian_filter(rng.standard_normal(labels.shape).astype(np.float32), (1, 4, 4))
        return f / f.std()

    boundary *= np.where(field() > gaps, np.float32(0.15), np.float32(1.0))[None]
    boundary = np.maximum(boundary, np.where(field() > false_membranes, np.float32(0.85), np.float32(0.0))[None])
    affs = np.clip(1.0 - boundary, 0.02, 0.98)
    logit = np.log(affs / (1.0 - affs)) + rng.normal(0.0, noise, affs.shape).astype(np.float32)
    return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


def long_range_affinities(affs: np.ndarray, offsets: Sequence[Sequence[int]] = LONG_RANGE) -> np.ndarray:
    """Affinities for straight ``offsets`` along one axis from nearest-neighbour ones (gunpowder's
    convention): the smallest nearest-neighbour affinity on the path from ``p`` to ``p + offset``;
    0 where the path leaves the volume."""
    out = np.zeros((len(offsets),) + affs.shape[1:], np.float32)
    for c, offset in enumerate(offsets):
        (axis,) = [a for a, o in enumerate(offset) if o != 0]
        k = -int(offset[axis])
        if k <= 0:
            raise ValueError(f"long-range offsets must point backwards along one axis, got {offset}")
        # nearest[axis][q] links q and q - e_axis; the path p -> p - k e uses q = p, p - 1, ..., p - k + 1
        path = np.full(affs.shape[1:], np.inf, np.float32)
        n = affs.shape[1 + axis]
        for step in range(k):
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            src[axis] = slice(k - step, n - step)
            dst[axis] = slice(k, n)
            np.minimum(path[tuple(dst)], affs[axis][tuple(src)], out=path[tuple(dst)])
        head = [slice(None)] * 3
        head[axis] = slice(0, k)
        path[tuple(head)] = 0.0
        out[c] = path
    return out


# --- the other libraries ----------------------------------------------------------------------
@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence the C++ progress lines waterz writes to file descriptor 1."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def run_waterz(affs: np.ndarray, affinity_thresholds: Sequence[float], scoring: str | None = None,
               fragments: np.ndarray | None = None) -> tuple[list[np.ndarray], float]:
    """waterz's segmentations, one per affinity threshold (merge while mean affinity > t), and the
    seconds of the one pass that made them all."""
    import waterz

    order = sorted(affinity_thresholds, reverse=True)  # waterz thresholds 1 - t ascending
    kwargs = {} if scoring is None else {"scoring_function": scoring}
    if fragments is not None:
        kwargs["fragments"] = np.ascontiguousarray(fragments, np.uint64)
    affs = np.ascontiguousarray(affs, np.float32)
    with quiet_stdout():
        t = time.perf_counter()
        segs = {a: s.copy() for a, s in zip(order, waterz.agglomerate(affs, [1.0 - a for a in order], **kwargs))}
        seconds = time.perf_counter() - t
    return [segs[a] for a in affinity_thresholds], seconds


def run_mwatershed(affs: np.ndarray, bias: float, long_range: bool) -> tuple[np.ndarray, float]:
    """Mutex watershed of ``affs - bias`` (nearest neighbours) plus derived long-range edges with
    ``bias + 0.2``; returns the segmentation and its seconds (long-range affinities included)."""
    import mwatershed

    t = time.perf_counter()
    weights = affs.astype(np.float64) - bias
    offsets = [list(o) for o in NEAREST]
    if long_range:
        weights = np.concatenate([weights, long_range_affinities(affs).astype(np.float64) - (bias + 0.2)])
        offsets += [list(o) for o in LONG_RANGE]
    seg = mwatershed.agglom(weights, offsets)
    return seg, time.perf_counter() - t


def check_conventions() -> None:
    """waterz and mwatershed read our affinities as gunpowder's (-1,0,0) neighbourhood: a 0 in
    channel 0 at z=2 separates z < 2 from z >= 2 (and nothing else); raises AssertionError if not."""
    import mwatershed

    affs = np.ones((3, 4, 3, 3), np.float32)
    affs[0, 2] = 0.0
    (seg,), _ = run_waterz(affs, [0.5])
    assert len(np.unique(seg[:2])) == 1 and len(np.unique(seg[2:])) == 1 and seg[1, 0, 0] != seg[2, 0, 0], \
        "waterz does not read channel 0 at z as the affinity of z and z-1"
    seg = mwatershed.agglom(affs.astype(np.float64) - 0.5, [list(o) for o in NEAREST])
    assert len(np.unique(seg[:2])) == 1 and len(np.unique(seg[2:])) == 1 and seg[1, 0, 0] != seg[2, 0, 0], \
        "mwatershed does not read offset (-1,0,0) at z as the affinity of z and z-1"
    lr = long_range_affinities(np.ones((3, 1, 1, 12), np.float32) * np.float32(0.9), [(0, 0, -3)])
    assert lr[0, 0, 0, 2] == 0 and lr[0, 0, 0, 3] == np.float32(0.9)


# --- one sample -------------------------------------------------------------------------------
def score(seg: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    from daskseg.segment import cremi_scores

    return cremi_scores(np.asarray(seg, np.uint64), gt)


def evaluate_sample(args, affs_path: str, roi, affs: np.ndarray, gt: np.ndarray, voxel_size, workdir: str,
                    client) -> list[tuple[str, str, dict, float]]:
    """Every method's every setting on one sample: ``(method, setting, scores, seconds)`` rows."""
    from daskseg.blockwise import segment
    from daskseg.io import open_dataset, split_dataset_path
    from daskseg.segment import affinities_to_segmentation, watershed_fragments

    rows: list[tuple[str, str, dict, float]] = []
    merge_ts = args.thresholds
    out = os.path.join(workdir, "seg.zarr", "volumes", "segmentation")

    def read(path: str) -> np.ndarray:
        return open_dataset(*split_dataset_path(path)).read(roi)

    def log(row) -> None:
        method, setting, s, seconds = row
        print(f"   {method:<34} {setting:<22} VOI {s['voi_split']:.3f} + {s['voi_merge']:.3f} = {s['voi']:.3f}  "
              f"ARAND {s['adapted_rand']:.3f}  {seconds:6.2f} s", flush=True)

    def add(method: str, setting: str, seg: np.ndarray, seconds: float) -> None:
        rows.append((method, setting, score(seg, gt), seconds))
        log(rows[-1])

    for wt in args.fragment_thresholds:
        t = time.perf_counter()
        result = segment(affs_path, out, merge_ts, method="watershed", watershed={"threshold": wt}, roi=roi,
                         block_shape=args.block_shape, client=client, progress=False, overwrite=True)
        seconds = time.perf_counter() - t
        for mt, path in result.outputs.items():
            add("daskseg segment (blockwise)", f"frag {wt:g}, merge {mt:g}", read(path), seconds)
    t = time.perf_counter()
    result = segment(affs_path, out, args.cc_thresholds, method="cc", roi=roi, block_shape=args.block_shape,
                     client=client, progress=False, overwrite=True)
    seconds = time.perf_counter() - t
    for ct, path in result.outputs.items():
        add("daskseg segment --method cc", f"threshold {ct:g}", read(path), seconds)

    for wt in args.fragment_thresholds:
        for mt in merge_ts:
            t = time.perf_counter()
            seg = affinities_to_segmentation(affs, wt, merge_threshold=mt, voxel_size=voxel_size)
            add("daskseg in memory (hierarchical)", f"frag {wt:g}, merge {mt:g}", seg, time.perf_counter() - t)

    for name, scoring in (("waterz mean", None), ("waterz median (hist-quantile 50)", HIST_MEDIAN)):
        segs, seconds = run_waterz(affs, merge_ts, scoring)
        for mt, seg in zip(merge_ts, segs):
            add(name, f"merge {mt:g}", seg, seconds)
    # waterz's merging of daskseg's fragments, at the fragment threshold daskseg did best with so far
    best_frag = min((r for r in rows if r[0] == "daskseg in memory (hierarchical)"), key=lambda r: r[2]["voi"])[1]
    wt = float(best_frag.split(",")[0].split()[1])
    t = time.perf_counter()
    fragments = watershed_fragments(affs, wt, voxel_size=voxel_size)
    frag_seconds = time.perf_counter() - t
    segs, seconds = run_waterz(affs, merge_ts, fragments=fragments)
    for mt, seg in zip(merge_ts, segs):
        add("waterz mean, daskseg fragments", f"frag {wt:g}, merge {mt:g}", seg, seconds + frag_seconds)

    for long_range in (False, True):
        name = "mwatershed nn + long range" if long_range else "mwatershed nn only"
        for bias in args.biases:
            seg, seconds = run_mwatershed(affs, bias, long_range)
            add(name, f"bias {bias:g}", seg, seconds)
    return rows


# --- the whole run ----------------------------------------------------------------------------
def synthetic_samples(args, workdir: str) -> Iterator[tuple[str, str, object, np.ndarray, np.ndarray, tuple]]:
    from daskseg.io import open_dataset, write_array
    from daskseg.synth import LABELS_DATASET, write_sample

    for seed in args.seeds:
        path = os.path.join(workdir, f"sample-{seed}.zarr")
        _, labels = write_sample(path, tuple(args.shape), seed)
        affs = degraded_affinities(labels, seed)
        ds = open_dataset(path, LABELS_DATASET)
        write_array(path, "volumes/affs", affs, ds.voxel_size, chunk_shape=(3, *args.block_shape))
        yield f"synthetic seed {seed} {tuple(args.shape)}", f"{path}/volumes/affs", ds.roi, affs, labels, \
            tuple(ds.voxel_size)


def given_sample(args) -> Iterator[tuple[str, str, object, np.ndarray, np.ndarray, tuple]]:
    from daskseg.blockwise.outputs import open_input
    from daskseg.blockwise.segmentation.affinities import (
        affinity_scale,
        read_affinities,
    )

    affs_ds, gt_ds = open_input(args.affs), open_input(args.gt)
    if affs_ds.voxel_size != gt_ds.voxel_size:
        raise SystemExit(f"error: voxel sizes differ: affinities {tuple(affs_ds.voxel_size)}, "
                         f"ground truth {tuple(gt_ds.voxel_size)}")
    roi = affs_ds.roi.intersect(gt_ds.roi)
    if roi.empty:
        raise SystemExit(f"error: the affinities ({affs_ds.roi}) and the ground truth ({gt_ds.roi}) do not overlap")
    affs = read_affinities(affs_ds, roi, affinity_scale(affs_ds))
    yield f"{args.affs} vs {args.gt} in {roi}", os.path.abspath(args.affs), roi, affs, gt_ds.read(roi), \
        tuple(affs_ds.voxel_size)


def best_table(all_rows: list[list[tuple[str, str, dict, float]]]) -> None:
    """Per method, the setting with the lowest mean VOI over the samples, and its mean scores."""
    methods: dict[str, dict[str, list]] = {}
    for rows in all_rows:
        for method, setting, s, seconds in rows:
            methods.setdefault(method, {}).setdefault(setting, []).append((s, seconds))
    print(f"\n{'method':<34} {'best setting':<22} {'VOI split':>9} {'VOI merge':>9} {'VOI':>7} {'ARAND':>7} "
          f"{'time (s)':>9}")
    for method, settings in methods.items():
        def mean(entries, key):
            return float(np.mean([e[0][key] for e in entries]))

        setting, entries = min(settings.items(), key=lambda kv: mean(kv[1], "voi"))
        print(f"{method:<34} {setting:<22} {mean(entries, 'voi_split'):9.3f} {mean(entries, 'voi_merge'):9.3f} "
              f"{mean(entries, 'voi'):7.3f} {mean(entries, 'adapted_rand'):7.3f} "
              f"{float(np.mean([e[1] for e in entries])):9.2f}")
    print("time: daskseg segment and waterz make every merge threshold in one pass (the pass's time); daskseg "
          "in memory and mwatershed one setting per call (that call's time). Means over the samples.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small sample and few settings (< 1 min)")
    parser.add_argument("--affs", help="a prediction to segment instead of synthetic samples (CONTAINER/DATASET)")
    parser.add_argument("--gt", help="its ground-truth labels (CONTAINER/DATASET), with --affs")
    parser.add_argument("--shape", type=int, nargs=3, default=[40, 256, 256], help="synthetic sample shape (voxels)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="synthetic samples")
    parser.add_argument("--block-shape", type=int, nargs=3, default=[20, 128, 128], help="daskseg segment blocks")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers for daskseg segment")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.8, 0.9],
                        help="merge thresholds (mean affinity)")
    parser.add_argument("--fragment-thresholds", type=float, nargs="+", default=[0.5, 0.8, 0.95],
                        help="daskseg watershed fragment thresholds")
    parser.add_argument("--cc-thresholds", type=float, nargs="+", default=[0.5, 0.7, 0.9, 0.95])
    parser.add_argument("--biases", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7],
                        help="mwatershed biases (nearest-neighbour edges)")
    args = parser.parse_args()
    if bool(args.affs) != bool(args.gt):
        parser.error("--affs and --gt go together")
    if args.quick:
        args.shape, args.seeds, args.block_shape, args.workers = [16, 96, 96], [1], [8, 48, 48], 1
        args.thresholds, args.fragment_thresholds = [0.5, 0.9], [0.5, 0.95]
        args.cc_thresholds, args.biases = [0.5, 0.9], [0.4, 0.6]

    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    check_conventions()
    print("conventions: waterz and mwatershed read channel 0 at z as the affinity of z and z-1 (checked)")
    all_rows = []
    with tempfile.TemporaryDirectory(prefix="daskseg-bench-quality-") as workdir, \
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None) as cluster, Client(cluster) as client:
        samples = given_sample(args) if args.affs else synthetic_samples(args, workdir)
        for name, affs_path, roi, affs, gt, voxel_size in samples:
            print(f"-- {name}: {affs.shape[1:]} voxels, voxel size {voxel_size}, {len(np.unique(gt[gt != 0]))} "
                  f"objects; daskseg segment on {args.workers} worker(s), blocks {tuple(args.block_shape)}",
                  flush=True)
            all_rows.append(evaluate_sample(args, affs_path, roi, affs, gt, voxel_size, workdir, client))
    best_table(all_rows)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
