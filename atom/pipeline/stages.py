"""The seven stages of AToM, each through a service's gRPC API. Every stage reads its inputs from
the store and writes its outputs under its content key (stages/<stage>/<key>/, see
atom.pipeline.graph); the run manifest points at them."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from contextlib import contextmanager
from dataclasses import replace
from itertools import islice
from typing import Callable, Iterable, Iterator, Mapping

import click

from atom import evalplan
from atom.pipeline import bootstrap
from atom.cli.context import EXIT_BUDGET, CommandError
from atom.pipeline.context import RunContext, from_dict, to_dict
from atom.pipeline.graph import OUTPUTS_FILE, stage_key, stage_prefix
from atom.pipeline.outputs import (
    EvaluateOutputs,
    GenerateOutputs,
    JudgeOutputs,
    PairsOutputs,
    PromptsOutputs,
    RenderOutputs,
    StageOutputs,
    TrainOutputs,
    need,
)
from atom.store import ArtifactNotFound
from atom.pipeline.fanout import FanOut
from atom.settings import GenerateSettings
from atom.v1 import common_pb2, evaluator_pb2, generator_pb2, judge_pb2, renderer_pb2, trainer_pb2

log = logging.getLogger("atom.pipeline")

# A stage's inputs: the outputs of the stages it reads, by stage name (atom.pipeline.graph).
Up = Mapping[str, StageOutputs]

# Seed offsets: each stream of random draws in a run has its own seed, cfg.seed + offset (the
# training prompts and the training motions use cfg.seed itself). The generator derives a
# sample's seed from (request seed, prompt text, sample index) and caches samples by it, so two
# streams asking for the same text with the same request seed would get the very same motions
# (a test caption can repeat a training or held-out prompt's text; evaluation would then score
# the very motions the pairs were built from). The values are arbitrary but part of every
# result: changing one changes the motions (and reruns the stages) of every run.
# Held-out prompts (ComposePrompts): another draw than the training prompts'. Large and prime,
# so that it is not the training draw of a nearby run seed.
HELD_OUT_PROMPTS_SEED_OFFSET = 1_000_003
# Evaluation motions for the held-out prompts: the same seed for base and tuned, so their
# differences come from the weights, not the dice.
EVAL_PROMPTS_SEED_OFFSET = 7
# Evaluation motions for the test captions (HumanML3D-style metrics, guo protocol), which may
# repeat a held-out prompt's text ...
EVAL_GENERAL_SEED_OFFSET = 11
# ... and for the MultiModality captions, test captions too: today they are other captions than
# the general ones, and a stream of their own keeps the two independent however they are split.
EVAL_MM_SEED_OFFSET = 13


# --- 1. prompts --------------------------------------------------------------------------------
# Every stage runner takes the run context and the outputs of the stages it reads (by stage name,
# as atom.pipeline.graph declares them) and returns its own outputs.


def compose_prompts(ctx: RunContext, up: Up) -> PromptsOutputs:
    cfg = ctx.cfg
    with ctx.stage("prompts", up, PromptsOutputs) as box:
        if box.skip:
            return box.result
        out = box.prefix
        judge = ctx.clients["judge"]
        train = judge.call(
            "ComposePrompts",
            judge_pb2.ComposePromptsRequest(
                tasks=cfg.prompts.tasks, per_task=cfg.prompts.per_task, seed=cfg.seed, backend=cfg.prompts.backend
            ),
            timeout=600,
        ).prompts
        seen = {p.text.lower() for p in train}
        # Held-out prompts: another seed, and none whose text the training set already has.
        held = judge.call(
            "ComposePrompts",
            judge_pb2.ComposePromptsRequest(
                tasks=cfg.prompts.tasks,
                per_task=cfg.prompts.eval_per_task * 2,
                seed=cfg.seed + HELD_OUT_PROMPTS_SEED_OFFSET,
                backend=cfg.prompts.backend,
            ),
            timeout=600,
        ).prompts
        per_task: dict[str, int] = {}
        eval_prompts = []
        for p in held:
            if p.text.lower() in seen or per_task.get(p.task, 0) >= cfg.prompts.eval_per_task:
                continue
            per_task[p.task] = per_task.get(p.task, 0) + 1
            eval_prompts.append(p)
        ctx.store.put_jsonl(f"{out}/prompts.jsonl", [to_dict(p) for p in train])
        ctx.store.put_jsonl(f"{out}/eval-prompts.jsonl", [to_dict(p) for p in eval_prompts])
        counts = {str(t): sum(p.task == t for p in train) for t in cfg.prompts.tasks}
        box.outputs = PromptsOutputs(
            train=f"{out}/prompts.jsonl", eval=f"{out}/eval-prompts.jsonl", items=len(train), per_task=counts, eval_items=len(eval_prompts)
        )
        box.parts = {"train": [f"{out}/prompts.jsonl"], "eval": [f"{out}/eval-prompts.jsonl"]}
    return box.result


def fan_out(
    ctx: RunContext, label: str, service: str, items: list, total: int, call, expected, result_key, chunk_size: int, per_replica: int
) -> dict:
    """Send `items` in chunks to every replica of `service` (FanOut), with a progress bar; the
    fan-out's request/resend counts go to the run summary under `label`."""
    with _fan(ctx, label, service, total, call, expected, result_key, chunk_size, per_replica) as fan:
        return fan.run(items)


