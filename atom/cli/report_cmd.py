"""`atomctl report`: the run browser (atom.report) for a finished run, and a local server for it."""

from __future__ import annotations

import functools
import http.server
import signal
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

import click

from atom.cli.context import Ctx, handle_errors
from atom.report.site import site_location


def register(cli: click.Group) -> None:
    cli.add_command(report)


def build(obj: Ctx, run: str, options) -> str:
    """Collect the run, render the videos through the renderer (given, or started here) and write
    the site; returns the index key."""
    from atom.report.collect import collect
    from atom.report.site import build_site
    from atom.pipeline.runner import service_clients
    from atom.report.videos import webm_renderer

    store = obj.store()
    store.ping()
    view = collect(store, run)
    with ExitStack() as stack:
        renderer = service_clients(stack, obj, names=("renderer",))["renderer"]
        return build_site(store, view, webm_renderer(store, renderer, options.video_size), options)


def serve(obj: Ctx, run: str, port: int) -> None:
    from atom.report.site import site_prefix

    store = obj.store()
    prefix = site_prefix(run)
    if not store.exists(f"{prefix}/index.html"):
        raise click.ClickException(f"no site for run '{run}' yet; run `atomctl report --run {run}` first")
    with ExitStack() as stack:
        if "://" in obj.store_url and not obj.store_url.startswith("file://"):
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atom-site-")))
            store.get_tree(prefix, root)
        else:
            root = Path(obj.store_url.removeprefix("file://")) / prefix
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
            # The server runs in a thread and Ctrl-C or SIGTERM only sets a flag: a KeyboardInterrupt
            # raised inside serve_forever's loop left the process up now and then (seen in the suite).
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            worker = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
            worker.start()
            click.echo(f"serving run '{run}' at http://127.0.0.1:{server.server_address[1]}/index.html (Ctrl-C stops)")
            while not stop.wait(0.5):
                pass
            server.shutdown()


@click.command()
@click.option("--run", "run_name", default="default", show_default=True, help="Run to show.")
@click.option(
    "--cards-per-task",
    default=8,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Held-out prompts per task shown with videos (balanced over tuned better / same / worse).",
)
@click.option("--pair-videos", default=6, show_default=True, type=click.IntRange(0, 1000), help="Training pairs shown with videos.")
@click.option("--video-size", default=160, show_default=True, type=int, help="Video width and height in pixels.")
@click.option("--serve", "serve_site", is_flag=True, help="Serve the run's site on localhost (building it first if it is missing).")
@click.option("--port", default=8765, show_default=True, type=int, help="Port for --serve (0 = any free port).")
@click.pass_obj
@handle_errors
def report(obj: Ctx, run_name: str, cards_per_task: int, pair_videos: int, video_size: int, serve_site: bool, port: int) -> None:
    """Write the run browser for a finished run into the store (reports/<run>/site/): summary tables
    and plots, base vs tuned motions side by side per held-out prompt with filters, the training
    pairs and the training curves. Open its index.html from the store, or use --serve."""
    from atom.report.site import SiteOptions, site_prefix

    if not (serve_site and obj.store().exists(f"{site_prefix(run_name)}/index.html")):
        index = build(obj, run_name, SiteOptions(cards_per_task, pair_videos, video_size))
        click.echo(f"run browser: {site_location(obj.store_url, index)}")
    if serve_site:
        serve(obj, run_name, port)
