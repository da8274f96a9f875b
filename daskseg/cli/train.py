"""``daskseg train``: the tutorial's training pipeline from a YAML config, batches made by Dask workers."""

from __future__ import annotations

import click

from .common import cluster_client, scheduler_option, workers_option

EXAMPLE_CONFIG = """\
samples: [data/sample_A.zarr, data/sample_B.zarr, data/sample_C.zarr]
network: nets/train_net_config.json
iterations: 10000
checkpoint_basename: checkpoints/train_net
save_every: 1000
snapshot_every: 500
num_workers: 4          # LocalCluster workers producing batches
cache_size: 16
augment:                # defaults: the tutorial's; null leaves a node out
  elastic: {control_point_spacing: [4, 40, 40], jitter_sigma: [0, 2, 2], rotation_interval: [0, 1.5708],
            prob_slip: 0.05, prob_shift: 0.05, max_misalign: 25}
"""


@click.command(epilog="Example config:\n\n\b\n" + EXAMPLE_CONFIG)
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Training YAML (see the example below).")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Train to this iteration instead of the config's (a whole number, at least 1).")
@click.option("--trust-pickle", is_flag=True,
              help="Resume from a pickled checkpoint (gunpowder's JAX format). Pickles can run code: trusted files only.")
@scheduler_option
@workers_option
def train(
    config_path: str, iterations: int | None, trust_pickle: bool, scheduler: str | None, workers: int | None
) -> None:
    """Train the U-Net on augmented batches produced by Dask workers; the training step runs here,
    on the GPU when JAX sees one. Resumes from the newest checkpoint.

    The whole config is checked before anything starts: unknown keys, values of the wrong type
    (`iterations: ten`) and YAML syntax errors are one line naming the key, the value and the type.

    Example: `daskseg train --config train.yaml --workers 4`
    """
    from tqdm import tqdm

    from ..jax.checkpoint import list_checkpoints, lock_basename
    from ..training import check_job, load_job, run_training

    job = load_job(config_path)
    if iterations is not None:
        job.iterations = iterations
    if workers is not None:
        job.num_workers = workers
    if trust_pickle:
        job.trust_pickle = True
    check_job(job)  # a bad network config or bad data fails before any cluster starts
    # one run per checkpoint basename, refused before a cluster starts
    with lock_basename(job.checkpoint_basename), cluster_client(scheduler, job.num_workers) as client:
        bar = tqdm(total=job.iterations, unit="it", desc="training", dynamic_ncols=True)

        def progress(iteration: int, loss: float) -> None:
            bar.n = iteration
            bar.set_postfix(loss=f"{loss:.5f}")

        try:
            iteration, loss = run_training(job, client=client, on_iteration=progress)
        except KeyboardInterrupt:
            bar.close()
            saved = list_checkpoints(job.checkpoint_basename)
            where = f"checkpoint {saved[-1][0]} saved ({saved[-1][1]})" if saved else "no checkpoint was saved yet"
            click.echo(f"interrupted: {where}; run the same command again to continue", err=True)
            raise SystemExit(130) from None
        finally:
            bar.close()
    click.echo(f"trained to iteration {iteration}" + (f", last loss {loss:.5f}" if loss is not None else ""))