def fan_out_ordered(
    ctx: RunContext, label: str, service: str, items: Iterable, total: int, call, expected, result_key, chunk_size: int, per_replica: int
) -> Iterator[tuple]:
    """fan_out, handing out each item with its results in input order as they come (FanOut.ordered),
    so a caller can write its rows as it goes; the window holds four rounds of requests, enough to
    keep every replica busy while a slow chunk is waited for, and is all that is held."""
    with _fan(ctx, label, service, total, call, expected, result_key, chunk_size, per_replica) as fan:
        yield from fan.ordered(items, window=4 * fan.concurrency * chunk_size)


@contextmanager
def _fan(ctx: RunContext, label: str, service: str, total: int, call, expected, result_key, chunk_size: int, per_replica: int):
    bar = ctx.progress(label, total)
    fan = FanOut(
        call=call,
        expected=expected,
        result_key=result_key,
        chunk_size=chunk_size,
        concurrency=per_replica * len(ctx.clients[service].addresses),
        on_result=lambda _r: bar.advance(),
    )
    try:
        yield fan
    finally:
        bar.close()
        ctx.summary.setdefault("fanout", {})[label] = {
            "requests": fan.stats.requests,
            "resent": fan.stats.resent_items,
            "redelivered": fan.stats.redelivered,
        }


def load_prompts(ctx: RunContext, key: str) -> list[common_pb2.Prompt]:
    return [from_dict(d, common_pb2.Prompt) for d in ctx.store.get_jsonl(key)]


# --- 2. generate -------------------------------------------------------------------------------
def sampling_params(gen: GenerateSettings) -> generator_pb2.SamplingParams:
    """The generator's sampling settings as the request message (None fields stay unset)."""
    return generator_pb2.SamplingParams(
        temperature=gen.temperature, top_p=gen.top_p, decoding=gen.decoding, top_k=gen.top_k, max_length=gen.max_length
    )


def generate_motions(
    ctx: RunContext, prompts: list[common_pb2.Prompt], samples: int, adapter: str = "", label: str = "generate", seed: int | None = None
) -> list[dict]:
    """Motions for every (prompt, sample). Returns rows {prompt_id, sample_index, sample_seed, motion, ...}
    in prompt order. Work already in the store comes back as cached; nothing is generated twice."""
    return list(iter_motions(ctx, prompts, len(prompts), samples, adapter, label, seed))


def iter_motions(
    ctx: RunContext,
    prompts: Iterable[common_pb2.Prompt],
    count: int,
    samples: int,
    adapter: str = "",
    label: str = "generate",
    seed: int | None = None,
) -> Iterator[dict]:
    """generate_motions' rows one at a time, in prompt order, as the generator answers (`count`:
    the number of prompts, for the progress bar). Of each answer only the row's fields are kept."""
    cfg = ctx.cfg
    gen = cfg.generate
    sampling = sampling_params(gen)
    model = common_pb2.ModelRef(base=ctx.base_model, adapter=adapter)

    def call(chunk):
        req = generator_pb2.GenerateRequest(
            prompts=chunk, samples_per_prompt=samples, model=model, sampling=sampling, seed=cfg.seed if seed is None else seed
        )
        return ctx.clients["generator"].stream("Generate", req, timeout=3600)

    answers = fan_out_ordered(
        ctx,
        label,
        "generator",
        prompts,
        count * samples,
        call,
        expected=lambda p: [(p.prompt_id, i) for i in range(samples)],
        result_key=lambda m: (m.prompt_id, m.sample_index),
        chunk_size=gen.batch_prompts,
        per_replica=gen.concurrency,
    )
    for p, motions in answers:
        for i, m in enumerate(motions):
            yield (
                {
                    "prompt_id": p.prompt_id,
                    "text": p.text,
                    "task": p.task,
                    "sample_index": i,
                    "sample_seed": m.sample_seed,
                    "motion": m.motion.key,
                    "num_frames": m.num_frames,
                    "num_tokens": m.num_tokens,
                    "model_id": m.model_id,
                }
            )


def generate_stage(ctx: RunContext, up: Up) -> GenerateOutputs:
    cfg = ctx.cfg
    with ctx.stage("generate", up, GenerateOutputs) as box:
        if box.skip:
            return box.result
        prompts_out = need(up, PromptsOutputs)
        prompts = (from_dict(d, common_pb2.Prompt) for d in ctx.store.stream_jsonl(prompts_out.train))
        key = f"{box.prefix}/motions.jsonl"
        items, motions = 0, set()  # the motion keys, for unique_motions: the one thing kept per motion
        with ctx.store.open_writer(key, "application/x-ndjson") as sink:
            for row in iter_motions(ctx, prompts, prompts_out.items, cfg.generate.samples_per_prompt):
                sink.write_row(row)
                items += 1
                motions.add(row["motion"])
        box.outputs = GenerateOutputs(motions=key, items=items, unique_motions=len(motions))
        box.parts = {"all": [key]}
    return box.result


