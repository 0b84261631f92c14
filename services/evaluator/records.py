"""Records that cross the evaluator's boundary, the interface every text/motion evaluator meets,
and the names of a report's metrics and rows (report.py computes them, plots.py draws them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

FEATURE_DIM = 263
GENERAL = "general"
# The paper's table order; other task names follow alphabetically.
TASK_ORDER = ("temporal", "frequency", "integrity", GENERAL)
# The text-motion metrics of a report, in the paper's column order, and their titles.
METRICS = ("mm_dist", "r1", "r2", "r3", "fid", "diversity", "mmodality")
METRIC_TITLES = {
    "mm_dist": "MM-Dist",
    "r1": "R@1",
    "r2": "R@2",
    "r3": "R@3",
    "fid": "FID",
    "diversity": "Diversity",
    "mmodality": "MModality",
}
# The report row of real motion against its own captions; no model may take this name.
REAL = "real"


class SampleError(ValueError):
    """A sample record is malformed (no motion, wrong shapes, bad score)."""


class EvaluationCancelled(Exception):
    """The caller went away (deadline, cancel): the evaluation stopped between replications."""


def check_stop(stop) -> None:
    """Raise EvaluationCancelled when `stop` (a threading.Event, or None) is set."""
    if stop is not None and stop.is_set():
        raise EvaluationCancelled("the evaluation was stopped: its caller cancelled or ran out of time")


# Enough for the embedded evaluator (8) and Guo's (4-frame units, two strided convs).
MIN_EVAL_FRAMES = 16


def hold_to_min_length(features: np.ndarray, min_frames: int = MIN_EVAL_FRAMES) -> tuple[np.ndarray, bool]:
    """(features, whether padded): a motion shorter than `min_frames` is held on its last pose to
    that length. The encoders need a few frames, and a very short motion must still count (as the
    near-static motion it is): leaving it out would flatter a model that makes many of them."""
    if len(features) == 0:
        raise SampleError("an empty motion cannot be held to a minimum length")
    if len(features) >= min_frames:
        return features, False
    return np.concatenate([features, np.repeat(features[-1:], min_frames - len(features), axis=0)]), True


@runtime_checkable
class TextMotionEvaluator(Protocol):
    """Maps captions and motions into one embedding space (Guo et al. or the embedded one)."""

    name: str

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_motions(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Un-normalised (T, 263) HumanML3D features -> (N, D) embeddings."""
        ...

    def describe(self) -> dict: ...


@dataclass
class ModelSample:
    """One generated motion for a prompt: what `evaluate` consumes per model.

    Give `features` (un-normalised, (T, 263)) or `joints` ((T, 22, 3), converted with the
    HumanML3D feature extraction). `score` is the judge's score for this motion, if judged.
    Several samples with the same `prompt_id` are generations for one prompt.
    Under the motiongpt protocol, test-split samples also say which `item` and `replication`
    they were generated for (`kind` "general", or "mm" for MultiModality), and `num_tokens`
    how many motion codes the model wrote (-1: unknown).
    """

    text: str
    task: str
    prompt_id: str
    features: np.ndarray | None = None
    joints: np.ndarray | None = None
    score: float | None = None
    kind: str = ""
    item: str = ""
    replication: int = -1
    num_tokens: int = -1

    def __post_init__(self) -> None:
        if self.features is None and self.joints is None:
            raise SampleError(f"sample for prompt {self.prompt_id!r} has neither features nor joints")
        if self.features is not None:
            self.features = np.asarray(self.features, np.float32)
            if self.features.ndim != 2 or self.features.shape[1] != FEATURE_DIM:
                raise SampleError(f"sample for prompt {self.prompt_id!r}: features must be (T, {FEATURE_DIM}), got {self.features.shape}")
        if self.score is not None:
            self.score = float(self.score)
            if not np.isfinite(self.score):
                raise SampleError(f"sample for prompt {self.prompt_id!r}: score must be finite")
        if not self.task:
            raise SampleError(f"sample for prompt {self.prompt_id!r} has no task")


@dataclass
class RealSample:
    """A real (ground-truth) clip with its captions; `texts` may be pre-tagged 'word/POS' strings."""

    clip_id: str
    texts: tuple[str, ...]
    features: np.ndarray
    tags: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.texts = tuple(self.texts)
        if not self.texts:
            raise SampleError(f"real clip {self.clip_id!r} has no caption")
        self.features = np.asarray(self.features, np.float32)
        if self.features.ndim != 2 or self.features.shape[1] != FEATURE_DIM:
            raise SampleError(f"real clip {self.clip_id!r}: features must be (T, {FEATURE_DIM}), got {self.features.shape}")


def order_tasks(tasks) -> list[str]:
    tasks = set(tasks)
    return [t for t in TASK_ORDER if t in tasks] + sorted(tasks - set(TASK_ORDER))
