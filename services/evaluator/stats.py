"""Replication statistics: mean +- 1.96 * population std / sqrt(n) (as Guo et al.'s text-to-motion
evaluation and MotionGPT's test.py report them)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

Z_95 = 1.96


class StatsInputError(ValueError):
    """Values for a confidence interval are empty, mismatched or not finite."""


@dataclass(frozen=True)
class ConfidenceInterval:
    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def above_zero(self) -> bool:
        """The whole interval lies above zero (the improvement is significant at 95%)."""
        return self.low > 0.0

    def format(self, digits: int = 3) -> str:
        if math.isnan(self.mean):
            return "n/a"
        # + 0.0 turns a rounded -0.000 into 0.000
        mean = round(self.mean, digits) + 0.0
        return f"{mean:.{digits}f} ± {self.half_width:.{digits}f}"

    def to_dict(self) -> dict:
        return {"mean": _json_float(self.mean), "ci95": _json_float(self.half_width), "n": self.n}

    @classmethod
    def from_dict(cls, d: dict) -> "ConfidenceInterval":
        mean = d["mean"]
        half = d["ci95"]
        return cls(float("nan") if mean is None else float(mean), float("nan") if half is None else float(half), int(d["n"]))


NAN_CI = ConfidenceInterval(float("nan"), float("nan"), 0)


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def mean_ci(values: Sequence[float] | np.ndarray, z: float = Z_95) -> ConfidenceInterval:
    """Mean and z * population std / sqrt(n) of a set of replications or per-unit values."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise StatsInputError("a confidence interval needs at least one value")
    if not np.all(np.isfinite(v)):
        raise StatsInputError(f"values must be finite, got {v.tolist()}")
    return ConfidenceInterval(float(v.mean()), float(z * v.std(ddof=0) / math.sqrt(v.size)), int(v.size))


def paired_difference_ci(a: Sequence[float], b: Sequence[float], z: float = Z_95) -> ConfidenceInterval:
    """CI of the mean of a_i - b_i over paired units (same prompt, same replication)."""
    a_ = np.asarray(a, dtype=np.float64).reshape(-1)
    b_ = np.asarray(b, dtype=np.float64).reshape(-1)
    if a_.shape != b_.shape:
        raise StatsInputError(f"paired values must have the same length, got {a_.size} and {b_.size}")
    return mean_ci(a_ - b_, z)
