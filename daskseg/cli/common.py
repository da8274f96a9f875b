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
