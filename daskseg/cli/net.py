"""``daskseg net``: write network configs (the tutorial's ``mknet.py`` step) and check shapes."""

from __future__ import annotations

import json

import click


def _triple(ctx, param, value: str | None) -> tuple[int, ...] | None:
    """z,y,x: three whole numbers of at least 1."""
    if value is None:
        return None
    parts = _parse_triple(value)
    if parts is None:
        raise click.BadParameter(f"expected z,y,x (three whole numbers of at least 1, e.g. 84,268,268), got {value!r}")
    return parts


def _parse_triple(value: str) -> tuple[int, ...] | None:
    try:
        parts = tuple(int(v) for v in value.split(","))
    except ValueError:
        return None
    return parts if len(parts) == 3 and min(parts) >= 1 else None


def _factors(ctx, param, value: str | None) -> tuple[tuple[int, ...], ...] | None:
    """z,y,x;z,y,x;...: one triple of whole numbers of at least 1 per level."""
    if value is None:
        return None
    factors = tuple(_parse_triple(level) for level in value.split(";"))
    if not factors or any(f is None for f in factors):
        raise click.BadParameter(f"expected z,y,x;z,y,x;... (whole numbers of at least 1 per level, e.g. "
                                 f"1,3,3;1,3,3), got {value!r}")
    return factors  # type: ignore[return-value]


def _offsets(ctx, param, value: str | None) -> list[list[int]] | None:
    """A JSON list of z,y,x offsets."""
    if value is None:
        return None
    try:
        offsets = json.loads(value)
    except json.JSONDecodeError:
        offsets = None
    if not (isinstance(offsets, list) and offsets and all(
            isinstance(o, list) and len(o) == 3 and all(isinstance(v, int) for v in o) and any(o) for o in offsets)):
        raise click.BadParameter(f"a JSON list of z,y,x offsets, not all 0, e.g. [[-1,0,0],[0,-1,0],[0,0,-1],"
                                 f"[0,-9,0]]; got {value!r}")
    return offsets


@click.group()
def net() -> None:
    """Network configs: `daskseg net create DIR`."""


@net.command()
@click.argument("output_dir", type=click.Path(file_okay=False), default=".")
@click.option("--train-input", default=None, callback=_triple, help="Training input shape z,y,x in voxels (default 84,268,268).")
@click.option("--predict-input", default=None, callback=_triple, help="Prediction input shape z,y,x (default 120,322,322).")
@click.option("--num-fmaps", type=click.IntRange(min=1), default=None, help="Feature maps of the top level (default 6).")
@click.option("--fmap-inc-factor", type=click.IntRange(min=1), default=None, help="Feature map growth per level (default 4).")
@click.option("--downsample", default=None, callback=_factors,
              help="Downsample factors per level as z,y,x;z,y,x;... (default 1,3,3;1,3,3;1,3,3).")
@click.option("--neighborhood", "neighborhood_name", type=click.Choice(["nearest", "long-range"]), default=None,
              help="Affinity neighbourhood of the head: nearest (3 channels, default) or long-range (8: "
              "[[-1,0,0],[0,-1,0],[0,0,-1],[-2,0,0],[0,-3,0],[0,0,-3],[0,-9,0],[0,0,-9]]).")
@click.option("--affinity-neighborhood", default=None, callback=_offsets,
              help="Affinity offsets as JSON, one output channel each, e.g. [[-1,0,0],[0,-1,0],[0,0,-1],[0,-9,0]].")
@click.option("--lsds", is_flag=True, default=False,
              help="Multitask network (MtLSD): a second head learning local shape descriptors next to the affinities.")
@click.option("--lsd-sigma", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The descriptors' Gaussian sigma in nm (default 80); needs --lsds.")
@click.option("--lsd-downsample", type=click.IntRange(min=1), default=None,
              help="Compute the training descriptors on every n-th voxel (default 1: all; 2 is faster and "
              "coarser); needs --lsds.")
def create(output_dir, train_input, predict_input, num_fmaps, fmap_inc_factor, downsample, neighborhood_name,
           affinity_neighborhood, lsds, lsd_sigma, lsd_downsample) -> None:
    """Write train_net_config.json and the larger test_net_config.json (input/output shapes,
    architecture, optimizer, tensor names) — the gunpowder CREMI example's U-Net by default.

    The affinity neighbourhood (--neighborhood / --affinity-neighborhood) sets the head's channels
    and is recorded in the configs: training computes those affinities, `daskseg predict` records
    them on its output and `daskseg segment` reads them from there.

    --lsds adds a head for local shape descriptors (Sheridan et al. 2022): training adds
    AddLocalShapeDescriptor's targets and sums both losses; `daskseg predict` writes the affinities.

    Example: `daskseg net create nets/ --train-input 36,124,124 --num-fmaps 4 --neighborhood long-range`
    """
    from ..models.config import create_networks

    kwargs = {}
    if train_input:
        kwargs["train_input_shape"] = train_input
    if predict_input:
        kwargs["predict_input_shape"] = predict_input
    if num_fmaps is not None:
        kwargs["num_fmaps"] = num_fmaps
    if fmap_inc_factor is not None:
        kwargs["fmap_inc_factor"] = fmap_inc_factor
    if downsample:
        kwargs["downsample_factors"] = downsample
    if neighborhood_name and affinity_neighborhood:
        raise click.BadParameter("give one of --neighborhood and --affinity-neighborhood", param_hint="--neighborhood")
    if neighborhood_name or affinity_neighborhood:
        kwargs["affinity_neighborhood"] = neighborhood_name or affinity_neighborhood
    if (lsd_sigma is not None or lsd_downsample is not None) and not lsds:
        raise click.BadParameter("--lsd-sigma and --lsd-downsample need --lsds", param_hint="--lsds")
    if lsds:
        settings: dict = {}
        if lsd_sigma is not None:
            settings["sigma"] = lsd_sigma
        if lsd_downsample is not None:
            settings["downsample"] = lsd_downsample
        kwargs["lsds"] = settings
    train_cfg, predict_cfg = create_networks(output_dir, **kwargs)
    for cfg in (train_cfg, predict_cfg):
        lsd_note = f", {cfg.architecture.lsd_channels} LSD channels (sigma {cfg.lsds.sigma:g} nm)" if cfg.lsds else ""
        click.echo(f"{output_dir}/{cfg.name}_config.json: input {cfg.input_shape} -> output {cfg.output_shape}, "
                   f"{len(cfg.neighborhood)} affinity channels{lsd_note}")
