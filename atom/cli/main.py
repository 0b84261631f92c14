"""atomctl: the controller of the atom pipeline.

Exit codes: 0 ok, 1 failed, 2 usage error, 3 service or store unavailable, 4 artifact not found,
5 bad input rejected, 6 judge budget exhausted.
"""

from __future__ import annotations

import os

import click

from atom import __version__
from atom.cli.context import Ctx, parse_endpoints
from atom.store.open import DEFAULT_STORE


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 unavailable, 4 not found, 5 bad input, 6 budget.",
)
@click.version_option(__version__, prog_name="atomctl")
@click.option(
    "--store",
    "store_url",
    envvar="ATOM_STORE_URL",
    default=DEFAULT_STORE,
    show_default=True,
    help="Artifact store: a directory, file://DIR, http(s)://HOST:PORT/BUCKET[/PREFIX] (S3/MinIO; "
    "credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or s3://BUCKET with ATOM_S3_ENDPOINT.",
)
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="SERVICE=HOST:PORT[,HOST:PORT]",
    help="Use running services instead of starting them embedded. Repeat per service; several "
    "addresses are balanced round-robin. Also from ATOM_ENDPOINTS='generator=h:p;judge=h:p'.",
)
@click.option(
    "--log-level",
    envvar="ATOM_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level of atomctl and embedded services.",
)
@click.option(
    "--metrics-port",
    envvar="ATOM_CONTROLLER_METRICS_PORT",
    default=0,
    type=int,
    show_default=True,
    help="Serve the controller's Prometheus metrics on this port while a command runs (0 = off).",
)
@click.pass_context
def cli(ctx: click.Context, store_url: str, endpoints: tuple[str, ...], log_level: str, metrics_port: int) -> None:
    """Align a text-to-motion model with event-level judge feedback (AToM), as gRPC services.

    Start with `atomctl run-pipeline`: it runs every stage embedded on this machine, with no
    downloads, no GPU and no API key.
    """
    if "://" not in store_url:  # a local directory: absolute, so service processes agree on it
        store_url = os.path.abspath(store_url)
    ctx.obj = Ctx(store_url=store_url, endpoints=parse_endpoints(endpoints), log_level=log_level, metrics_port=metrics_port)


def _register() -> None:
    from atom.cli import pipeline_cmd, report_cmd, services_cmd, t2m_cmd, world_cmd

    for module in (services_cmd, world_cmd, pipeline_cmd, report_cmd, t2m_cmd):
        module.register(cli)


_register()
