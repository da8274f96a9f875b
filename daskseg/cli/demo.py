"""``daskseg demo``: synthesise, train, predict blockwise, segment and report — on this machine."""

from __future__ import annotations

import click


@click.command()
@click.option("--out", "out_dir", default="demo_output", show_default=True, type=click.Path(file_okay=False))
@click.option("--iterations", type=int, default=None, help="Training iterations (default 300: a few minutes on a laptop CPU).")
@click.option("--workers", type=int, default=None, help="LocalCluster workers producing batches and predicting (default 2).")
@click.option("--recipe", type=click.Choice(["tutorial", "long-range", "mtlsd"]), default="long-range",
              show_default=True,
              help="Network recipe: long-range affinities segmented by mutex watershed (the winner of "
              "benchmarks/train_quality.py), the tutorial's nearest-neighbour affinities (watershed), or affinities "
              "+ local shape descriptors.")
@click.option("--compare-tutorial", is_flag=True,
              help="With another recipe, also train the tutorial's with the same settings and report both.")
def demo(out_dir: str, iterations: int | None, workers: int | None, recipe: str, compare_tutorial: bool) -> None:
    """Run the tutorial end to end on synthetic CREMI-like data (`daskseg synth --preset cremi-like`)
    and write OUT/report.md with affinity scores against ground truth (next to thresholding raw
    intensities), VOI and adapted Rand (next to a classical threshold-and-components baseline), the
    loss curve (loss.png) and a section of raw / ground truth / prediction (section.png).

    Example: `daskseg demo --out demo_output`
    """
    from tqdm import tqdm

    from ..demo import DemoSettings, run_demo, with_recipe

    settings = with_recipe(DemoSettings(compare_tutorial=compare_tutorial), recipe)
    if iterations is not None:
        settings.iterations = iterations
    if workers is not None:
        settings.workers = workers
    bar = tqdm(total=settings.iterations, unit="it", desc="training", dynamic_ncols=True)

    def progress(iteration: int, loss: float) -> None:
        bar.n = iteration
        bar.set_postfix(loss=f"{loss:.4f}")

    numbers = run_demo(out_dir, settings, on_iteration=progress)
    bar.close()
    net, base = numbers["network_affinities"], numbers["raw_threshold_affinities"]
    for name in ("macro_f1", "boundary_f1", "f1"):
        click.echo(f"affinity {name}: network {net[name]:.3f}, raw-intensity threshold {base[name]:.3f}")
    click.echo(f"segmentation VOI: network {numbers['network_segmentation']['voi']:.3f}, "
               f"classical baseline {numbers['baseline_segmentation']['voi']:.3f}")
    click.echo(f"report: {out_dir}/report.md")