# --- 3. render ---------------------------------------------------------------------------------
def render_options(ctx: RunContext, form: str | None = None) -> renderer_pb2.RenderOptions:
    r = ctx.cfg.render
    return renderer_pb2.RenderOptions(form=form or r.form, interval=r.interval, width=r.size, height=r.size, style=r.style, camera="follow")


def render_motions(ctx: RunContext, motion_keys: list[str], form: str | None = None, label: str = "render") -> dict:
    options = render_options(ctx, form)
    keys = list(dict.fromkeys(motion_keys))

    def call(chunk):
        req = renderer_pb2.RenderRequest(motions=[common_pb2.ArtifactRef(key=k) for k in chunk], options=options)
        return ctx.clients["renderer"].stream("Render", req, timeout=3600)

    results = fan_out(
        ctx,
        label,
        "renderer",
        keys,
        len(keys),
        call,
        expected=lambda k: [k],
        result_key=lambda r: r.motion.key,
        chunk_size=8,
        per_replica=2,
    )
    return {
        k: {"images": [i.key for i in r.images], "frames": list(r.frame_indices), "render_key": r.render_key} for k, r in results.items()
    }


def render_stage(ctx: RunContext, up: Up) -> RenderOutputs:
    cfg = ctx.cfg
    with ctx.stage("render", up, RenderOutputs) as box:
        if box.skip:
            return box.result
        # The kinematic judge reads joints: render the first few motions so people can look at
        # them, and read no further. The VLM judge sees every motion's renders, and renders.json
        # stays one JSON document with its keys sorted (put_json), so it needs them all at once:
        # for a VLM run this stage holds one entry per distinct motion.
        limit = None if cfg.judge.backend == "vlm" else cfg.render.people_samples
        keys: dict[str, None] = {}  # distinct motion keys in first-seen order
        for r in ctx.store.stream_jsonl(need(up, GenerateOutputs).motions):
            if limit is not None and len(keys) >= limit:
                break
            if r["motion"]:
                keys.setdefault(r["motion"])
        renders = render_motions(ctx, list(keys))
        videos = render_motions(ctx, list(keys)[:3], form="video", label="video")
        key = f"{box.prefix}/renders.json"
        ctx.store.put_json(key, {"form": cfg.render.form, "renders": renders, "videos": videos})
        box.outputs = RenderOutputs(renders=key, items=len(renders))
        box.parts = {"all": [key]}
    return box.result


# --- 4. judge ----------------------------------------------------------------------------------
def judge_config(ctx: RunContext) -> judge_pb2.JudgeConfig:
    j = ctx.cfg.judge
    return judge_pb2.JudgeConfig(
        backend=j.backend,
        model=j.model,
        form=ctx.cfg.render.form,
        interval=ctx.cfg.render.interval,
        budget_usd=j.budget_usd,
        votes=j.votes,
        vote_temperature=j.vote_temperature,
        response_format=j.response_format,
        batch_api=j.batch_api,
    )


def score_items(rows: list[dict], prompts: dict[str, common_pb2.Prompt], renders: dict | None = None) -> dict[str, judge_pb2.ScoreItem]:
    """The judge's questions for motion rows, keyed by item id '<prompt_id>:<motion>' (the same
    motion for the same prompt is one question, asked once)."""
    items = {}
    for r in rows:
        if not r["motion"]:
            continue  # the model produced no motion tokens: nothing to judge
        item_id = f"{r['prompt_id']}:{r['motion']}"
        items[item_id] = score_item(r, item_id, prompts, renders)
    return items


def score_item(row: dict, item_id: str, prompts: Mapping[str, common_pb2.Prompt], renders: dict | None) -> judge_pb2.ScoreItem:
    """The judge's question about one motion row."""
    images = [common_pb2.ArtifactRef(key=k) for k in (renders or {}).get(row["motion"], {}).get("images", [])]
    return judge_pb2.ScoreItem(
        item_id=item_id, prompt=prompts[row["prompt_id"]], motion=common_pb2.ArtifactRef(key=row["motion"]), images=images
    )


def judged_rows(rows: Iterable[dict]) -> Iterator[tuple[dict, str, bool]]:
    """Each motion row with its question's item id ('' for a row with no motion: nothing to judge)
    and whether the row is the first to ask it (score_items' rule: the same motion for the same
    prompt is one question). The generate stage writes the rows prompt by prompt, so the ids asked
    are remembered for the current prompt only; a prompt whose rows came apart would be asked
    twice, and raises instead."""
    current: str | None = None
    asked: set[str] = set()
    done: set[str | None] = set()
    for r in rows:
        if r["prompt_id"] != current:
            if r["prompt_id"] in done:
                raise ValueError(f"the rows of prompt {r['prompt_id']!r} are not together; the judge stage reads them prompt by prompt")
            done.add(current)
            current, asked = r["prompt_id"], set()
        item_id = f"{r['prompt_id']}:{r['motion']}" if r["motion"] else ""
        yield r, item_id, bool(item_id) and item_id not in asked
        asked.add(item_id)


