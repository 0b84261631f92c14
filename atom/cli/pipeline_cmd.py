"""atomctl run-pipeline and one command per stage."""

from __future__ import annotations

from pathlib import Path

import click

from atom.cli.context import Ctx, handle_errors
from atom.cli.judge_cmd import judge_group, yes_option
from atom.pipeline.graph import STAGES
from atom.settings import ALGORITHMS, DTYPES, FORMS, JUDGES, JudgeSettings, ModelSettings, TrainSettings

# Help texts name the defaults from the settings classes, the one place they are written.
_TRAIN, _JUDGE, _MODEL = TrainSettings(), JudgeSettings(), ModelSettings()


def config_options(fn):
    """The flags every pipeline command shares; each overrides the config file."""
    opts = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            help="YAML or TOML config file (see configs/default.yaml); flags override it.",
        ),
        click.option("--run", "run", help="Run name: runs/<run>/manifest.json and reports/<run>/ (default 'default')."),
        click.option("--seed", type=int, help="Seed for prompts, sampling, pairs and training (default 0)."),
        click.option("--tasks", help="Sub-tasks, comma-separated: integrity,temporal,frequency."),
        click.option("--prompts-per-task", type=int, help="Training prompts per sub-task."),
        click.option("--eval-prompts-per-task", type=int, help="Held-out prompts per sub-task."),
        click.option("--samples-per-prompt", type=int, help="Motions generated per training prompt (paper: 6-10)."),
        click.option("--form", type=click.Choice(FORMS), help="How frames are shown to a VLM judge (paper's best: frame_by_frame)."),
        click.option("--interval", type=int, help="Render every k-th frame (paper: 8)."),
        click.option(
            "--judge",
            "judge_backend",
            type=click.Choice(JUDGES),
            help="kinematic (offline) or vlm (OpenAI-compatible endpoint: ATOM_JUDGE_BASE_URL, "
            f"ATOM_JUDGE_API_KEY or ATOM_JUDGE_API_KEY_FILE); default {_JUDGE.backend}.",
        ),
        click.option("--judge-model", help="VLM model name, e.g. gpt-4o."),
        click.option("--budget", "budget_usd", type=float, help="Hard cap on new judge spend in USD."),
        click.option("--theta", type=float, help="Pair when score_i - score_j > theta (Algorithm 1)."),
        click.option("--algorithm", type=click.Choice(ALGORITHMS), help=f"Preference loss (default {_TRAIN.algorithm}; the paper: ipo)."),
        click.option("--epochs", type=int, help="Training epochs (paper: 20)."),
        click.option("--max-steps", type=int, help="Stop training after this many steps (0 = no limit)."),
        click.option("--lr", "learning_rate", type=float, help="Learning rate (paper: 1e-3)."),
        click.option("--base-model", help="Store prefix of a model bundle to start from (default: tiny base)."),
        click.option(
            "--checkpoint",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="A released MotionGPT checkpoint (motiongpt_s3_h3d.tar), imported into the store once.",
        ),
        click.option(
            "--t5-dir",
            type=click.Path(path_type=Path, exists=True, file_okay=False),
            help="Local flan-t5-base directory (config + tokenizer) for --checkpoint "
            "(default: deps/flan-t5-base next to it, MotionGPT's layout).",
        ),
        click.option(
            "--mean-std",
            type=click.Path(path_type=Path, exists=True, file_okay=False),
            help="MotionGPT's meta/ folder with mean.npy and std.npy (or its deps/ folder) for --checkpoint "
            "(default: found next to it). Not HumanML3D's Mean.npy/Std.npy.",
        ),
        click.option("--device", help="Device for generator, trainer and evaluator started here: auto (default), cpu, cuda or cuda:N."),
        click.option(
            "--dtype",
            type=click.Choice(DTYPES),
            help=f"The language model's number format on generator and trainer (default {_MODEL.dtype}).",
        ),
        click.option(
            "--decoding",
            type=click.Choice(["constrained", "motiongpt"]),
            help="How motions are sampled (default: the model's own; motiongpt for --checkpoint).",
        ),
        click.option(
            "--evaluator", help="embedded (default) or guo:DIR (Guo et al.'s finest.tar, glove/, meta/; or MotionGPT's deps/ folder)."
        ),
        click.option(
            "--protocol",
            type=click.Choice(["motiongpt", "guo"]),
            help="Evaluation protocol (default: motiongpt with the Guo evaluator, else guo).",
        ),
        click.option(
            "--dataset",
            type=click.Path(path_type=Path, exists=True, file_okay=False),
            help="A HumanML3D directory to use instead of the procedural world.",
        ),
        click.option("--world-clips", type=int, help="Clips in the procedural world corpus."),
        click.option("--replications", type=int, help="Evaluation replications (paper: 20)."),
        click.option(
            "--set",
            "set_values",
            multiple=True,
            metavar="SECTION.KEY=VALUE",
            help="Set any config key, e.g. --set train.beta=0.1 (repeatable; wins over the file and flags).",
        ),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


