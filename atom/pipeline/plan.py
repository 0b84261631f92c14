"""What a run would do, worked out from the store without running, building or starting anything:
for the run-level inputs (dataset, base model, evaluator) and for each stage, whether its output
already exists for the current config (reused) or would be made, and why.

`atomctl run-pipeline --dry-run` prints it; a single-stage command (`atomctl train`) uses it to
say which earlier stage is missing before it starts services or pretrains anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atom.pipeline import bootstrap
from atom.pipeline.config import PipelineConfig
from atom.pipeline.graph import GRAPH, OUTPUTS_FILE, explain, needs, source, stage_inputs, stage_key, stage_prefix
from atom.store import ArtifactStore


@dataclass
class Step:
    name: str
    action: str  # "reuse" | "run" | "make"
    where: str  # store prefix (for a stage not yet keyed: "")
    why: list[str] = field(default_factory=list)
    outputs: dict | None = None  # a reused stage's outputs record
    inputs: dict | None = None


@dataclass
class Plan:
    inputs: list[Step]  # dataset, base model, evaluator
    stages: list[Step]
    context: dict[str, str]  # digests of the run-level inputs that exist

    def stage(self, name: str) -> Step:
        return next(s for s in self.stages if s.name == name)

    def format(self) -> str:
        lines = ["run-level inputs:"]
        for s in self.inputs:
            lines.append(f"  {s.name:<11} {s.action:<6} {s.where}" + (f"  ({'; '.join(s.why)})" if s.why else ""))
        lines.append("stages:")
        for s in self.stages:
            lines.append(f"  {s.name:<11} {s.action:<6} {s.where or '-'}" + (f"  ({'; '.join(s.why)})" if s.why else ""))
        return "\n".join(lines)


def plan_inputs(store: ArtifactStore, cfg: PipelineConfig) -> tuple[list[Step], dict[str, str], dict[str, str]]:
    """(steps, digests of the inputs that exist, their store prefixes / specs)."""
    dataset = bootstrap.dataset_prefix_for(cfg)
    base = bootstrap.base_prefix_for(cfg)
    evaluator = bootstrap.evaluator_spec_for(cfg, dataset)
    found = {
        "dataset": bootstrap.dataset_digest(store, dataset),
        "base_model": bootstrap.base_model_digest(store, base),
        "evaluator": bootstrap.evaluator_digest(store, evaluator),
    }
    made_by = {
        "dataset": "import the HumanML3D directory" if cfg.world.dataset else "build the procedural world",
        "base_model": (
            "import the MotionGPT checkpoint"
            if cfg.model.checkpoint
            else "pretrain the tiny base model"
            if not cfg.model.base
            else "missing: give an existing bundle"
        ),
        "evaluator": "import the Guo et al. evaluator" if evaluator.startswith("guo:") else "train the embedded evaluator",
    }
    where = {"dataset": dataset, "base_model": base, "evaluator": evaluator}
    steps = [
        Step(name, "reuse" if found[name] else "make", where[name], [] if found[name] else [made_by[name]])
        for name in ("dataset", "base_model", "evaluator")
    ]
    return steps, {k: v for k, v in found.items() if v}, where


def plan_stages(store: ArtifactStore, cfg: PipelineConfig, previous: dict, context: dict[str, str]) -> list[Step]:
    """Each stage under the current config: reused when its output exists under its key, else run
    (with the reasons: what changed since `previous`, the run manifest's stages)."""
    conf = cfg.to_dict()
    done: dict[str, dict] = {}  # stage -> outputs, for the stages whose output exists
    steps = []
    for spec in GRAPH:
        _, edges = needs(spec, conf)
        waiting = list(dict.fromkeys(source(e) for e in edges if source(e) not in done))
        waiting += [c.replace("_", " ") for c in spec.context if c not in context]
        if waiting:
            steps.append(Step(spec.name, "run", "", [f"after {', '.join(waiting)}"]))
            continue
        inputs = stage_inputs(spec, conf, done, context)
        prefix = stage_prefix(spec.name, stage_key(inputs))
        record = f"{prefix}/{OUTPUTS_FILE}"
        if store.exists(record):
            done[spec.name] = store.get_json(record)["outputs"]
            steps.append(Step(spec.name, "reuse", prefix, [], done[spec.name], inputs))
        else:
            steps.append(Step(spec.name, "run", prefix, explain(inputs, previous.get(spec.name, {}).get("inputs")), None, inputs))
    return steps


def make_plan(store: ArtifactStore, cfg: PipelineConfig, previous: dict) -> Plan:
    steps, context, _ = plan_inputs(store, cfg)
    return Plan(steps, plan_stages(store, cfg, previous, context), context)
