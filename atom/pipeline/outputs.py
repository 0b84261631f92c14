"""What each stage hands to the stages after it: one frozen record per stage.

A stage's outputs are stored as JSON in its record (stages/<stage>/<key>/outputs.json) and in the
run manifest; in the controller they travel as these records, so a misspelt field is an error
where it is written, not a KeyError three stages later. `parts` and `digest` are filled in by
RunContext.stage from the artifacts the stage names: they are the content identity its
dependants' keys are made of (atom.pipeline.graph).

Records written by earlier versions load: fields added since have defaults, and fields a newer
version added are ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Mapping, TypeVar

T = TypeVar("T", bound="StageOutputs")


class OutputsRecordError(ValueError):
    """A stored outputs record that lacks a field its stage needs."""


@dataclass(frozen=True, kw_only=True)
class StageOutputs:
    stage: ClassVar[str] = ""
    items: int = 0  # what the stage counted (motions, pairs, steps, ...): the run summary's figure
    parts: Mapping[str, str] = field(default_factory=dict)  # part name -> digest of its artifacts
    digest: str = ""  # over all parts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as exc:  # a required field is missing
            raise OutputsRecordError(
                f"the {cls.stage} stage's outputs record is incomplete ({exc}); rerun the stage (atomctl {cls.stage})"
            ) from None


@dataclass(frozen=True, kw_only=True)
class PromptsOutputs(StageOutputs):
    stage: ClassVar[str] = "prompts"
    train: str  # prompts.jsonl: the training prompts
    eval: str  # eval-prompts.jsonl: the held-out prompts
    per_task: Mapping[str, int] = field(default_factory=dict)
    eval_items: int = 0


@dataclass(frozen=True, kw_only=True)
class GenerateOutputs(StageOutputs):
    stage: ClassVar[str] = "generate"
    motions: str  # motions.jsonl: a row per (prompt, sample)
    unique_motions: int = 0


@dataclass(frozen=True, kw_only=True)
class RenderOutputs(StageOutputs):
    stage: ClassVar[str] = "render"
    renders: str  # renders.json: motion key -> images, frames, render key


@dataclass(frozen=True, kw_only=True)
class JudgeOutputs(StageOutputs):
    stage: ClassVar[str] = "judge"
    judgements: str  # judgements.jsonl: a row per motion row, with score, rationale and votes
    scored: int = 0
    errors: int = 0
    paid_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True, kw_only=True)
class PairsOutputs(StageOutputs):
    stage: ClassVar[str] = "pairs"
    dataset: str  # motionprefer.jsonl: the scored motions the pairs come from
    pairs: str  # the mixed pair set the train stage reads
    pair_sets: Mapping[str, str] = field(default_factory=dict)  # file name -> key, per task and mixed
    pairs_per_task: Mapping[str, int] = field(default_factory=dict)
    prompts_per_task: Mapping[str, int] = field(default_factory=dict)
    motions_per_task: Mapping[str, int] = field(default_factory=dict)
    motions_dropped_low_agreement: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TrainOutputs(StageOutputs):
    stage: ClassVar[str] = "train"
    job_id: str
    adapter: str  # the LoRA adapter's store prefix
    final_loss: float = 0.0
    final_margin: float = 0.0
    final_accuracy: float = 0.0
    resumed: bool = False


@dataclass(frozen=True, kw_only=True)
class EvaluateOutputs(StageOutputs):
    stage: ClassVar[str] = "evaluate"
    report_json: str
    report_md: str
    plots: tuple[str, ...] = ()
    judge: Mapping[str, Any] = field(default_factory=dict)  # judgement summary per model
    # Not part of the stage's record: where publish_report copied the report (made_under: the
    # stage prefix it came from) and the run browser's index, when built.
    made_under: str = ""
    site: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "plots", tuple(self.plots))  # JSON gives a list


OUTPUT_TYPES: dict[str, type[StageOutputs]] = {
    t.stage: t for t in (PromptsOutputs, GenerateOutputs, RenderOutputs, JudgeOutputs, PairsOutputs, TrainOutputs, EvaluateOutputs)
}


def outputs_from_record(stage: str, d: Mapping[str, Any]) -> StageOutputs:
    """A stage's outputs as stored (outputs.json, the manifest) -> its record type."""
    return OUTPUT_TYPES[stage].from_dict(d)


def need(up: Mapping[str, StageOutputs], kind: type[T]) -> T:
    """The outputs of the upstream stage `kind` is the record of, from a stage's `up`."""
    outputs = up.get(kind.stage)
    if not isinstance(outputs, kind):
        raise KeyError(f"the {kind.stage} stage's outputs are not among this stage's inputs ({sorted(up)})")
    return outputs
