"""`atomctl t2m`: generate motions for one prompt and write videos, arrays and exports (atom.t2m)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click

from atom.cli.context import Ctx, handle_errors

SERVICES = ("generator", "renderer")


def register(cli: click.Group) -> None:
    cli.add_command(t2m)


@click.command()
@click.argument("text")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write the samples into (created)."
)
@click.option("--samples", default=4, show_default=True, type=int, help="Motions to generate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same text, seed and model: same motions.")
@click.option("--adapter", default="", help="A trained adapter's store prefix (e.g. from atomctl run-pipeline).")
@click.option("--base-model", default=None, help="Store prefix of a model bundle (default: the tiny base, pretrained on first use).")
@click.option(
    "--format",
    "formats",
    default="mp4",
    show_default=True,
    help="Comma-separated: mp4 (video), gif (looping animation), bvh (skeleton animation for Blender), "
    "npz (raw arrays), smpl (SMPL parameters, AMASS npz layout).",
)
@click.option("--size", default=256, show_default=True, type=int, help="Video width and height in pixels.")
@click.option(
    "--smpl-model",
    default="",
    envvar="ATOM_SMPL_MODEL",
    show_envvar=True,
    help="Optional SMPL model .npz (as the renderer uses): the smpl export is then solved against "
    "its rest pose and plays back exactly on it; without it, against a generic T-pose.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Pipeline config file (its model and generate sections apply).",
)
@click.pass_obj
@handle_errors
def t2m(
    obj: Ctx,
    text: str,
    out_dir: Path,
    samples: int,
    seed: int,
    adapter: str,
    base_model: str | None,
    formats: str,
    size: int,
    smpl_model: str,
    config_path: str | None,
) -> None:
    """Generate motions for TEXT and write, per sample, the video, the joints and HumanML3D
    features (.npy) and any export asked for. The generator and renderer start here unless
    --endpoint names running ones."""
    from atom.pipeline import bootstrap
    from atom.pipeline.config import load_config
    from atom.pipeline.runner import service_clients
    from atom.motion.smpl_export import model_rest_joints
    from atom.t2m import T2MRequest, text_to_motion

    request = T2MRequest(
        text=text,
        samples=samples,
        seed=seed,
        adapter=adapter.rstrip("/"),
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()),
        size=size,
        smpl_model=smpl_model,
    )
    smpl_rest = model_rest_joints(smpl_model) if "smpl" in request.formats and smpl_model else None
    cfg = load_config(config_path, overrides={"model.base": base_model})
    store = obj.store()
    store.ping()
    with ExitStack() as stack:
        # A trainer named with --endpoint pretrains a missing base model; otherwise one starts
        # here only if the model has to be made.
        names = SERVICES + (("trainer",) if obj.endpoint("trainer") else ())
        clients = service_clients(stack, obj, names=names)
        dataset = "" if cfg.model.base or cfg.model.checkpoint else bootstrap.ensure_dataset(store, cfg)
        base = bootstrap.ensure_base_model(store, cfg, dataset, trainer=clients.get("trainer"))
        summary = text_to_motion(store, clients["generator"], clients["renderer"], base, request, cfg.generate, out_dir, smpl_rest)
    for s in summary["samples"]:
        click.echo(
            f"sample {s['sample_index']} (seed {s['sample_seed']}): "
            + (", ".join(str(out_dir / f) for f in s["files"]) or s.get("note", ""))
        )
