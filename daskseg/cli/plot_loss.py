"""``daskseg plot-loss``: the training loss curve as a PNG."""

from __future__ import annotations

import click


@click.command("plot-loss")
@click.argument("log_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("png", type=click.Path(dir_okay=False))
def plot_loss(log_csv: str, png: str) -> None:
    """Render the loss curve of a training log (CSV written by the Train node) as a PNG.

    Example: `daskseg plot-loss checkpoints/train_net_log.csv loss.png`
    """
    from ..jax.loss_plot import plot_loss as render

    render(log_csv, png)
    click.echo(png)
