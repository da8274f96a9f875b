"""The ``daskseg`` command line: thin click commands that parse, call the library and print."""

from __future__ import annotations

import logging

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="daskseg")
def main(verbose: int) -> None:
    """daskseg: neuron segmentation of large 3D EM volumes on Dask.

    Typical session: `daskseg synth data/`, `daskseg net create nets/`, `daskseg train --config train.yaml`,
    `daskseg predict --network nets/test_net.json --checkpoint ... --raw IN.zarr/volumes/raw --out OUT.zarr/volumes/pred_affs`.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from .info import info

    main.add_command(info)


_register()
