"""atomctl serve / services up / status."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import click

from atom.cli.context import EXIT_UNAVAILABLE, CommandError, Ctx, default_endpoints, handle_errors
from atom.runtime.ports import SERVICES


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(services)
    cli.add_command(status)


@click.command()
@click.argument("name", type=click.Choice(SERVICES))
@click.option("--host", envvar="ATOM_HOST", default=None, help="Interface to bind (default 0.0.0.0, or ATOM_HOST).")
@click.option("--port", envvar="ATOM_PORT", type=int, default=None, help="gRPC port (default: the service's own).")
@click.option(
    "--metrics-port",
    "service_metrics_port",
    envvar="ATOM_METRICS_PORT",
    type=int,
    default=None,
    help="Prometheus /metrics port (default: the service's own).",
)
@click.option(
    "--device",
    envvar="ATOM_DEVICE",
    default=None,
    help="generator, trainer, evaluator: auto (CUDA when available), cpu, cuda or cuda:N (or ATOM_DEVICE).",
)
@click.option(
    "--dtype",
    envvar="ATOM_DTYPE",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default=None,
    help="generator and trainer: the language model's number format (default fp32; or ATOM_DTYPE).",
)
@click.pass_obj
@handle_errors
def serve(
    obj: Ctx, name: str, host: str | None, port: int | None, service_metrics_port: int | None, device: str | None, dtype: str | None
) -> None:
    """Run one service in the foreground (what a container runs). SIGTERM drains calls in flight."""
    import os

    from atom.runtime.cpus import set_thread_env
    from atom.runtime.device import DEVICE_ENV, DTYPE_ENV, resolve_compute
    from atom.runtime.registry import build_spec

    if name in ("generator", "trainer", "evaluator"):
        set_thread_env()  # before torch loads: its thread pool sized to the CPUs we may use
        compute = resolve_compute(device, dtype)  # fails here, before the port opens, if not available
        os.environ[DEVICE_ENV], os.environ[DTYPE_ENV] = compute.device, compute.dtype
    from atom.runtime.server import ServeConfig, run_service
    from atom.runtime.telemetry import setup_logging

    setup_logging(name, obj.log_level)
    cfg = ServeConfig.from_env(
        name, host=host, port=port, metrics_port=service_metrics_port, store_url=obj.store_url, log_level=obj.log_level
    )
    run_service(build_spec(name, obj.store_url), cfg)


@click.group()
def services() -> None:
    """Manage local service processes."""


@services.command("up")
@click.option("--only", multiple=True, type=click.Choice(SERVICES), help="Start only these services (repeatable).")
@click.option(
    "--log-dir", type=click.Path(path_type=Path), default=Path(".atom/logs"), show_default=True, help="Where each service writes its log."
)
@click.pass_obj
@handle_errors
def services_up(obj: Ctx, only: tuple[str, ...], log_dir: Path) -> None:
    """Start the services on loopback at their default ports and stay up until interrupted.

    Each service is a real `atomctl serve NAME` process, the same code path as in a container.
    """
    from atom.runtime.launch import LocalServices

    names = only or SERVICES
    group = LocalServices(obj.store_url, names, default_ports=True, log_dir=log_dir, log_level=obj.log_level)
    try:
        group.wait_ready()
        for name, svcs in group.services.items():
            for s in svcs:
                click.echo(f"{name:<10} grpc 127.0.0.1:{s.port}  metrics http://127.0.0.1:{s.metrics_port}/metrics")
        click.echo(f"store {obj.store_url}; logs in {log_dir}; Ctrl-C to stop")
        # Ctrl-C and SIGTERM only set a flag. A KeyboardInterrupt raised at an arbitrary point
        # could land inside Popen.poll() between taking and releasing its wait lock, and the
        # p.wait() in group.stop() below then blocked forever (seen once in the test suite).
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            for svcs in group.services.values():
                for s in svcs:
                    if s.proc.poll() is not None:
                        raise CommandError(group.died_message(s), EXIT_UNAVAILABLE)
    finally:
        click.echo("stopping services ...")
        group.stop()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--timeout", default=2.0, show_default=True, help="Seconds to wait for each endpoint.")
@click.pass_obj
@handle_errors
def status(obj: Ctx, as_json: bool, timeout: float) -> None:
    """Health and version of each service endpoint (given with --endpoint, or the defaults of
    `atomctl services up`). Exits 3 when any endpoint is not serving."""
    from atom.runtime.client import connect

    endpoints = {**default_endpoints(), **obj.endpoints}
    rows = []
    for name in SERVICES:
        client = connect(name, endpoints[name], attempts=1)
        try:
            readiness = client.health(timeout=timeout, service=client.full_name)
            for addr, health in client.health(timeout=timeout).items():
                version = store = ""
                details: dict = {}
                if health == "SERVING" and readiness.get(addr) != "SERVING":
                    health = "NOT_READY"  # alive, but cannot take work (the reason is in details)
                if health in ("SERVING", "NOT_READY"):
                    try:
                        info = client.info(addr, timeout=timeout)
                        version, store, details = info.version, info.store_url, dict(info.details)
                    except Exception:  # noqa: BLE001 - status must report, not crash
                        version = "?"
                rows.append(
                    {
                        "service": name,
                        "address": addr,
                        "health": health,
                        "version": version,
                        "store": store,
                        "device": details.get("device", ""),
                        "details": details,
                    }
                )
        finally:
            client.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            click.echo(f"{r['service']:<10} {r['address']:<22} {r['health']:<12} {r['version']:<8} {r['device'] or '-':<8} {r['store']}")
            if r["details"].get("not_ready"):
                click.echo(f"{'':<10} not ready: {r['details']['not_ready']}")
    if any(r["health"] != "SERVING" for r in rows):
        raise SystemExit(EXIT_UNAVAILABLE)
