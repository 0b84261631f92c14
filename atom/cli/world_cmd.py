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
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory to write (HumanML3D layout plus labels/<id>.json).",
)
@click.option("--clips", type=click.IntRange(1), default=1000, show_default=True, help="Number of clips.")
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same bytes.")
@handle_errors
def world_build(out: Path, clips: int, seed: int) -> None:
    """Write a corpus of procedural clips in the HumanML3D layout (new_joints, new_joint_vecs,
    texts, Mean/Std, train/val/test) with structured event labels beside it."""
    from atom.motion.world.corpus import build_corpus
    from atom.runtime.cpus import available_cpus

    t0 = time.perf_counter()
    summary = build_corpus(out, clips, seed, workers=min(4, available_cpus()))
    dt = time.perf_counter() - t0
    click.echo(f"wrote {clips} clips to {out} in {dt:.1f}s ({clips / dt * 60:.0f} clips/min)")
    click.echo(str(summary))


@world.command("show")
@click.option(
    "--dataset",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="A HumanML3D-layout directory (default: compose a new clip).",
)
@click.option("--clip", "clip_id", help="Clip id in --dataset (default: the first test clip).")
@click.option("--events", help="Without --dataset: events to compose, e.g. 'walk_forward,squat,wave'.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("clip.gif"),
    show_default=True,
    help="A .gif (animation) or .png (strip of every 8th frame).",
)
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
        composed = compose([EventLabel(n) for n in names], np.random.default_rng(seed))
        joints, title = composed.joints, " then ".join(names)
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
@click.option(
    "--quality/--no-quality",
    default=True,
    show_default=True,
    help="Measure and print the base model's quality figures afterwards (through the generator).",
)
@click.pass_obj
@handle_errors
def pretrain_cmd(obj: Ctx, world_clips: int | None, seed: int, minutes: float | None, config_path: Path | None, quality: bool) -> None:
    """Build the world (if needed), have the trainer service pretrain the tiny base model (VQ-VAE,
    then a small T5) and train the embedded evaluator on it, and store them. `run-pipeline` does
    this on first use. The trainer (and, for --quality, the generator) start here unless
    --endpoint names running ones."""
    from contextlib import ExitStack

    from atom.pipeline import bootstrap
    from atom.pipeline.config import load_config
    from atom.pipeline.runner import service_clients
    from atom.store import open_store

    cfg = load_config(config_path, {"world.clips": world_clips, "seed": seed, "model.pretrain_minutes": minutes})
    store = open_store(obj.store_url)
    store.ping()
    t0 = time.perf_counter()
    with ExitStack() as stack:
        dataset = bootstrap.ensure_dataset(store, cfg)
        clients = service_clients(stack, obj, names=["trainer", "generator"] if quality else ["trainer"])
        if bootstrap.will_pretrain(store, cfg):  # the trainer runs the two one-thread jobs side by side
            bootstrap.start_evaluator(store, cfg, dataset, clients["trainer"])
        base = bootstrap.ensure_base_model(store, cfg, dataset, trainer=clients["trainer"])
        evaluator = bootstrap.ensure_evaluator(store, cfg, dataset, trainer=clients["trainer"])
        click.echo(f"base model: {base}\nevaluator: {evaluator}\ndataset: {dataset}\n({time.perf_counter() - t0:.0f}s)")
        if quality:
            click.echo(model_figures(store, base))
            click.echo(base_model_quality(store, clients["generator"], base, seed).format())


def model_figures(store, base: str) -> str:
    """What pretraining measured, as the bundle records it (bundle.json, read as data: the
    controller loads no model)."""
    metrics = (store.get_json(f"{base}/bundle.json").get("info") or {}).get("metrics") or {}
    if not metrics:
        return "the bundle records no training figures"
    return (
        "held-out VQ reconstruction (smooth L1, normalised features) {vq_recon_loss:.4f}, perplexity "
        "{vq_perplexity:.1f}, {codes_used} codes used; language model loss {lm_train_loss:.3f} (train), "
        "{lm_eval_loss:.3f} (held out)"
    ).format_map(metrics)


def base_model_quality(store, generator, base: str, seed: int, prompts_per_task: int = 40, samples_per_prompt: int = 2):
    """Event fidelity of the base model (atom.motion.quality), sampled by the generator service:
    the same RPC the pipeline's generate stage calls, so the controller needs no model code."""
    from atom.motion.quality import event_fidelity
    from atom.motion.record import MotionRecord
    from atom.v1 import common_pb2, generator_pb2

    def sample(captions, samples, sample_seed):
        prompts = [common_pb2.Prompt(prompt_id=f"q{i}", text=c, task="quality") for i, c in enumerate(captions)]
        req = generator_pb2.GenerateRequest(
            prompts=prompts, samples_per_prompt=samples, model=common_pb2.ModelRef(base=base), seed=sample_seed
        )
        out: list[list] = [[None] * samples for _ in captions]
        for m in generator.stream("Generate", req, timeout=3600):
            if m.num_frames >= 2:
                out[int(m.prompt_id[1:])][m.sample_index] = MotionRecord.from_bytes(store.get_bytes(m.motion.key), m.motion.key).joints
        return out

    return event_fidelity(sample, prompts_per_task, samples_per_prompt, seed)
