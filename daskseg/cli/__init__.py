"""The ``daskseg`` command line: thin click commands that parse, call the library and print."""

from __future__ import annotations

import logging

import click

from ..errors import DaskSegError


class DaskSegGroup(click.Group):
    """Reports daskseg's own errors (bad paths, ROIs, voxel sizes) as one clear line, no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (DaskSegError, FileNotFoundError) as e:
            raise click.ClickException(f"{type(e).__name__}: {e}") from e


@click.group(cls=DaskSegGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="daskseg")
def main(verbose: int) -> None:
    """daskseg: neuron segmentation of large 3D EM volumes on Dask.

    Typical session: `daskseg synth data/`, `daskseg net create nets/`, `daskseg train --config train.yaml`,
    `daskseg predict --network nets/test_net_config.json --checkpoint ... --raw IN.zarr/volumes/raw --out OUT.zarr/volumes/pred_affs`.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        # distributed configures its own INFO logging when imported; keep the terminal for progress
        import dask.config

        quiet = "info" if verbose else "warning"
        dask.config.set({"logging": {"distributed": quiet, "distributed.nanny": "error", "bokeh": "error"}})


def _register() -> None:
    from .demo import demo
    from .evaluate import evaluate
    from .info import info
    from .net import net
    from .plot_loss import plot_loss
    from .predict import predict
    from .pyramid import pyramid
    from .segment import segment
    from .synth import synth
    from .train import train
    from .view import view

    for command in (synth, net, train, predict, segment, evaluate, demo, info, plot_loss, view, pyramid):
        main.add_command(command)


_register()
