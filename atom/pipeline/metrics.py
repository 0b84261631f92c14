"""The controller's own Prometheus metrics: served while a command runs (--metrics-port) or
pushed to a Pushgateway at the end of each stage when ATOM_PUSHGATEWAY is set.

They live in their own registry, so a push carries only the pipeline's figures, never the
process metrics of the pod that pushed them (which would stay in the Pushgateway as stale
`process_*` series of a finished pod). That registry is also registered in the default one, so the
controller's /metrics port shows the pipeline figures next to its process metrics."""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, push_to_gateway

log = logging.getLogger("atom.pipeline")

PIPELINE_REGISTRY = CollectorRegistry(auto_describe=True)

stage_seconds = Gauge(
    "atom_pipeline_stage_seconds", "Wall time of the last run of each stage", ("run", "stage"), registry=PIPELINE_REGISTRY
)
stage_items = Gauge(
    "atom_pipeline_stage_items", "Items a stage produced (prompts, motions, pairs, ...)", ("run", "stage"), registry=PIPELINE_REGISTRY
)
judge_cost = Gauge("atom_pipeline_judge_cost_usd", "Judge spend of this run so far, in USD", ("run",), registry=PIPELINE_REGISTRY)
judge_calls = Gauge(
    "atom_pipeline_judge_calls", "Judge calls paid for by this run (cache hits excluded)", ("run",), registry=PIPELINE_REGISTRY
)
stage_state = Gauge("atom_pipeline_stage_done", "1 when the stage finished in this run", ("run", "stage"), registry=PIPELINE_REGISTRY)
stage_failed = Gauge(
    "atom_pipeline_stage_failed", "1 when the stage's last attempt in this run failed", ("run", "stage"), registry=PIPELINE_REGISTRY
)

try:
    REGISTRY.register(PIPELINE_REGISTRY)
except ValueError:  # already there (the module was loaded twice under another name)
    pass


def record_failure(run: str, stage: str) -> None:
    """A stage raised: flag it (the AtomPipelineStageFailed alert reads this) and push, since the
    process is about to stop. A retry's pod starts with a fresh registry, and its first push
    replaces the run's whole group in the Pushgateway, which clears the flag."""
    stage_failed.labels(run, stage).set(1)
    push(run)


def push(run: str) -> None:
    gateway = os.environ.get("ATOM_PUSHGATEWAY")
    if not gateway:
        return
    try:
        push_to_gateway(gateway, job=f"atom-pipeline-{run}", registry=PIPELINE_REGISTRY)
    except OSError as exc:  # metrics must never stop the pipeline
        log.warning("could not push metrics to %s: %s", gateway, exc)
