"""The trainer's two model-building jobs, besides preference training: pretraining the tiny base
model (`pretrain`) and training the embedded text/motion evaluator (`evaluator`), each on a
HumanML3D-layout dataset in the store. The controller asks for them on a first run.

A job is named by its content, as a preference job is: the spec below (dataset prefix and its
content digest, preset, seed, time cap or steps, output prefix) hashes to the job id, so the same
request is the same job, and a finished one whose output is still in the store is not run again.
Both are seeded and deterministic, so a job interrupted by a trainer restart is run again from its
start on the next start of the trainer (or the next request) and makes the same model; they keep
no mid-run checkpoints (minutes of work at most, against a preference job's hours).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass
from typing import Callable, ClassVar, Self

from atom.fields import check_fields
from atom.store import ArtifactStore

PRESETS = ("default", "tiny")


class ModelJobError(ValueError):
    """A pretrain or evaluator job spec is invalid; the message names the field."""


@dataclass
class JobProgress:
    step: int
    total_steps: int
    message: str


@dataclass
class JobOutcome:
    output_prefix: str
    steps: int
    message: str
    figures: dict[str, float]


class JobCancelled(Exception):
    def __init__(self, step: int):
        self.step = step
        super().__init__(f"cancelled after step {step}; start it again to run it from the start")

    def __reduce__(self):  # it crosses from the job's process to the trainer's (job_process.py)
        return type(self), (self.step,)


def _fingerprint(kind: str, spec) -> str:
    canon = json.dumps({"kind": kind, **asdict(spec)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _check_common(spec) -> None:
    for name in ("dataset", "output_prefix"):
        value = getattr(spec, name)
        if not isinstance(value, str) or not value.strip():
            raise ModelJobError(f"{name} must be a non-empty store prefix, got {value!r}")
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool):
        raise ModelJobError(f"seed must be an integer, got {spec.seed!r}")


def _from_dict(cls, d: dict):
    if not isinstance(d, dict):
        raise ModelJobError(f"a job spec must be a JSON object, got {type(d).__name__}")
    check_fields(cls, d, f"{cls.kind} job", ModelJobError)
    try:
        return cls(**d)
    except TypeError as exc:  # a required field is missing
        raise ModelJobError(f"invalid {cls.kind} job: {exc}") from None


class _JobSpec:
    """What both job specs share: a content-named id, and a strict round trip through JSON."""

    kind: ClassVar[str]

    def job_id(self) -> str:
        return f"{self.kind}-" + _fingerprint(self.kind, self)[:16]

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]  # the subclasses are dataclasses

    @classmethod
    def from_dict(cls, d: dict) -> Self:
        return _from_dict(cls, d)


def _checked(cancel: threading.Event, progress: Callable[[JobProgress], None]) -> Callable[[JobProgress], None]:
    """Progress reports that also stop the work when the job is cancelled (between steps)."""

    def report(p: JobProgress) -> None:
        if cancel.is_set():
            raise JobCancelled(p.step)
        progress(p)

    return report


@dataclass(frozen=True)
class PretrainSpec(_JobSpec):
    """Pretrain the tiny base model on `dataset` into the bundle at `output_prefix`."""

    kind = "pretrain"
    dataset: str
    output_prefix: str
    dataset_sha256: str = ""  # the dataset's content digest (the controller's), part of the job's identity
    preset: str = "default"  # "tiny": seconds, for tests and smoke runs
    seed: int = 0
    time_budget_s: float | None = None  # a cap; past it the model depends on the machine's speed

    def __post_init__(self) -> None:
        _check_common(self)
        if self.preset not in PRESETS:
            raise ModelJobError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.time_budget_s is not None and not (isinstance(self.time_budget_s, (int, float)) and self.time_budget_s > 0):
            raise ModelJobError(f"time_budget_s must be a positive number of seconds, got {self.time_budget_s!r}")

    def config(self):
        from services.trainer.pretrain import PretrainConfig

        # As the controller built it in process before: the tiny preset has no time cap.
        if self.preset == "tiny":
            return PretrainConfig.tiny(seed=self.seed)
        return PretrainConfig(time_budget_s=self.time_budget_s, seed=self.seed)

    def output_present(self, store: ArtifactStore) -> bool:
        return store.exists(f"{self.output_prefix}/bundle.json")  # written last by save_bundle

    def cpu_threads(self) -> int:
        return self.config().threads

    def run(self, store: ArtifactStore, progress: Callable[[JobProgress], None], cancel: threading.Event) -> JobOutcome:
        from atom.store.localcache import local_tree
        from services.trainer.pretrain import pretrain

        cfg = self.config()
        total = cfg.vq_steps + cfg.lm_steps
        report = _checked(cancel, progress)
        offset = {"data": 0, "vqvae": 0, "lm": cfg.vq_steps, "save": total}

        def on_stage(stage: str, done: int, stage_total: int, message: str) -> None:
            report(JobProgress(min(total, offset.get(stage, 0) + (done if stage in ("vqvae", "lm") else 0)), total, f"{stage}: {message}"))

        report(JobProgress(0, total, f"copying the dataset {self.dataset} from the store"))
        root = local_tree(store, self.dataset)
        # The store prefix, not the local cache path, is recorded as the bundle's data: the bundle
        # manifest is the model's identity (hashed into every motion's key), and the cache path
        # differs from machine to machine.
        r = pretrain(root, store, self.output_prefix, cfg, progress=on_stage, dataset_name=self.dataset)
        figures = {
            "vq_steps": cfg.vq_steps,
            "lm_steps": cfg.lm_steps,
            "vq_steps_done": r.vq_steps_done,
            "lm_steps_done": r.lm_steps_done,
            "stopped_early": float(r.stopped_early),
            "vq_recon_loss": r.vq_recon_loss,
            "vq_perplexity": r.vq_perplexity,
            "codes_used": r.codes_used,
            "vq_mpjpe_mm": r.vq_mpjpe_mm,
            "vq_mpjpe_rootrel_mm": r.vq_mpjpe_rootrel_mm,
            "lm_train_loss": r.lm_train_loss,
            "lm_eval_loss": r.lm_eval_loss,
            "train_clips": r.num_train_clips,
            "seconds": r.seconds_total,
        }
        return JobOutcome(
            self.output_prefix,
            r.vq_steps_done + r.lm_steps_done,
            f"done: {r.vq_steps_done} VQ-VAE and {r.lm_steps_done} language-model steps in {r.seconds_total:.0f} s",
            {k: float(v) for k, v in figures.items() if v is not None},
        )


@dataclass(frozen=True)
class EvaluatorSpec(_JobSpec):
    """Train the embedded text/motion evaluator on `dataset` into `output_prefix`."""

    kind = "evaluator"
    dataset: str
    output_prefix: str
    dataset_sha256: str = ""
    seed: int = 0
    steps: int | None = None  # None: the model's default (atom.embedded_evaluator.EmbeddedConfig)

    def __post_init__(self) -> None:
        _check_common(self)
        if self.steps is not None and (not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1):
            raise ModelJobError(f"steps must be a positive integer, got {self.steps!r}")

    def config(self):
        from atom.embedded_evaluator import EmbeddedConfig

        return EmbeddedConfig(seed=self.seed, steps=self.steps or EmbeddedConfig().steps)

    def output_present(self, store: ArtifactStore) -> bool:
        return store.exists(f"{self.output_prefix}/evaluator.json")  # saved after the weights

    def cpu_threads(self) -> int:
        return self.config().num_threads

    def run(self, store: ArtifactStore, progress: Callable[[JobProgress], None], cancel: threading.Event) -> JobOutcome:
        from atom.store.localcache import local_tree
        from services.trainer.evaluator_training import train_embedded_evaluator

        cfg = self.config()
        report = _checked(cancel, progress)
        report(JobProgress(0, cfg.steps, f"copying the dataset {self.dataset} from the store"))
        root = local_tree(store, self.dataset)
        ev = train_embedded_evaluator(root, cfg, lambda msg, step, steps: report(JobProgress(step, steps, msg)))
        ev.save(store, self.output_prefix)
        s = ev.summary
        return JobOutcome(
            self.output_prefix,
            cfg.steps,
            f"done: {cfg.steps} steps on {s['train_clips']} clips in {s['train_seconds']:.0f} s",
            {k: float(s[k]) for k in ("train_clips", "steps", "final_loss", "temperature", "train_seconds")},
        )


SPECS: dict[str, type[PretrainSpec] | type[EvaluatorSpec]] = {PretrainSpec.kind: PretrainSpec, EvaluatorSpec.kind: EvaluatorSpec}