def judge_motions(
    ctx: RunContext, rows: list[dict], prompts: dict[str, common_pb2.Prompt], renders: dict | None = None, label: str = "judge"
) -> dict[str, judge_pb2.Judgement]:
    """Judgements keyed by item id '<prompt_id>:<motion>' (see score_items)."""
    return ask_judge(ctx, list(score_items(rows, prompts, renders).values()), label)


def ask_judge(ctx: RunContext, items: list[judge_pb2.ScoreItem], label: str = "judge") -> dict[str, judge_pb2.Judgement]:
    """The configured judge's judgements of `items`, keyed by item id."""
    config = judge_config(ctx)

    def call(chunk):
        return ctx.clients["judge"].stream("Score", judge_pb2.ScoreRequest(items=chunk, judge=config), timeout=3600)

    return fan_out(
        ctx,
        label,
        "judge",
        items,
        len(items),
        call,
        expected=lambda it: [it.item_id],
        result_key=lambda j: j.item_id,
        chunk_size=ctx.cfg.judge.batch,
        per_replica=2,
    )


def judgement_summary(judgements) -> dict:
    tally = JudgeTally()
    for j in judgements:
        tally.add(j)
    return tally.summary()


class JudgeTally:
    """judgement_summary's counts, added up one judgement at a time (the judge stage keeps no list)."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("items", "scored", "errors", "paid_calls", "cache_hits", "prompt_tokens", "completion_tokens"), 0)
        self.cost: float = 0  # an int 0 until a cost is added, as sum() gave (0, not 0.0, when nothing was paid)

    def add(self, j: judge_pb2.Judgement) -> None:
        c = self.counts
        c["items"] += 1
        c["scored"] += j.ok
        c["errors"] += not j.ok
        c["paid_calls"] += (not j.cache_hit) and j.ok and j.cost_usd > 0
        c["cache_hits"] += j.cache_hit
        c["prompt_tokens"] += j.prompt_tokens
        c["completion_tokens"] += j.completion_tokens
        if not j.cache_hit:
            self.cost += j.cost_usd

    def summary(self) -> dict:
        return {**self.counts, "cost_usd": round(self.cost, 6)}


# Items per Estimate call. The judge reads every image of a call at once (the token rule needs
# their sizes): 1,000 items of 256-px full-image renders took about 700 MB in the judge service.
ESTIMATE_CHUNK = 64


def estimate_judging(
    ctx: RunContext, items: Iterable[judge_pb2.ScoreItem], so_far: judge_pb2.JudgeEstimate | None = None
) -> judge_pb2.JudgeEstimate | None:
    """What judging `items` with the configured judge would ask and cost (the judge service's
    Estimate: nothing is asked), added to `so_far`. Sent in chunks, each call adding its items to
    the estimate so far; None when there is nothing to judge."""
    config, est, rest = judge_config(ctx), so_far, iter(items)
    while chunk := list(islice(rest, ESTIMATE_CHUNK)):
        est = ctx.clients["judge"].call("Estimate", judge_pb2.EstimateRequest(items=chunk, judge=config, so_far=est), timeout=600)
    return est


def judge_stage_items(ctx: RunContext, up: Up) -> tuple[list[dict], dict[str, judge_pb2.ScoreItem]]:
    """The judge stage's motion rows and the questions it asks about them."""
    prompts = {p.prompt_id: p for p in load_prompts(ctx, need(up, PromptsOutputs).train)}
    rows = ctx.store.get_jsonl(need(up, GenerateOutputs).motions)
    renders = ctx.store.get_json(need(up, RenderOutputs).renders)["renders"] if ctx.cfg.judge.backend == "vlm" else None
    return rows, score_items(rows, prompts, renders)


def judge_questions(ctx: RunContext, up: Up) -> Iterator[judge_pb2.ScoreItem]:
    """judge_stage_items' questions one at a time, in the same order, read as they are asked."""
    prompts, renders = judge_lookups(ctx, up)
    for r, item_id, first in judged_rows(ctx.store.stream_jsonl(need(up, GenerateOutputs).motions)):
        if first:
            yield score_item(r, item_id, prompts, renders)


def judge_lookups(ctx: RunContext, up: Up) -> tuple[dict[str, common_pb2.Prompt], dict | None]:
    """What a question needs beyond its row: the prompts by id (one per prompt, not per motion) and,
    for the VLM judge, the renders by motion (the render stage's one JSON document, read whole)."""
    prompts = {p.prompt_id: p for p in load_prompts(ctx, need(up, PromptsOutputs).train)}
    renders = ctx.store.get_json(need(up, RenderOutputs).renders)["renders"] if ctx.cfg.judge.backend == "vlm" else None
    return prompts, renders


