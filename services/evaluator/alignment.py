"""The AToM objective: event-level judge scores per sub-task, and model A against model B.

The unit of analysis is the prompt: a prompt's score is the mean judge score of its generations,
and CIs run across prompts (generations for one prompt are not independent draws of the model's
ability on the task). With the same number of generations per prompt the task mean equals the
plain mean over motions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from services.evaluator.stats import ConfidenceInterval, StatsInputError, mean_ci, paired_difference_ci


class AlignmentInputError(ValueError):
    """Scores are missing, or two models share no prompt to compare on."""


def per_prompt_means(scored: Iterable[tuple[str, float]]) -> dict[str, float]:
    """(prompt_id, score) pairs -> prompt_id -> mean score, in first-seen order."""
    sums: dict[str, list[float]] = defaultdict(list)
    for pid, score in scored:
        sums[str(pid)].append(float(score))
    return {pid: sum(v) / len(v) for pid, v in sums.items()}


def task_score(prompt_means: Mapping[str, float]) -> ConfidenceInterval:
    """Mean judge score of a task with its 95% CI across prompts."""
    if not prompt_means:
        raise AlignmentInputError("no judged prompts for this task")
    try:
        return mean_ci(list(prompt_means.values()))
    except StatsInputError as exc:
        raise AlignmentInputError(str(exc)) from None


@dataclass(frozen=True)
class WinTieLose:
    win: int
    tie: int
    lose: int

    @property
    def n(self) -> int:
        return self.win + self.tie + self.lose

    @property
    def win_rate(self) -> float:
        return self.win / self.n if self.n else float("nan")

    @property
    def tie_rate(self) -> float:
        return self.tie / self.n if self.n else float("nan")

    @property
    def lose_rate(self) -> float:
        return self.lose / self.n if self.n else float("nan")

    def to_dict(self) -> dict:
        return {"win": self.win, "tie": self.tie, "lose": self.lose}


def _common(a: Mapping[str, float], b: Mapping[str, float]) -> list[str]:
    common = [p for p in a if p in b]
    if not common:
        raise AlignmentInputError("the two models share no judged prompt; compare models on the same prompt set (same prompt_id)")
    return common


def win_tie_lose(a: Mapping[str, float], b: Mapping[str, float], tol: float = 1e-9) -> WinTieLose:
    """Per shared prompt: A wins if its mean score exceeds B's by more than `tol`."""
    win = tie = lose = 0
    for p in _common(a, b):
        d = a[p] - b[p]
        if d > tol:
            win += 1
        elif d < -tol:
            lose += 1
        else:
            tie += 1
    return WinTieLose(win, tie, lose)


def paired_difference(a: Mapping[str, float], b: Mapping[str, float]) -> ConfidenceInterval:
    """Mean over shared prompts of (A's mean score - B's), with its 95% CI.

    `result.above_zero` is the pipeline's check that A improved on B.
    """
    common = _common(a, b)
    return paired_difference_ci([a[p] for p in common], [b[p] for p in common])


@dataclass(frozen=True)
class Comparison:
    task: str
    model: str
    baseline: str
    outcome: WinTieLose
    difference: ConfidenceInterval

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "model": self.model,
            "baseline": self.baseline,
            **self.outcome.to_dict(),
            "win_rate": self.outcome.win_rate,
            "difference": self.difference.to_dict(),
            "improved": self.difference.above_zero,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        return cls(
            d["task"], d["model"], d["baseline"], WinTieLose(d["win"], d["tie"], d["lose"]), ConfidenceInterval.from_dict(d["difference"])
        )


def compare(task: str, model: str, baseline: str, a: Mapping[str, float], b: Mapping[str, float]) -> Comparison:
    return Comparison(task, model, baseline, win_tie_lose(a, b), paired_difference(a, b))