_FLAG_TO_KEY = {
    "run": "run",
    "seed": "seed",
    "tasks": "prompts.tasks",
    "prompts_per_task": "prompts.per_task",
    "eval_prompts_per_task": "prompts.eval_per_task",
    "samples_per_prompt": "generate.samples_per_prompt",
    "form": "render.form",
    "interval": "render.interval",
    "judge_backend": "judge.backend",
    "judge_model": "judge.model",
    "budget_usd": "judge.budget_usd",
    "theta": "pairs.theta",
    "algorithm": "train.algorithm",
    "epochs": "train.epochs",
    "max_steps": "train.max_steps",
    "learning_rate": "train.learning_rate",
    "base_model": "model.base",
    "checkpoint": "model.checkpoint",
    "t5_dir": "model.t5_dir",
    "mean_std": "model.mean_std",
    "device": "model.device",
    "dtype": "model.dtype",
    "decoding": "generate.decoding",
    "evaluator": "eval.evaluator",
    "protocol": "eval.protocol",
    "dataset": "world.dataset",
    "world_clips": "world.clips",
    "replications": "eval.replications",
}


def parse_set(values) -> dict:
    """--set SECTION.KEY=VALUE pairs -> {"section.key": "value"}; the config loader types them as
    YAML would (3, 0.5, true, [q, v])."""
    from atom.pipeline.config import ConfigError

    out = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. --set train.beta=0.1")
        out[key.strip()] = value.strip()
    return out


def _load(kwargs: dict, with_sources: bool = False):
    from atom.pipeline.config import load_config_with_sources

    overrides = {
        key: (str(kwargs[flag]) if isinstance(kwargs[flag], Path) else kwargs[flag])
        for flag, key in _FLAG_TO_KEY.items()
        if kwargs.get(flag) is not None
    }
    sets = parse_set(kwargs.get("set_values"))
    if kwargs.get("yes"):
        sets["judge.confirm_above_usd"] = None  # --yes: never ask (it wins over the file and --set)
    cfg, sources = load_config_with_sources(kwargs.get("config_path"), overrides, sets)
    return (cfg, sources) if with_sources else cfg


def register(cli: click.Group) -> None:
    @cli.command("run-pipeline")
    @config_options
    @click.pass_obj
    @handle_errors
    @click.option("--dry-run", is_flag=True, help="Print which stages would run and why; run nothing.")
    @yes_option
    def run_pipeline(obj: Ctx, dry_run: bool, **kwargs) -> None:
        """Run all seven stages: prompts, generate, render, judge, pairs, train, evaluate.

        With no options: the embedded run (procedural world, tiny base model pretrained on first
        use, kinematic judge, services on loopback). Each stage's output is kept under a key made
        of the settings it depends on and the content of its inputs: a stage whose output exists
        is reused, so after an interruption the same command continues where it stopped, and a
        changed setting reruns exactly the stages it reaches.
        """
        from atom.pipeline.runner import dry_run as plan_text
        from atom.pipeline.runner import print_summary, run

        cfg = _load(kwargs)
        if dry_run:
            click.echo(plan_text(cfg, obj))
            return
        ctx = run(cfg, obj, show_progress=not kwargs.get("quiet"))
        print_summary(ctx)

    for stage in STAGES:
        _register_stage(cli, stage)

    @cli.group("config")
    def config_group() -> None:
        """The pipeline's configuration."""

    @config_group.command("show")
    @config_options
    @click.pass_obj
    @handle_errors
    def config_show(obj: Ctx, **kwargs) -> None:
        """Print the effective config (defaults, then --config, then flags, then --set), each value
        with where it came from and what it means. Wrong values fail here, as in every command."""
        from atom.pipeline.config import show

        click.echo(show(*_load(kwargs, with_sources=True)), nl=False)


def _register_stage(cli: click.Group, stage: str) -> None:
    docs = {
        "prompts": "Stage 1: compose event-level prompts per sub-task (training and held-out).",
        "generate": "Stage 2: generate motions for the training prompts.",
        "render": "Stage 3: render motions headless, every k-th frame, in the chosen injection form.",
        "judge": "Stage 4: score each motion against its prompt (kinematic or VLM judge).",
        "pairs": "Stage 5: build the MotionPrefer dataset and Algorithm 1 preference pairs.",
        "train": f"Stage 6: LoRA preference fine-tuning as a trainer job ({_TRAIN.algorithm.upper()} by default; "
        "the paper's IPO with --algorithm ipo --set train.beta=0.1 --set train.logprobs=mean).",
        "evaluate": "Stage 7: compare base and tuned models on held-out prompts and HumanML3D metrics.",
    }

    @click.pass_obj
    @handle_errors
    def command(obj: Ctx, **kwargs) -> None:
        from atom.pipeline.runner import print_summary, run

        ctx = run(_load(kwargs), obj, only=stage, show_progress=not kwargs.get("quiet"))
        print_summary(ctx)

    command.__doc__ = docs[stage] + (
        "\n\nReads the outputs the earlier stages made for the same settings; "
        "when they are missing it says which stage to run, before starting anything."
    )
    if stage == "judge":
        # `atomctl judge` runs the stage; its subcommands (agree, estimate, calibrate) are in judge_cmd.
        cli.add_command(judge_group(command, config_options, _load))
    else:
        cli.command(stage)(config_options(command))