def confirm_judge_spend(ctx: RunContext, est: judge_pb2.JudgeEstimate | None, what: str = "the judge stage") -> None:
    """Go on when the estimated new spend is within judge.confirm_above_usd (null: always), or when
    a person at a terminal says yes; otherwise stop before anything is asked."""
    j = ctx.cfg.judge
    if est is None or j.confirm_above_usd is None:
        return
    cost, bound = (est.batch_usd, est.batch_usd_bound) if j.batch_api else (est.sync_usd, est.sync_usd_bound)
    if cost <= j.confirm_above_usd:
        return
    spend = (
        f"{what} would ask {est.to_ask} new question(s) of {est.model} for an estimated ${cost:,.2f} "
        f"(up to ${bound:,.2f}{', Batch API' if j.batch_api else ''}), more than judge.confirm_above_usd "
        f"= ${j.confirm_above_usd:,.2f}"
    )
    if sys.stdin.isatty():
        click.echo(est.text, err=True)
        if click.confirm(f"{spend}. Spend it?", default=False, err=True):
            return
        raise CommandError("not confirmed; nothing was asked", EXIT_BUDGET)
    raise CommandError(
        f"{spend}; nothing was asked. Pass --yes to spend it, or raise the threshold (--set judge.confirm_above_usd=USD)", EXIT_BUDGET
    )


def finished(ctx: RunContext, stage: str, up: Up) -> bool:
    """Whether `stage`'s outputs exist for this config and these upstream outputs (it would be reused)."""
    return ctx.store.exists(f"{stage_prefix(stage, stage_key(ctx.stage_inputs(stage, up)))}/{OUTPUTS_FILE}")


def judge_stage(ctx: RunContext, up: Up) -> JudgeOutputs:
    cfg = ctx.cfg
    if cfg.judge.backend == "vlm" and not finished(ctx, "judge", up):
        # Before the stage is recorded as started and anything is asked: what it would cost.
        confirm_judge_spend(ctx, estimate_judging(ctx, judge_questions(ctx, up)))
    with ctx.stage("judge", up, JudgeOutputs) as box:
        if box.skip:
            return box.result
        # Streamed: the motion rows are read twice, once to cut the questions (as the fan-out
        # sends them) and once to write each row with its answer; answers come in question order.
        motions = need(up, GenerateOutputs).motions
        questions = sum(first for _r, _id, first in judged_rows(ctx.store.stream_jsonl(motions)))  # for the progress bar
        config = judge_config(ctx)

        def call(chunk):
            return ctx.clients["judge"].stream("Score", judge_pb2.ScoreRequest(items=chunk, judge=config), timeout=3600)

        answers = fan_out_ordered(
            ctx,
            "judge",
            "judge",
            judge_questions(ctx, up),
            questions,
            call,
            expected=lambda it: [it.item_id],
            result_key=lambda j: j.item_id,
            chunk_size=cfg.judge.batch,
            per_replica=2,
        )
        tally = JudgeTally()
        key, scores_key = f"{box.prefix}/judgements.jsonl", f"{box.prefix}/scores.jsonl"
        # The current prompt's judgements by item id, for its repeated motions.
        prompt_id: str | None = None
        asked: dict[str, judge_pb2.Judgement] = {}
        with ctx.store.open_writer(key, "application/x-ndjson") as out, ctx.store.open_writer(scores_key, "application/x-ndjson") as scores:
            for r, item_id, first in judged_rows(ctx.store.stream_jsonl(motions)):
                if r["prompt_id"] != prompt_id:
                    prompt_id, asked = r["prompt_id"], {}
                if first:
                    item, (asked[item_id],) = next(answers)
                    if item.item_id != item_id:
                        raise RuntimeError(f"judge answers out of step: {item.item_id!r} came for {item_id!r}")
                    tally.add(asked[item_id])
                j = asked.get(item_id)
                if j is None:
                    row = {**r, "ok": False, "score": None, "rationale": "", "judge_id": "", "error": "the model produced no motion"}
                else:
                    row = {
                        **r,
                        "ok": j.ok,
                        "score": j.score if j.ok else None,
                        "rationale": j.rationale,
                        "judge_id": j.judge_id,
                        "error": j.error,
                        "agreement": j.agreement or 1.0,
                        "votes": list(j.votes),
                    }
                out.write_row(row)
                # The verdicts, not their bookkeeping: a cache hit and a paid call for the same
                # answer give the same pairs.
                verdict = {"prompt_id": row["prompt_id"], "motion": row["motion"], "ok": row["ok"], "score": row["score"]}
                if cfg.judge.votes > 1:  # the agreement decides which pairs are kept (pairs.min_agreement)
                    verdict["agreement"] = row["agreement"]
                scores.write_row(verdict)
            if next(answers, None) is not None:  # runs the fan-out to its end, which records its counts
                raise RuntimeError("the judge answered more questions than the motion rows ask")
        box.outputs = JudgeOutputs(judgements=key, **tally.summary())
        box.parts = {"all": [scores_key]}
    return box.result


