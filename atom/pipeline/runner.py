"""Run the pipeline, or one stage of it, against embedded or given services."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Mapping, Sequence

import click

from atom.cli.context import Ctx
from atom.pipeline import bootstrap, metrics, stages
from atom.pipeline.config import PipelineConfig
from atom.pipeline.context import RunContext
from atom.pipeline.graph import BY_NAME, STAGES, needs, source
from atom.pipeline.manifest import Manifest
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
    outputs_from_record,
)
from atom.pipeline.plan import make_plan
from atom.runtime.client import connect
from atom.runtime.cpus import available_cpus
from atom.runtime.device import DEVICE_ENV, DTYPE_ENV, cuda_visible
from atom.runtime.ports import SERVICES
from atom.store import ArtifactNotFound, open_store

log = logging.getLogger("atom.pipeline")


class StageNotReady(ArtifactNotFound):
    def __init__(self, stage: str, needs: str, why: list[str]):
        super().__init__(f"stage '{needs}' output")
        self.args = (
            f"stage '{stage}' needs the output of stage '{needs}' for this config, which is not in the store "
            f"({'; '.join(why)}); run `atomctl {needs}` (or `atomctl run-pipeline`) with the same options "
            "first, or `atomctl run-pipeline --dry-run` to see what would run",
        )


def service_clients(
    stack: ExitStack,
    cli: Ctx,
    log_dir: Path = Path(".atom/logs"),
    env: dict | None = None,
    names: Sequence[str] = SERVICES,
    replicas: Mapping[str, int] | None = None,
) -> dict:
    """Clients for the named services (all by default): given endpoints, or services started here
    on loopback (with `env` added to their environment, `replicas` processes of those named)."""
    missing = [s for s in names if not cli.endpoint(s)]
    endpoints = {s: e for s in names if (e := cli.endpoint(s))}
    if missing:
        from atom.runtime.launch import LocalServices

        group = stack.enter_context(
            LocalServices(cli.store_url, missing, replicas=replicas or {}, log_dir=log_dir, log_level=cli.log_level, extra_env=env)
        )
        group.wait_ready()
        endpoints.update(group.endpoints())
    clients = {s: connect(s, endpoints[s]) for s in names}
    for c in clients.values():
        stack.callback(c.close)
        c.wait_ready(60)
    return clients


def generator_replicas(cfg: PipelineConfig) -> int:
    """Generator processes for an embedded run: `generate.replicas`, where `auto` is 2 when the model
    runs on CPUs (the tiny model's token-by-token decoding gains little from a second thread,
    and two one-thread processes generated 1.73x as fast as one two-thread process on 2 cores;
    docs/benchmarks.md) and 1 on a GPU (one process batches for it)."""
    n = cfg.generate.replicas
    if n != "auto":
        return int(n)
    on_gpu = cfg.model.device.startswith("cuda") or (cfg.model.device == "auto" and cuda_visible())
    return 1 if on_gpu or available_cpus() < 2 else 2


def upstream_outputs(store, cfg: PipelineConfig, manifest: Manifest, stage: str) -> dict[str, StageOutputs]:
    """For a single-stage command: the outputs of the stages it reads, which must exist for this
    config. Checked before any service starts or any model is built."""
    conf = cfg.to_dict()
    planned = make_plan(store, cfg, manifest.data.get("stages", {}))
    upstream = {}
    for name in dict.fromkeys(source(e) for e in needs(BY_NAME[stage], conf)[1]):
        step = planned.stage(name)
        if step.outputs is None:
            raise StageNotReady(stage, name, step.why)
        upstream[name] = outputs_from_record(name, step.outputs)
    return upstream


def run(cfg: PipelineConfig, cli: Ctx, until: str = "evaluate", only: str | None = None, show_progress: bool = True) -> RunContext:
    """Run the stages up to `until` (or just `only`); a stage whose output exists under its content
    key for this config is reused, not run (atom.pipeline.graph)."""
    store = open_store(cli.store_url)
    store.ping()
    t0 = time.monotonic()
    with ExitStack() as stack:
        if cli.metrics_port:
            from atom.runtime.telemetry import serve_metrics

            server = serve_metrics(cli.metrics_port)
            stack.callback(server.shutdown)
        manifest = Manifest.load(store, cfg.run, cfg.to_dict())
        wanted = [only] if only else list(STAGES[: STAGES.index(until) + 1])
        out: dict[str, StageOutputs] = upstream_outputs(store, cfg, manifest, only) if only else {}
        dataset = bootstrap.ensure_dataset(store, cfg, show_progress)
        # Every service is up (ready) before the base model is made: on a first run the trainer
        # service pretrains it.
        clients = service_clients(
            stack,
            cli,
            env={DEVICE_ENV: cfg.model.device, DTYPE_ENV: cfg.model.dtype},
            replicas={"generator": generator_replicas(cfg)},
        )
        ctx = RunContext(cfg=cfg, store=store, clients=clients, manifest=manifest, show_progress=show_progress, dataset=dataset)
        if "evaluate" in wanted and bootstrap.will_pretrain(store, cfg):
            # Both one-thread jobs: the trainer runs them side by side (services/trainer/admission.py).
            bootstrap.start_evaluator(store, cfg, dataset, clients["trainer"], show_progress)
        ctx.base_model = bootstrap.ensure_base_model(store, cfg, dataset, show_progress, trainer=clients["trainer"])
        ctx.context_digests = {
            "dataset": bootstrap.dataset_digest(store, dataset),
            "base_model": bootstrap.base_model_digest(store, ctx.base_model),
        }
        conf = cfg.to_dict()
        for stage in wanted:
            if stage == "evaluate":
                # On a first run the trainer service trains the embedded evaluator; the evaluate
                # stage then finds it in the store (stages.prepare_evaluation).
                bootstrap.ensure_evaluator(store, cfg, dataset, show_progress, trainer=clients["trainer"])
            reads = dict.fromkeys(source(e) for e in needs(BY_NAME[stage], conf)[1])
            out[stage] = stages.RUNNERS[stage](ctx, {name: out[name] for name in reads})
            if stage == "judge":
                judged = need(out, JudgeOutputs)
                metrics.judge_cost.labels(cfg.run).set(judged.cost_usd)
                metrics.judge_calls.labels(cfg.run).set(judged.paid_calls)
        ctx.summary["stages"] = {k: v for k, v in out.items() if k in wanted}
        ctx.summary["seconds"] = round(time.monotonic() - t0, 1)
        metrics.push(cfg.run)
        return ctx


def dry_run(cfg: PipelineConfig, cli: Ctx) -> str:
    """The plan for this config, as text: nothing is run, built or started."""
    store = open_store(cli.store_url)
    store.ping()
    try:
        previous = store.get_json(Manifest(store, cfg.run).key).get("stages", {})
    except ArtifactNotFound:
        previous = {}
    return make_plan(store, cfg, previous).format()


def print_summary(ctx: RunContext) -> None:
    out = ctx.summary.get("stages", {})
    echo = click.echo
    echo("")
    echo(f"run '{ctx.run}' (seed {ctx.cfg.seed}) in {ctx.summary.get('seconds', 0):.0f}s; store {ctx.store.url}")
    reused = [n for n in out if ctx.manifest.stage(n).get("reused")]
    if reused:
        echo(f"  reused from earlier runs (same settings and inputs): {', '.join(reused)}")
    if "prompts" in out:
        p = need(out, PromptsOutputs)
        echo(f"  prompts   {p.items} training ({dict(p.per_task)}), {p.eval_items} held-out")
    if "generate" in out:
        g = need(out, GenerateOutputs)
        echo(f"  generate  {g.items} motions ({g.unique_motions} distinct)")
    if "render" in out:
        r = need(out, RenderOutputs)
        echo(f"  render    {r.items} motions rendered -> {r.renders}")
    if "judge" in out:
        j = need(out, JudgeOutputs)
        echo(
            f"  judge     {j.scored} scored, {j.errors} errors, {j.paid_calls} paid calls, "
            f"{j.cache_hits} cache hits, {j.prompt_tokens + j.completion_tokens} tokens, ${j.cost_usd:.4f}"
        )
    if "pairs" in out:
        pairs = need(out, PairsOutputs)
        echo(f"  pairs     {pairs.items} pairs {dict(pairs.pairs_per_task)} -> {pairs.pairs}")
    if "train" in out:
        t = need(out, TrainOutputs)
        echo(
            f"  train     {t.items} steps, final loss {t.final_loss:.4f}, margin {t.final_margin:.3f}, "
            f"accuracy {t.final_accuracy:.2f} -> {t.adapter}"
        )
    if "evaluate" in out:
        e = need(out, EvaluateOutputs)
        echo(f"  evaluate  report -> {e.report_md} (+ {e.report_json}, {len(e.plots)} plots)")
        echo("")
        echo(ctx.store.get_bytes(e.report_md).decode())
        if e.site:
            from atom.report.site import site_location

            echo(f"Run browser: open {site_location(ctx.store.url, e.site)} (or `atomctl report --run {ctx.run} --serve`)")
