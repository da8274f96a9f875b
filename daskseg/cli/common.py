"""Options and helpers shared by the commands that run on a Dask cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

scheduler_option = click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Dask scheduler to run on (e.g. tcp://10.0.0.1:8786). Default: $DASK_SCHEDULER_ADDRESS, else a LocalCluster.",
)
workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Workers of the LocalCluster started when no scheduler is given (at least 1).",
)


@contextlib.contextmanager
def cluster_client(scheduler: str | None, workers: int | None) -> Iterator:
    """Connect to (or start) the cluster, print the dashboard link, and close what we started."""
    from ..cluster import client_session, dashboard_link

    with client_session(scheduler_address=scheduler, n_workers=workers) as client:
        link = dashboard_link(client)
        click.echo(f"Dask dashboard: {link}" if link else f"Dask scheduler: {client.scheduler.address}", err=True)
        yield client


def shape_option_value(value: str | None, what: str) -> tuple[int, ...] | None:
    """``'92,110,110'`` (or ``92x110x110``) as a tuple of ints; a one-line error otherwise."""
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(",") if v.strip())
    except ValueError:
        shape = ()
    if not shape:
        raise click.BadParameter(f"{what} must be integers separated by commas, e.g. 92,110,110; got {value!r}")
    return shape


def parse_max_in_flight(ctx, param, value: str | None) -> int | str | None:
    """Click callback: a whole number of at least 1, or Nx (N > 0 times the worker threads)."""
    if value is None:
        return None
    text = value.strip().lower()
    try:
        number = float(text[:-1]) if text.endswith("x") else int(text)
    except ValueError:
        number = 0
    if not number > 0 or number == float("inf"):
        raise click.BadParameter(f"a positive number of tasks: a whole number of at least 1, or Nx (N times the "
                                 f"worker threads, e.g. 2x); got {value!r}")
    return text if text.endswith("x") else int(number)


def parse_block_timeout(ctx, param, value: str) -> str | float | None:
    """Click callback: 'config' (the setting), 0/none (no limit), or a duration such as 90, '30 minutes', '1h'."""
    if value in (None, "config"):
        return "config"
    if value.strip().lower() in ("0", "none"):
        return None
    from dask.utils import parse_timedelta

    try:
        seconds = parse_timedelta(value, default="seconds")
    except (ValueError, KeyError, TypeError):
        seconds = -1
    if seconds is None or seconds < 0:
        raise click.BadParameter(f"a duration such as 90 (seconds), '30 minutes' or 1h, or 0 for none; got {value!r}")
    return float(seconds)


def runner_options(function):
    """``--max-in-flight``, ``--retries``, ``--block-timeout`` and ``--progress``, as ``Runner`` takes them."""
    for option in reversed([
        click.option("--max-in-flight", default=None, callback=parse_max_in_flight,
                     help="Tasks on the cluster at once: a number, or Nx worker threads (default 2x)."),
        click.option("--retries", type=click.IntRange(min=0), default=None,
                     help="Extra tries of a failed block (default 2)."),
        click.option("--block-timeout", default="config", callback=parse_block_timeout,
                     help="Time limit of one try of a block, e.g. '30 minutes' (0: none; default 30 minutes)."),
        click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal)."),
    ]):
        function = option(function)
    return function