# --- 5. pairs ----------------------------------------------------------------------------------
def pairs_stage(ctx: RunContext, up: Up) -> PairsOutputs:
    cfg = ctx.cfg
    with ctx.stage("pairs", up, PairsOutputs) as box:
        if box.skip:
            return box.result
        prompts = {p.prompt_id: p for p in load_prompts(ctx, need(up, PromptsOutputs).train)}
        low_agreement: dict[str, int] = {}
        dataset_key = f"{box.prefix}/motionprefer.jsonl"
        with ctx.store.open_writer(dataset_key, "application/x-ndjson") as records:
            for r in ctx.store.stream_jsonl(need(up, JudgeOutputs).judgements):
                if not r["ok"]:
                    continue  # no score, no preference: never a guessed score
                if r.get("agreement", 1.0) < cfg.judge.min_agreement:
                    # A score the votes did not agree on is no preference either; every pair it would
                    # be in is dropped with it.
                    low_agreement[r["task"]] = low_agreement.get(r["task"], 0) + 1
                    continue
                p = prompts[r["prompt_id"]]
                records.write_row(
                    {
                        "prompt_id": r["prompt_id"],
                        "prompt": r["text"],
                        "task": r["task"],
                        "labels": to_dict(p.labels),
                        "motion_key": r["motion"],
                        "score": r["score"],
                        "judge_id": r["judge_id"],
                        "rationale": r["rationale"],
                    }
                )
        resp = ctx.clients["trainer"].call(
            "BuildPairs",
            trainer_pb2.BuildPairsRequest(
                dataset=common_pb2.ArtifactRef(key=dataset_key),
                theta=cfg.pairs.theta,
                no_score_filter=not cfg.pairs.score_filter,
                min_chosen_score=cfg.pairs.min_chosen_score,
                mixed_size=cfg.pairs.mixed_size,
                seed=cfg.seed,
                output_prefix=box.prefix,
            ),
            timeout=600,
        )  # None: unset
        sets = {ref.key.rsplit("/", 1)[-1]: ref.key for ref in resp.pair_sets}
        mixed = next((k for name, k in sets.items() if "mixed" in name), None)
        if mixed is None:
            raise RuntimeError(f"trainer returned no mixed pair set (got {sorted(sets)})")
        box.outputs = PairsOutputs(
            dataset=dataset_key,
            pairs=mixed,
            pair_sets=sets,
            items=int(sum(resp.pairs_per_task.values())),
            pairs_per_task=dict(resp.pairs_per_task),
            prompts_per_task=dict(resp.prompts_per_task),
            motions_per_task=dict(resp.motions_per_task),
            motions_dropped_low_agreement=low_agreement,
        )
        box.parts = {"all": [mixed]}
    return box.result


# --- 6. train ----------------------------------------------------------------------------------
def training_config(ctx: RunContext) -> trainer_pb2.TrainingConfig:
    t = ctx.cfg.train
    return trainer_pb2.TrainingConfig(
        algorithm=t.algorithm,
        beta=t.beta,
        learning_rate=t.learning_rate,
        batch_size=t.batch_size,
        epochs=t.epochs,
        max_steps=t.max_steps,
        lora_r=t.lora_r,
        lora_alpha=t.lora_alpha,
        lora_dropout=t.lora_dropout,
        target_modules=t.target_modules,
        seed=ctx.cfg.seed,
        scheduler="cosine",
        logprobs=t.logprobs,
        rpo_alpha=t.rpo_alpha,
    )


def train_stage(ctx: RunContext, up: Up) -> TrainOutputs:
    pairs_out = need(up, PairsOutputs)
    with ctx.stage("train", up, TrainOutputs) as box:
        if box.skip:
            return box.result
        if not pairs_out.items:
            raise ValueError(
                f"no preference pairs to train on ({dict(pairs_out.pairs_per_task)}): every prompt's samples scored "
                "alike or none passed the score filter. Generate more samples per prompt, lower --theta, or check "
                "the judgements of the judge stage (runs/<run>/manifest.json names them)"
            )
        trainer = ctx.clients["trainer"]
        job = trainer.call(
            "StartTraining",
            trainer_pb2.StartTrainingRequest(
                base=common_pb2.ModelRef(base=ctx.base_model),
                pairs=common_pb2.ArtifactRef(key=pairs_out.pairs),
                config=training_config(ctx),
                output_prefix=box.prefix,
            ),
            timeout=120,
        )
        bar = ctx.progress("train", max(job.metrics.total_steps, 1))
        last_step = job.metrics.step
        bar.advance(last_step)
        final = job
        try:
            for event in trainer.stream("WatchJob", trainer_pb2.JobRef(job_id=job.job_id), timeout=24 * 3600):
                final = event.job
                if final.metrics.total_steps and bar.total != final.metrics.total_steps:
                    bar.total = final.metrics.total_steps
                if final.metrics.step > last_step:
                    bar.advance(final.metrics.step - last_step)
                    last_step = final.metrics.step
                if final.state in (common_pb2.JOB_STATE_SUCCEEDED, common_pb2.JOB_STATE_FAILED, common_pb2.JOB_STATE_CANCELLED):
                    break
        finally:
            bar.close()
        if final.state != common_pb2.JOB_STATE_SUCCEEDED:
            raise RuntimeError(f"training job {job.job_id} ended {common_pb2.JobState.Name(final.state)}: {final.error}")
        m = final.metrics
        box.outputs = TrainOutputs(
            job_id=job.job_id,
            adapter=final.adapter.key,
            items=int(m.step),
            final_loss=m.loss,
            final_margin=m.margin,
            final_accuracy=m.accuracy,
            resumed=final.resumed,
        )
        adapter = final.adapter.key.rstrip("/")
        box.parts = {"all": [f"{adapter}/adapter_model.safetensors", f"{adapter}/adapter_config.json"]}
    return box.result


