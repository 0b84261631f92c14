"""atomctl world build / world show / pretrain."""

from __future__ import annotations

import time
from pathlib import Path

import click

from atom.cli.context import Ctx, handle_errors


def register(cli: click.Group) -> None:
    cli.add_command(world)
    cli.add_command(pretrain_cmd)


@click.group()
def world() -> None:
    """The procedural motion world: the embedded stand-in for HumanML3D."""


@world.command("build")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory to write (HumanML3D layout plus labels/<id>.json).")
@click.option("--clips", type=click.IntRange(1), default=1000, show_default=True, help="Number of clips.")
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same bytes.")
@handle_errors
def world_build(out: Path, clips: int, seed: int) -> None:
    """Write a corpus of procedural clips in the HumanML3D layout (new_joints, new_joint_vecs,
    texts, Mean/Std, train/val/test) with structured event labels beside it."""
    from atom.motion.world.corpus import build_corpus

    t0 = time.perf_counter()
    summary = build_corpus(out, clips, seed)
    dt = time.perf_counter() - t0
    click.echo(f"wrote {clips} clips to {out} in {dt:.1f}s ({clips / dt * 60:.0f} clips/min)")
    click.echo(str(summary))


@world.command("show")
@click.option("--dataset", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="A HumanML3D-layout directory (default: compose a new clip).")
@click.option("--clip", "clip_id", help="Clip id in --dataset (default: the first test clip).")
@click.option("--events", help="Without --dataset: events to compose, e.g. 'walk_forward,squat,wave'.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("clip.gif"), show_default=True,
              help="A .gif (animation) or .png (strip of every 8th frame).")
@handle_errors
def world_show(dataset: Path | None, clip_id: str | None, events: str | None, seed: int, out: Path) -> None:
    """Write a quick image or GIF of a clip, to check that the world looks human."""
    import numpy as np

    from atom.motion.plot import save_skeleton_gif, save_skeleton_strip

    if dataset:
        from atom.motion.humanml3d import HumanML3D

        ds = HumanML3D(dataset)
        clip = ds.load_clip(clip_id or ds.split_ids("test")[0])
        joints = clip.joints
        if joints is None:  # a directory without new_joints/: recover joints from the features
            from atom.motion.features import features_to_joints

            joints = features_to_joints(clip.features)
        title = clip.captions[0].text if clip.captions else clip.clip_id
    else:
        from atom.motion.events import EventLabel, check_event
        from atom.motion.world.compose import compose

        names = [e.strip() for e in (events or "walk_forward,squat").split(",") if e.strip()]
        for n in names:
            check_event(n)
        clip = compose([EventLabel(n) for n in names], np.random.default_rng(seed))
        joints, title = clip.joints, " then ".join(names)
    if out.suffix.lower() == ".png":
        save_skeleton_strip(joints, out)
    else:
        save_skeleton_gif(joints, out, title=title)
    click.echo(f"wrote {out} ({len(joints)} frames): {title}")


@click.command("pretrain")
@click.option("--world-clips", type=int, default=None, help="Clips in the world corpus (default from config).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--minutes", type=float, default=None, help="Time budget for the base model's training.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Pipeline config file.")
@click.option("--quality/--no-quality", default=True, show_default=True,
              help="Measure and print the base model's quality figures afterwards.")
@click.pass_obj
@handle_errors
def pretrain_cmd(obj: Ctx, world_clips: int | None, seed: int, minutes: float | None, config_path: Path | None,
                 quality: bool) -> None:
    """Build the world (if needed), pretrain the tiny base model (VQ-VAE, then a small T5) and the
    embedded evaluator on it, and store them. `run-pipeline` does this on first use."""
    from atom.pipeline import bootstrap
    from atom.pipeline.config import load_config
    from atom.store import open_store

    cfg = load_config(config_path, {"world.clips": world_clips, "seed": seed, "model.pretrain_minutes": minutes})
    store = open_store(obj.store_url)
    store.ping()
    t0 = time.perf_counter()
    dataset = bootstrap.ensure_dataset(store, cfg)
    base = bootstrap.ensure_base_model(store, cfg, dataset)
    evaluator = bootstrap.ensure_evaluator(store, cfg, dataset)
    click.echo(f"base model: {base}\nevaluator: {evaluator}\ndataset: {dataset}\n({time.perf_counter() - t0:.0f}s)")
    if quality:
        from atom.mgpt.bundle import load_bundle
        from services.generator.quality import measure_quality

        report = measure_quality(load_bundle(store, base), bootstrap.local_dataset(store, dataset), seed=seed)
        click.echo(report.format())
