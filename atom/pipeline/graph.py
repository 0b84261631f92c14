"""The stage graph, declared once: what each stage reads, and the content key it runs under.

A stage's key is the sha256 of
- the config values its result depends on (and nothing else: concurrency or batch sizes that only
  change speed are left out, so tuning them reruns nothing),
- its code version (bump `version` when a stage's behaviour changes),
- the content digests (not the store paths) of every upstream stage's output it reads,
- the content digests of the run-level inputs it uses: the base model bundle, the dataset and the
  evaluator.
Its outputs live under `stages/<stage>/<key>/`, written once; `outputs.json` there, written last,
says the stage finished. So changing a setting reruns exactly the stages whose key it enters and,
through their new output digests, everything downstream; the same config and inputs run nothing
twice, across runs and run names. `runs/<run>/manifest.json` points at the keys of the run's last
invocation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from atom.pipeline.config import flatten

STAGE_PREFIX = "stages"
OUTPUTS_FILE = "outputs.json"


@dataclass(frozen=True)
class Stage:
    name: str
    config: tuple[str, ...]  # dotted config keys; a bare section name takes the whole section
    upstream: tuple[str, ...]  # stages whose outputs it reads ("stage:part" for one named part of them)
    context: tuple[str, ...] = ()  # run-level inputs: "base_model", "dataset", "evaluator"
    version: int = 1
    what: str = ""
    # Config keys and upstream stages that matter only with the VLM judge (the kinematic judge
    # reads joints, not renders, and has no model name).
    vlm_only: tuple[str, ...] = ()


# What the VLM judge's answers depend on besides the motion (batch_api changes the price, not the answers).
_VLM_VIEW = (
    "judge.model",
    "render.form",
    "render.interval",
    "render.size",
    "render.style",
    "judge.votes",
    "judge.vote_temperature",
    "judge.response_format",
)
GRAPH: tuple[Stage, ...] = (
    Stage(
        "prompts",
        ("seed", "prompts.tasks", "prompts.per_task", "prompts.eval_per_task", "prompts.backend"),
        (),
        what="event-level prompts, training and held-out",
    ),
    Stage(
        "generate",
        (
            "seed",
            "generate.samples_per_prompt",
            "generate.temperature",
            "generate.top_k",
            "generate.top_p",
            "generate.max_length",
            "generate.decoding",
        ),
        ("prompts:train",),
        ("base_model",),
        what="motions for the training prompts",
    ),
    Stage(
        "render",
        ("render.form", "render.interval", "render.size", "render.style", "render.people_samples", "judge.backend"),
        ("generate",),
        what="frames for the VLM judge (a few motions for people with the kinematic judge)",
    ),
    Stage(
        "judge",
        ("judge.backend", *_VLM_VIEW),
        ("prompts:train", "generate", "render"),
        what="a score per motion",
        vlm_only=(*_VLM_VIEW, "render"),
    ),
    Stage(
        "pairs",
        ("seed", "pairs", "judge.min_agreement"),
        ("prompts:train", "judge"),
        what="MotionPrefer dataset and preference pairs",
        vlm_only=("judge.min_agreement",),
    ),
    Stage("train", ("seed", "train"), ("pairs",), ("base_model",), what="the LoRA adapter"),
    Stage(
        "evaluate",
        (
            "seed",
            "eval",
            "generate.eval_samples_per_prompt",
            "generate.temperature",
            "generate.top_k",
            "generate.top_p",
            "generate.max_length",
            "generate.decoding",
            "judge.backend",
            *_VLM_VIEW,
        ),
        ("prompts:eval", "train"),
        ("base_model", "dataset", "evaluator"),
        what="the report",
        vlm_only=_VLM_VIEW,
    ),
)
STAGES: tuple[str, ...] = tuple(s.name for s in GRAPH)
BY_NAME: dict[str, Stage] = {s.name: s for s in GRAPH}


def config_value(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def upstream_digest(outputs: Mapping[str, Any], edge: str) -> str:
    """The digest an edge "stage" or "stage:part" reads from that stage's outputs record."""
    part = edge.partition(":")[2]
    return outputs["parts"][part] if part else outputs["digest"]


def stage_inputs(stage: Stage, cfg: Mapping[str, Any], upstream: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> dict:
    """Everything the stage's key is made of, in a form that can be stored and compared.
    `upstream`: stage name -> its outputs record (with "digest" and "parts")."""
    config_keys, edges = needs(stage, cfg)
    missing = [e for e in edges if not upstream.get(source(e))] + [c for c in stage.context if c not in context]
    if missing:
        raise KeyError(f"stage {stage.name}: no digest for {', '.join(missing)}")
    return {
        "stage": stage.name,
        "version": stage.version,
        "config": {k: config_value(cfg, k) for k in config_keys},
        "upstream": {e: upstream_digest(upstream[source(e)], e) for e in edges},
        "context": {c: context[c] for c in stage.context},
    }


def source(edge: str) -> str:
    """The stage an upstream edge comes from ("prompts:train" -> "prompts")."""
    return edge.partition(":")[0]


def needs(stage: Stage, cfg: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(config keys, upstream stages) the stage depends on under this config."""
    if config_value(cfg, "judge.backend") == "vlm":
        return stage.config, stage.upstream
    return (tuple(k for k in stage.config if k not in stage.vlm_only), tuple(u for u in stage.upstream if source(u) not in stage.vlm_only))


def stage_key(inputs: Mapping[str, Any]) -> str:
    canon = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:20]


def stage_prefix(name: str, key: str) -> str:
    return f"{STAGE_PREFIX}/{name}/{key}"


def explain(now: Mapping[str, Any], before: Mapping[str, Any] | None) -> list[str]:
    """Why a stage's key differs from the one it had before: each changed input, in words."""
    if not before:
        return ["not run before"]
    reasons = []
    if now.get("version") != before.get("version"):
        reasons.append(f"code version {before.get('version')} -> {now.get('version')}")
    a, b = flatten(before.get("config", {})), flatten(now.get("config", {}))
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            reasons.append(f"{k}: {a.get(k)!r} -> {b.get(k)!r}")
    for group, label in (("upstream", "output of {} changed"), ("context", "{} changed")):
        for k, v in now.get(group, {}).items():
            if before.get(group, {}).get(k) != v:
                reasons.append(label.format(k.replace("_", " ").replace(":", " ")))
    return reasons or ["same inputs, but its outputs are not in the store"]


def digest_of(parts: Mapping[str, str]) -> str:
    """One digest over named content hashes (an output made of several artifacts)."""
    return hashlib.sha256(json.dumps(dict(parts), sort_keys=True).encode()).hexdigest()
