"""Agreement between two judges (or a judge and human labels) on the same motions: pure statistics
and the score-file reader, shared by the judge service (calibration, the kinematic judge's
self-check) and the controller (`atomctl judge agree`)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import stats


class AgreementInputError(ValueError):
    """Score lists or label files that cannot be compared; the message says what is wrong."""


@dataclass
class AgreementReport:
    name_a: str
    name_b: str
    n: int  # pairs where both judges gave a score
    skipped: int  # pairs dropped because one side has no score (or, by id, ids on one side only)
    exact: float  # share of identical scores
    within_one: float  # share with |a - b| <= 1
    mean_abs_diff: float
    spearman: float | None  # None when undefined (fewer than 2 pairs or a constant side)
    spearman_p: float | None
    kappa: float | None  # Cohen's kappa (unweighted); None when chance agreement is 1
    labels: list[int]
    confusion: list[list[int]]  # rows: name_a's score, columns: name_b's score, in `labels` order

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        def f(x, spec=".3f"):
            return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)

        lines = [
            f"agreement {self.name_a} vs {self.name_b}: n={self.n} (skipped {self.skipped})",
            f"  exact match    {f(self.exact)}",
            f"  within one     {f(self.within_one)}",
            f"  mean |diff|    {f(self.mean_abs_diff)}",
            f"  Spearman rho   {f(self.spearman)} (p={f(self.spearman_p, '.2g')})",
            f"  Cohen's kappa  {f(self.kappa)}",
            f"  confusion (rows {self.name_a}, columns {self.name_b}):",
        ]
        w = max([len(str(v)) for row in self.confusion for v in row] + [len(str(lab)) for lab in self.labels] + [3])
        lines.append("    " + " " * (w + 1) + " ".join(f"{lab:>{w}}" for lab in self.labels))
        for lab, row in zip(self.labels, self.confusion):
            lines.append(f"    {lab:>{w}} " + " ".join(f"{v:>{w}}" for v in row))
        return "\n".join(lines)


def _as_score(v, where: str) -> int | None:
    if v is None or (isinstance(v, str) and v.strip() in ("", "None", "null", "NA", "nan")):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise AgreementInputError(f"{where}: score {v!r} is not a number") from None
    if math.isnan(f):
        return None
    if not f.is_integer():
        raise AgreementInputError(f"{where}: score {v!r} is not an integer")
    return int(f)


def agreement(a: Sequence, b: Sequence, labels: Sequence[int] | None = None, names: tuple[str, str] = ("a", "b")) -> AgreementReport:
    """Compare two aligned score lists; positions where either side is None are skipped."""
    if len(a) != len(b):
        raise AgreementInputError(f"score lists differ in length: {len(a)} vs {len(b)}; align them by item first")
    pairs = []
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = _as_score(x, f"{names[0]}[{i}]"), _as_score(y, f"{names[1]}[{i}]")
        if x is not None and y is not None:
            pairs.append((x, y))
    skipped = len(a) - len(pairs)
    labs = sorted(set(labels) if labels is not None else {v for p in pairs for v in p})
    index = {lab: k for k, lab in enumerate(labs)}
    conf = np.zeros((len(labs), len(labs)), dtype=int)
    for x, y in pairs:
        if x not in index or y not in index:
            raise AgreementInputError(f"score {x if x not in index else y} is not among the labels {labs}")
        conf[index[x], index[y]] += 1
    n = len(pairs)
    if n == 0:
        return AgreementReport(
            names[0], names[1], 0, skipped, float("nan"), float("nan"), float("nan"), None, None, None, labs, conf.tolist()
        )
    xa = np.array([p[0] for p in pairs], float)
    xb = np.array([p[1] for p in pairs], float)
    diff = np.abs(xa - xb)
    rho = p_val = None
    if n >= 2 and np.ptp(xa) > 0 and np.ptp(xb) > 0:
        res = stats.spearmanr(xa, xb)
        rho, p_val = float(res.statistic), float(res.pvalue)
    p_o = float(np.mean(diff == 0))
    p_e = float(np.sum(conf.sum(1) / n * conf.sum(0) / n))
    kappa = None if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)
    return AgreementReport(
        names[0], names[1], n, skipped, p_o, float(np.mean(diff <= 1)), float(diff.mean()), rho, p_val, kappa, labs, conf.tolist()
    )


def agreement_by_id(
    a: Mapping[str, object], b: Mapping[str, object], labels: Sequence[int] | None = None, names: tuple[str, str] = ("a", "b")
) -> AgreementReport:
    """Compare scores keyed by item id over the ids both sides have; ids on one side only count
    as skipped."""
    common = sorted(set(a) & set(b))
    rep = agreement([a[k] for k in common], [b[k] for k in common], labels, names)
    rep.skipped += len(set(a) ^ set(b))
    return rep


def load_scores(path: str | Path | None = None, data: bytes | str | None = None, fmt: str | None = None) -> dict:
    """Scores keyed by item id from a CSV (header with item_id and score columns) or a JSONL file
    (one {"item_id": ..., "score": ...} per line). An empty score means no score."""
    if data is None:
        if path is None:
            raise AgreementInputError("give a path or the file's data")
        data = Path(path).read_bytes()
    text = data.decode() if isinstance(data, bytes) else data
    fmt = fmt or ("jsonl" if path and str(path).endswith((".jsonl", ".json")) else "jsonl" if text.lstrip().startswith("{") else "csv")
    out: dict[str, int | None] = {}
    if fmt == "jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                item, score = str(obj["item_id"]), obj.get("score")
            except (ValueError, KeyError, TypeError):
                raise AgreementInputError(f"line {n}: expected a JSON object with item_id and score") from None
            out[item] = _as_score(score, f"line {n}")
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"item_id", "score"} <= set(reader.fieldnames):
            raise AgreementInputError(f"CSV needs a header with item_id and score columns, got {reader.fieldnames}")
        for n, row in enumerate(reader, 2):
            out[str(row["item_id"])] = _as_score(row["score"], f"line {n}")
    else:
        raise AgreementInputError(f"unknown score file format {fmt!r}; use csv or jsonl")
    return out
