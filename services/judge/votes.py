"""Self-consistency: ask one question N times, keep the majority score and how reliable it is.

Pure functions, no network. The VLM judge (services/judge/vlm.py, config.votes > 1) asks each
question N times, vote i with temperature `vote_temperature` and seed `vote_seed + i` in the
request; the frames are always sent in their time order (only the sampling changes). Each vote is
its own cached question (the cache key holds the vote index, temperature and seed), so raising N
from 3 to 5 pays only for votes 4 and 5.

Majority rules (`majority`):
- the score given by most votes wins; a tie between scores goes to the LOWER score (the judge
  is not sure the motion earned more, so it is not credited with more);
- agreement = votes for the winning score / votes asked. A failed vote (no score) counts as a
  vote against, so 2 good votes out of 5 cannot look unanimous;
- entropy = Shannon entropy of the valid votes' score distribution divided by log(min(K, n)),
  K = the task's number of allowed scores and n = valid votes: 0 = unanimous, 1 = as spread as n
  votes over K scores can be.

Pairs (`filter_pairs`): a preference pair is only as reliable as its less reliable side; it is
kept when both the chosen and the rejected judgement reach `min_agreement`. A judgement without
votes (one answer, or the kinematic judge) has agreement 1.0.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Vote:
    """One sampling of a question: its index (0-based), temperature and seed."""

    index: int
    temperature: float
    seed: int

    def key_fields(self) -> dict:
        """What the cache key adds for this vote."""
        return {"vote": self.index, "vote_temperature": float(self.temperature), "vote_seed": self.seed}


def vote_plan(votes: int, temperature: float, seed: int = 0) -> list[Vote]:
    """Votes 0..votes-1; vote i is seeded `seed + i`, so vote i is the same question in every run."""
    if votes < 1:
        raise ValueError(f"votes must be >= 1, got {votes}")
    if temperature < 0:
        raise ValueError(f"vote_temperature must be >= 0, got {temperature}")
    return [Vote(i, float(temperature), seed + i) for i in range(votes)]


@dataclass(frozen=True)
class VoteResult:
    score: int | None  # the majority score; None when no vote gave a score
    agreement: float  # votes for `score` / votes asked (0.0 when there is no score)
    entropy: float  # normalised Shannon entropy of the valid votes (0 = unanimous)
    votes: tuple[int | None, ...]  # every vote's score in vote order, None = failed

    @property
    def asked(self) -> int:
        return len(self.votes)

    @property
    def valid(self) -> int:
        return sum(v is not None for v in self.votes)

    def to_dict(self) -> dict:
        return {"score": self.score, "agreement": self.agreement, "entropy": self.entropy, "votes": list(self.votes)}


def normalised_entropy(counts: Sequence[int], n_labels: int) -> float:
    """H(p) / log(min(n_labels, n)), n = sum(counts); 0.0 when fewer than two outcomes are possible."""
    n = sum(counts)
    cap = min(n_labels, n)
    if n == 0 or cap < 2:
        return 0.0
    h = -sum(c / n * math.log(c / n) for c in counts if c > 0)
    return min(1.0, max(0.0, h / math.log(cap)))


def majority(scores: Sequence[int | None], allowed: Sequence[int]) -> VoteResult:
    """The majority of `scores` (None = a vote that gave no score); ties go to the lower score."""
    if not scores:
        raise ValueError("no votes")
    valid = [s for s in scores if s is not None]
    bad = sorted({s for s in valid if s not in allowed})
    if bad:
        raise ValueError(f"votes {bad} are not among the allowed scores {list(allowed)}")
    if not valid:
        return VoteResult(None, 0.0, 0.0, tuple(scores))
    counts = Counter(valid)
    top = max(counts.values())
    winner = min(s for s, c in counts.items() if c == top)  # tie -> the lower score
    return VoteResult(winner, top / len(scores), normalised_entropy(list(counts.values()), len(allowed)), tuple(scores))


# -- pairs ------------------------------------------------------------------------------------------


def agreement_of(judgement) -> float:
    """The agreement a judgement carries: a Judgement's extra["agreement"], a dict's "agreement"
    (or its extra's); 1.0 when it was answered once (no votes)."""
    if judgement is None:
        return 0.0
    if isinstance(judgement, (int, float)) and not isinstance(judgement, bool):
        return float(judgement)
    d: Mapping[str, Any] = judgement if isinstance(judgement, Mapping) else {"extra": getattr(judgement, "extra", {}) or {}}
    value = d.get("agreement", (d.get("extra") or {}).get("agreement"))
    return 1.0 if value is None else float(value)


@dataclass(frozen=True)
class PairVotes:
    """A preference pair's identity and the agreement of both of its judgements."""

    pair_id: str
    task: str
    chosen_agreement: float
    rejected_agreement: float

    @classmethod
    def of(cls, pair_id: str, task: str, chosen, rejected) -> "PairVotes":
        """From judgements (Judgement objects, dicts, or agreement floats)."""
        return cls(pair_id, task, agreement_of(chosen), agreement_of(rejected))

    @property
    def agreement(self) -> float:
        return min(self.chosen_agreement, self.rejected_agreement)


@dataclass
class PairFilter:
    min_agreement: float
    kept: list[str] = field(default_factory=list)  # pair ids, in input order
    dropped: list[str] = field(default_factory=list)
    kept_per_task: dict[str, int] = field(default_factory=dict)
    dropped_per_task: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_count(self) -> int:
        return len(self.dropped)

    def to_dict(self) -> dict:
        return asdict(self)


def filter_pairs(pairs: Iterable[PairVotes], min_agreement: float) -> PairFilter:
    """Keep a pair when both of its judgements reach min_agreement (0 keeps every pair)."""
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be within 0..1, got {min_agreement}")
    out = PairFilter(min_agreement)
    for p in pairs:
        keep = p.agreement >= min_agreement - 1e-12
        (out.kept if keep else out.dropped).append(p.pair_id)
        per = out.kept_per_task if keep else out.dropped_per_task
        per[p.task] = per.get(p.task, 0) + 1
    return out


# -- per-task summary ---------------------------------------------------------------------------------


@dataclass
class TaskVoteSummary:
    task: str
    judged: int  # judgements with a score
    mean_agreement: float | None
    unanimous: float | None  # share of judgements whose every vote agreed
    mean_entropy: float | None
    scores: dict[int, int]  # majority score -> judgements
    pairs_kept: int = 0
    pairs_dropped: int = 0


def _result_of(j) -> VoteResult | None:
    """A VoteResult from a Judgement's extra (or a dict with score/agreement/entropy/votes)."""
    d = j if isinstance(j, Mapping) else {"score": getattr(j, "score", None), **(getattr(j, "extra", {}) or {})}
    if d.get("score") is None:
        return None
    votes = tuple(d.get("votes") or (d["score"],))
    return VoteResult(int(d["score"]), float(d.get("agreement", 1.0)), float(d.get("entropy", 0.0)), votes)


def summarize_votes(judgements_by_task: Mapping[str, Iterable], pairs: PairFilter | None = None) -> dict[str, TaskVoteSummary]:
    """Per task: agreement rate, unanimity, entropy, the distribution of majority scores and (given
    a PairFilter) the pairs kept and dropped."""
    out: dict[str, TaskVoteSummary] = {}
    for task, js in judgements_by_task.items():
        results = [r for r in (_result_of(j) for j in js) if r is not None]
        n = len(results)

        def mean(xs):
            return sum(xs) / n if n else None

        out[task] = TaskVoteSummary(
            task,
            n,
            mean([r.agreement for r in results]),
            mean([float(r.agreement >= 1.0) for r in results]),
            mean([r.entropy for r in results]),
            dict(sorted(Counter(r.score for r in results if r.score is not None).items())),
            pairs.kept_per_task.get(task, 0) if pairs else 0,
            pairs.dropped_per_task.get(task, 0) if pairs else 0,
        )
    return out


def format_vote_summary(summary: Mapping[str, TaskVoteSummary]) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    lines = [f"{'task':<10} {'judged':>6} {'agree':>6} {'unanim':>6} {'entropy':>7} {'kept':>5} {'dropped':>7}  scores"]
    for s in summary.values():
        scores = " ".join(f"{k}:{v}" for k, v in s.scores.items())
        lines.append(
            f"{s.task:<10} {s.judged:>6} {f(s.mean_agreement):>6} {f(s.unanimous):>6} "
            f"{f(s.mean_entropy):>7} {s.pairs_kept:>5} {s.pairs_dropped:>7}  {scores}"
        )
    return "\n".join(lines)
