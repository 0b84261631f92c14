"""The controller's own Prometheus metrics: served while a command runs (--metrics-port) or
pushed to a Pushgateway at the end of each stage when ATOM_PUSHGATEWAY is set."""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY, push_to_gateway

from atom.runtime import telemetry

log = logging.getLogger("atom.pipeline")

stage_seconds = telemetry.gauge("atom_pipeline_stage_seconds", "Wall time of the last run of each stage",
                                ("run", "stage"))
stage_items = telemetry.gauge("atom_pipeline_stage_items", "Items a stage produced (prompts, motions, pairs, ...)",
                              ("run", "stage"))
judge_cost = telemetry.gauge("atom_pipeline_judge_cost_usd", "Judge spend of this run so far, in USD", ("run",))
judge_calls = telemetry.gauge("atom_pipeline_judge_calls", "Judge calls paid for by this run (cache hits excluded)",
                              ("run",))
stage_state = telemetry.gauge("atom_pipeline_stage_done", "1 when the stage finished in this run", ("run", "stage"))


def push(run: str) -> None:
    gateway = os.environ.get("ATOM_PUSHGATEWAY")
    if not gateway:
        return
    try:
        push_to_gateway(gateway, job=f"atom-pipeline-{run}", registry=REGISTRY)
    except OSError as exc:  # metrics must never stop the pipeline
        log.warning("could not push metrics to %s: %s", gateway, exc)