# --- 7. evaluate -------------------------------------------------------------------------------
def prepare_evaluation(ctx: RunContext) -> list[common_pb2.Prompt]:
    """What evaluation needs beyond the stages' outputs: the evaluator (trained or imported on
    first use), the assets list for the report, and the test captions (guo protocol) or items
    (motiongpt protocol)."""
    cfg, store = ctx.cfg, ctx.store
    embedded = bootstrap.ensure_evaluator(store, cfg, ctx.dataset, ctx.show_progress)
    ctx.evaluator_spec = bootstrap.evaluator_spec(store, cfg, embedded, ctx.show_progress)
    ctx.context_digests["evaluator"] = bootstrap.evaluator_digest(store, ctx.evaluator_spec)
    ctx.assets = bootstrap.collect_assets(store, ctx.dataset, ctx.base_model, ctx.evaluator_spec)
    if cfg.protocol == "motiongpt":
        ctx.test_items = evalplan.store_items(store, ctx.dataset, "test")
        return []
    return general_texts(ctx)


def general_texts(ctx: RunContext) -> list[common_pb2.Prompt]:
    """The test captions the evaluate stage generates for (eval.general_texts of them)."""
    return general_captions(ctx.store, ctx.dataset, ctx.cfg.eval.general_texts)


def general_captions(store, dataset: str, limit: int = 0) -> list[common_pb2.Prompt]:
    """The test split's first caption per clip, for the first `limit` clips (0 = all), as prompts
    of the 'general' task; none when the dataset has no test split."""
    try:
        ids = [line.strip() for line in store.get_bytes(f"{dataset}/test.txt").decode().splitlines() if line.strip()]
    except ArtifactNotFound:
        return []
    if limit:
        ids = ids[:limit]
    out = []
    for clip_id in ids:
        try:
            line = store.get_bytes(f"{dataset}/texts/{clip_id}.txt").decode().splitlines()[0]
        except (ArtifactNotFound, IndexError):
            continue
        text = line.split("#", 1)[0].strip()
        pid = "g-" + hashlib.sha256(f"{clip_id}|{text}".encode()).hexdigest()[:12]
        out.append(common_pb2.Prompt(prompt_id=pid, text=text, task="general"))
    return out


def evaluate_stage(ctx: RunContext, up: Up) -> EvaluateOutputs:
    """Held-out prompts judged for base and tuned, plus HumanML3D-style metrics on the test split;
    the report is copied to reports/<run>/."""
    cfg = ctx.cfg
    general_texts = prepare_evaluation(ctx)
    train_out = need(up, TrainOutputs)
    with ctx.stage("evaluate", up, EvaluateOutputs) as box:
        if box.skip:
            return publish_site(ctx, publish_report(ctx, box.result))
        eval_prompts = load_prompts(ctx, need(up, PromptsOutputs).eval)
        by_id = {p.prompt_id: p for p in eval_prompts + general_texts}
        models = {"base": "", "atom": train_out.adapter}
        refs = []
        judged_summary = {}
        for name, adapter in models.items():
            rows = generate_motions(
                ctx,
                eval_prompts,
                cfg.generate.eval_samples_per_prompt,
                adapter,
                label=f"gen-{name}",
                seed=cfg.seed + EVAL_PROMPTS_SEED_OFFSET,
            )
            renders = None
            if cfg.judge.backend == "vlm":  # the VLM judge sees renders, not joints
                renders = render_motions(ctx, [r["motion"] for r in rows if r["motion"]], label=f"render-{name}")
            judgements = judge_motions(ctx, rows, by_id, renders, label=f"judge-{name}")
            judged_summary[name] = judgement_summary(judgements.values())
            samples = []
            for r in rows:
                j = judgements.get(f"{r['prompt_id']}:{r['motion']}")
                samples.append(
                    {
                        **r,
                        "kind": "judge",
                        "score": j.score if j is not None and j.ok else None,
                        "judgement": j.record.key if j is not None else "",
                    }
                )
            if ctx.test_items:
                samples += plan_samples(ctx, adapter, name)
            elif general_texts:
                # HumanML3D-style metrics on the test captions: mm_samples generations for the first
                # mm_texts captions (MultiModality), general_samples for the rest; every replication
                # picks one generation per caption, so FID averages over the sampling as well.
                mm, rest = general_texts[: cfg.eval.mm_texts], general_texts[cfg.eval.mm_texts :]
                if rest:
                    grows = generate_motions(
                        ctx, rest, cfg.eval.general_samples, adapter, label=f"gen-gt-{name}", seed=cfg.seed + EVAL_GENERAL_SEED_OFFSET
                    )
                    samples += [{**r, "kind": "general"} for r in grows]
                if mm:
                    mrows = generate_motions(
                        ctx, mm, max(1, cfg.eval.mm_samples), adapter, label=f"gen-mm-{name}", seed=cfg.seed + EVAL_MM_SEED_OFFSET
                    )
                    samples += [{**r, "kind": "general"} for r in mrows]
            key = f"{box.prefix}/eval-samples-{name}.jsonl"
            ctx.store.put_jsonl(key, samples)
            refs.append(evaluator_pb2.ModelSamples(name=name, samples=common_pb2.ArtifactRef(key=key)))
        report = None
        assets = [
            common_pb2.Asset(
                role=a.get("role", ""),
                name=str(a.get("name", "")),
                sha256=a.get("sha256", ""),
                bytes=int(a.get("bytes", 0) or 0),
                detail=json.dumps({k: v for k, v in a.items() if k not in ("role", "name", "sha256", "bytes")}, sort_keys=True),
            )
            for a in ctx.assets
        ]
        for event in ctx.clients["evaluator"].stream(
            "Evaluate",
            evaluator_pb2.EvaluateRequest(
                models=refs,
                dataset=ctx.dataset,
                split="test",
                evaluator=ctx.evaluator_spec,
                replications=cfg.eval.replications,
                seed=cfg.seed,
                output_prefix=box.prefix,
                baseline="base",
                protocol=cfg.protocol,
                base_model=ctx.base_model,
                assets=assets,
            ),
            timeout=3600,
        ):
            if event.HasField("report"):
                report = event.report
        if report is None:
            raise RuntimeError("the evaluator finished without a report")
        box.outputs = EvaluateOutputs(
            report_json=report.json.key,
            report_md=report.markdown.key,
            plots=tuple(p.key for p in report.plots),
            items=len(refs),
            judge=judged_summary,
        )
        box.parts = {"all": [report.json.key]}
    return publish_site(ctx, publish_report(ctx, box.result))


