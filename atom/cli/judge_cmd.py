"""atomctl judge: the judge stage, and what helps trust and pay for it: agree (two judges on the
same motions), estimate (the bill before paying it), calibrate (the judge against known answers)."""

from __future__ import annotations

from pathlib import Path

import click

from atom.cli.context import Ctx, handle_errors
from atom.settings import FORMS

MAX_CALIBRATION_CASES = 2000  # the judge service's limit per Calibrate call


def yes_option(fn):
    return click.option(
        "--yes",
        is_flag=True,
        help="Spend on the VLM judge without asking, whatever the estimate "
        "(else: asked above judge.confirm_above_usd on a terminal, stopped elsewhere).",
    )(fn)


def judge_group(stage_command, config_options, load) -> click.Group:
    """`atomctl judge [OPTIONS]` runs the judge stage (stage_command); the subcommands below.
    `config_options` and `load` are pipeline_cmd's (passed in: it imports this module)."""

    @click.pass_context
    def judge(ctx: click.Context, **kwargs) -> None:
        if ctx.invoked_subcommand is None:
            ctx.invoke(stage_command, **kwargs)

    judge.__doc__ = stage_command.__doc__ + (
        "\n\nSubcommands: `agree` compares two judges on the same motions, `estimate` prints what the "
        "stage would ask and cost, `calibrate` measures the judge against motions with known scores."
    )
    group = click.group("judge", invoke_without_command=True)(config_options(yes_option(judge)))
    group.add_command(judge_agree)

    @group.command("estimate")
    @config_options
    @click.pass_obj
    @handle_errors
    def estimate(obj: Ctx, **kwargs) -> None:
        """What the judge stage would ask and cost for this config, before anything is asked: the
        questions not yet in the judge's cache, their images and sizes, input and output tokens per
        question and in total, the cost on the synchronous path and the Batch API at the judge
        service's prices, and the token rules used. Needs the stages before it (run-pipeline up to
        render, or `atomctl render` with the same options)."""
        show_estimate(load(kwargs), obj)

    @group.command("calibrate")
    @config_options
    @calibrate_options
    @click.pass_obj
    @handle_errors
    def calibrate(obj: Ctx, n: int, forms: list[str], intervals: list[int], human: Path | None, **kwargs) -> None:
        """Measure the configured judge against motions whose scores are known: world clips made
        to perform each rubric level (or people's labels, --human), rendered through the renderer
        in every form x interval, scored through the judge service. Prints per task and setting the
        agreement with the truth (exact, within one, Cohen's kappa), the confusion matrix, the
        cost, and the agreement with the kinematic judge; keeps the table in the store
        (judge/calibration/<key>.json), where the run browser shows the latest."""
        run_calibration(load(kwargs), obj, n, forms, intervals, human, quiet=kwargs.get("quiet", False))

    return group


def show_estimate(cfg, obj: Ctx) -> None:
    from atom.pipeline.judge_tools import estimate_run

    est, done = estimate_run(cfg, obj)
    if est is None:
        click.echo("nothing to judge: the generate stage made no motions")
        return
    click.echo(est.text)
    if done:
        click.echo("  (this config's judge stage has finished already: running it again asks nothing)")


def _csv(value: str | None, what: str) -> list[str]:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    if value is not None and not items:
        raise click.BadParameter(f"give one or more {what}, comma-separated")
    return items


def _forms(ctx, param, value):
    forms = _csv(value, "forms")
    bad = [f for f in forms if f.replace("-", "_") not in FORMS]
    if bad:
        raise click.BadParameter(f"unknown form {bad[0]!r}; use {', '.join(FORMS)}")
    return [f.replace("-", "_") for f in forms]


def _intervals(ctx, param, value):
    out = []
    for v in _csv(value, "intervals"):
        if not v.isdigit() or int(v) < 1:
            raise click.BadParameter(f"{v!r} is not a whole number >= 1")
        out.append(int(v))
    return out


