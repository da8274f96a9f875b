"""``daskseg net``: write network configs (the tutorial's ``mknet.py`` step) and check shapes."""

from __future__ import annotations

import click


def _triple(value: str | None):
    if value is None:
        return None
    parts = tuple(int(v) for v in value.split(","))
    if len(parts) != 3:
        raise click.BadParameter(f"expected z,y,x, got {value!r}")
    return parts


@click.group()
def net() -> None:
    """Network configs: `daskseg net create DIR`."""


@net.command()
@click.argument("output_dir", type=click.Path(file_okay=False), default=".")
@click.option("--train-input", default=None, help="Training input shape z,y,x in voxels (default 84,268,268).")
@click.option("--predict-input", default=None, help="Prediction input shape z,y,x (default 120,322,322).")
@click.option("--num-fmaps", type=int, default=None, help="Feature maps of the top level (default 6).")
@click.option("--fmap-inc-factor", type=int, default=None, help="Feature map growth per level (default 4).")
@click.option("--downsample", default=None,
              help="Downsample factors per level as z,y,x;z,y,x;... (default 1,3,3;1,3,3;1,3,3).")
def create(output_dir, train_input, predict_input, num_fmaps, fmap_inc_factor, downsample) -> None:
    """Write train_net_config.json and the larger test_net_config.json (input/output shapes,
    architecture, optimizer, tensor names) — the gunpowder CREMI example's U-Net by default.

    Example: `daskseg net create nets/ --train-input 36,124,124 --num-fmaps 4`
    """
    from ..models.config import create_networks

    kwargs = {}
    if train_input:
        kwargs["train_input_shape"] = _triple(train_input)
    if predict_input:
        kwargs["predict_input_shape"] = _triple(predict_input)
    if num_fmaps is not None:
        kwargs["num_fmaps"] = num_fmaps
    if fmap_inc_factor is not None:
        kwargs["fmap_inc_factor"] = fmap_inc_factor
    if downsample:
        kwargs["downsample_factors"] = tuple(_triple(f) for f in downsample.split(";"))
    train_cfg, predict_cfg = create_networks(output_dir, **kwargs)
    for cfg in (train_cfg, predict_cfg):
        click.echo(f"{output_dir}/{cfg.name}_config.json: input {cfg.input_shape} -> output {cfg.output_shape}")