def plan_samples(ctx: RunContext, adapter: str, name: str) -> list[dict]:
    """The test-split motions MotionGPT's protocol scores (atom.evalplan): per replication one motion
    per item for the caption drawn for it, and mm_samples motions for each MultiModality item, every
    replication sampled afresh (its own Generate seed)."""
    cfg = ctx.cfg
    items = ctx.test_items
    out: list[dict] = []
    for rep in range(cfg.eval.replications):
        for kind, draws, n in (
            ("general", evalplan.general_draws(items, rep, cfg.seed), 1),
            ("mm", evalplan.mm_draws(items, rep, cfg.seed, cfg.eval.mm_texts), cfg.eval.mm_samples),
        ):
            if not draws or n < 1:
                continue
            prompts = [
                common_pb2.Prompt(prompt_id=items[d.item].item_id, text=items[d.item].captions[d.caption].text, task="general")
                for d in draws
            ]
            rows = generate_motions(
                ctx, prompts, n, adapter, label=f"{kind}-{name}-r{rep}", seed=evalplan.generation_seed(cfg.seed, rep, kind)
            )
            out += [{**r, "kind": kind, "item": r["prompt_id"], "replication": rep} for r in rows]
    return out


def publish_report(ctx: RunContext, outputs: EvaluateOutputs) -> EvaluateOutputs:
    """Copy the evaluate stage's report (made under its content key) to reports/<run>/, where people
    look; the returned outputs point there."""
    dest = f"reports/{ctx.run}"
    src = outputs.report_json.rsplit("/", 1)[0]

    def copy(key: str) -> str:
        target = f"{dest}/{key[len(src) + 1 :]}"
        ctx.store.put_bytes(target, ctx.store.get_bytes(key))
        return target

    return replace(
        outputs,
        report_json=copy(outputs.report_json),
        report_md=copy(outputs.report_md),
        plots=tuple(copy(k) for k in outputs.plots),
        made_under=src,
    )


def publish_site(ctx: RunContext, outputs: EvaluateOutputs) -> EvaluateOutputs:
    """After the report: the measured gains into the adapter's model card, and the run browser
    (reports/<run>/site/, atom.report) with videos made by the renderer. Neither is a stage output:
    both are rebuilt from the stages' outputs whenever the evaluation runs or is reused."""
    from atom.report.collect import collect
    from atom.report.modelcard import add_evaluation
    from atom.report.site import SiteOptions, build_site
    from atom.report.videos import webm_renderer

    view = collect(ctx.store, ctx.run)
    add_evaluation(ctx.store, view.adapter, view.report, ctx.run)
    site = ctx.cfg.site
    if not site.build:
        return outputs
    index = build_site(
        ctx.store,
        view,
        webm_renderer(ctx.store, ctx.clients["renderer"], site.video_size),
        SiteOptions(site.cards_per_task, site.pair_videos, site.video_size),
    )
    return replace(outputs, site=index)


# The stage runners, by stage name (the graph, atom.pipeline.graph, says what each reads).
RUNNERS: dict[str, Callable[[RunContext, Up], StageOutputs]] = {
    "prompts": compose_prompts,
    "generate": generate_stage,
    "render": render_stage,
    "judge": judge_stage,
    "pairs": pairs_stage,
    "train": train_stage,
    "evaluate": evaluate_stage,
}