def calibrate_options(fn):
    for option in reversed(_CALIBRATE_OPTIONS):
        fn = option(fn)
    return fn


_CALIBRATE_OPTIONS = [
    click.option(
        "--n",
        "n",
        type=click.IntRange(1, MAX_CALIBRATION_CASES),
        default=60,
        show_default=True,
        help="World clips with known scores, shared out over the tasks (every rubric level of composed prompts). Ignored with --human.",
    ),
    click.option(
        "--forms",
        callback=_forms,
        metavar="FORM[,FORM]",
        help=f"VLM: injection forms to compare ({', '.join(FORMS)}); default the configured render.form.",
    ),
    click.option(
        "--intervals",
        callback=_intervals,
        metavar="K[,K]",
        help="VLM: sampling intervals to compare; default the configured render.interval.",
    ),
    click.option(
        "--human",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        help="Human-label JSONL (docs/judge.md): calibrate on these motions and scores instead of world clips.",
    ),
    yes_option,
]


def run_calibration(cfg, obj: Ctx, n: int, forms: list[str], intervals: list[int], human: Path | None, quiet: bool) -> None:
    from atom.pipeline.judge_tools import calibrate_judge

    if cfg.judge.backend == "kinematic" and (forms or intervals):
        raise click.UsageError("--forms and --intervals are for the VLM judge (--judge vlm); the kinematic judge reads joints")
    settings = [(f, k) for f in (forms or [cfg.render.form]) for k in (intervals or [cfg.render.interval])]
    result = calibrate_judge(cfg, obj, n, settings if cfg.judge.backend == "vlm" else [], human, show_progress=not quiet)
    click.echo(result.text)
    click.echo(f"cost ${result.cost_usd:.4f}; table saved in the store as {result.record.key}")


@click.command("agree")
@click.option("--run", "run_name", default="default", show_default=True, help="The run whose judged motions to use.")
@click.option(
    "--a",
    "judge_a",
    default="kinematic",
    show_default=True,
    help="First judge: kinematic, vlm, or human:FILE (CSV or JSONL of item_id,score).",
)
@click.option("--b", "judge_b", default="vlm", show_default=True, help="Second judge, same forms as --a.")
@click.option("--limit", type=int, default=0, help="Use only the first N motions (0 = all).")
@click.option("--judge-model", default="gpt-4o", show_default=True, help="Model for the vlm judge.")
@click.option(
    "--form",
    type=click.Choice(["frame_by_frame", "full_image", "trajectory_image"]),
    default="full_image",
    show_default=True,
    help="Injection form for the vlm judge.",
)
@click.option("--interval", type=int, default=8, show_default=True, help="Frame sampling interval for the vlm judge.")
@click.option("--budget", "budget_usd", type=float, default=5.0, show_default=True, help="Cap on new VLM spend.")
@click.pass_obj
@handle_errors
def judge_agree(
    obj: Ctx, run_name: str, judge_a: str, judge_b: str, limit: int, judge_model: str, form: str, interval: int, budget_usd: float
) -> None:
    """Score the same motions with two judges and print their agreement: exact-match rate,
    within-one rate, Spearman, Cohen's kappa and the confusion matrix. Item ids are
    '<prompt_id>:<motion key>', as in runs/<run>/judgements.jsonl."""
    from atom.cli.context import CommandError
    from atom.pipeline.agree import JudgeGaveNoScores, run_agreement

    # A judge call that fails (refused key, permission, quota) is a grpc.RpcError: handle_errors
    # makes it one line and a non-zero exit. A judge that scored nothing is reported the same way.
    try:
        report = run_agreement(
            obj, run_name, judge_a, judge_b, limit=limit, model=judge_model, form=form, interval=interval, budget_usd=budget_usd
        )
    except JudgeGaveNoScores as exc:
        raise CommandError(str(exc)) from None
    click.echo(report)
