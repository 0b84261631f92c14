"""Algorithm 1 of the paper: preference pairs from judged motions.

Per sub-task: group the records by identical prompt, sort each group by score descending, and
for every (i, j) with i < j and r_i - r_j > theta emit (chosen = m_i, rejected = m_j, prompt).
Score filtering (on by default): only a sample scoring above the task's threshold may be chosen.

Ties in score are ordered by motion key, so the pairs do not depend on the order the judge
returned its results in (parallel judging returns them in any order).

The per-sub-task counts of prompts, motions and pairs (the paper's Table 3) are here too: they
count what Algorithm 1 builds.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Mapping, Sequence

from atom.motion.events import TASKS
from atom.store import ArtifactInfo, ArtifactStore
from atom.store.jsonl import encode_jsonl_row, iter_jsonl_chunks
from services.trainer.motionprefer import (
    MotionPreferFormatError,
    PreferenceRecord,
    check_labels,
    check_score,
    check_text,
    check_tokens,
    iter_jsonl,
    to_jsonl,
)

# The top score of each sub-task's scoring rules (the AToM paper, Han et al., CVPR 2025).
TASK_MAX_SCORE = {"integrity": 5.0, "temporal": 5.0, "frequency": 3.0}
# The paper filters "chosen must score above 3". Frequency is scored 3/2/1, so "> 3" would leave
# it with no pairs at all; its threshold is 2: only a motion with the right action and the right
# count may be chosen, the same bar ("the request is met") the 5-point tasks' "> 3" sets.
DEFAULT_CHOSEN_THRESHOLD = {"integrity": 3.0, "temporal": 3.0, "frequency": 2.0}


class PairConfigError(ValueError):
    """Invalid pair-building settings; the message says which and what is allowed."""


@dataclass(frozen=True)
class PairConfig:
    theta: float = 0.0  # strict margin: r_i - r_j > theta
    score_filter: bool = True
    chosen_threshold: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CHOSEN_THRESHOLD))

    def __post_init__(self) -> None:
        if isinstance(self.theta, bool) or not isinstance(self.theta, (int, float)) or not math.isfinite(self.theta):
            raise PairConfigError(f"theta must be a finite number, got {self.theta!r}")
        if self.theta < 0:
            # With a negative theta two equal scores would form a pair whose chosen side is an
            # accident of ordering.
            raise PairConfigError(f"theta must be >= 0, got {self.theta}")
        bad = sorted(set(self.chosen_threshold) - set(TASKS))
        if bad:
            raise PairConfigError(f"chosen_threshold names unknown task(s) {bad}; tasks: {list(TASKS)}")
        for task, value in self.chosen_threshold.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise PairConfigError(f"chosen_threshold[{task!r}] must be a finite number, got {value!r}")

    @classmethod
    def with_min_chosen_score(cls, min_chosen_score: float | None, theta: float = 0.0, score_filter: bool = True) -> "PairConfig":
        """One threshold for every sub-task (None: the per-task defaults). Note that frequency is
        scored 1..3, so a single threshold of 3 leaves it with no pairs."""
        if min_chosen_score is None:
            return cls(theta=theta, score_filter=score_filter)
        return cls(theta=theta, score_filter=score_filter, chosen_threshold={t: float(min_chosen_score) for t in TASKS})

    def threshold(self, task: str) -> float | None:
        """The score a chosen sample must exceed, or None when filtering is off."""
        if not self.score_filter:
            return None
        return float(self.chosen_threshold.get(task, DEFAULT_CHOSEN_THRESHOLD[task]))

    def to_dict(self) -> dict:
        return {"theta": self.theta, "score_filter": self.score_filter, "chosen_threshold": dict(self.chosen_threshold)}


@dataclass(frozen=True)
class PreferencePair:
    task: str
    prompt_id: str
    prompt: str
    labels: dict
    chosen_key: str
    rejected_key: str
    chosen_score: float
    rejected_score: float
    chosen_tokens: tuple[int, ...] | None = None
    rejected_tokens: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "chosen_score", float(self.chosen_score))
        object.__setattr__(self, "rejected_score", float(self.rejected_score))
        for name in ("chosen_tokens", "rejected_tokens"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(t) for t in value))

    @property
    def pair_id(self) -> str:
        """Stable identity of the pair, independent of scores and token storage."""
        ident = json.dumps([self.task, self.prompt, self.chosen_key, self.rejected_key])
        return hashlib.sha256(ident.encode()).hexdigest()[:24]

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "prompt_id": self.prompt_id,
            "prompt": self.prompt,
            "labels": self.labels,
            "chosen_key": self.chosen_key,
            "rejected_key": self.rejected_key,
            "chosen_score": self.chosen_score,
            "rejected_score": self.rejected_score,
            "chosen_tokens": list(self.chosen_tokens) if self.chosen_tokens is not None else None,
            "rejected_tokens": list(self.rejected_tokens) if self.rejected_tokens is not None else None,
        }

    @classmethod
    def from_dict(cls, d, where: str = "pair") -> "PreferencePair":
        if not isinstance(d, dict):
            raise MotionPreferFormatError(f"{where}: expected a JSON object, got {type(d).__name__}")
        required = ("task", "prompt_id", "prompt", "labels", "chosen_key", "rejected_key", "chosen_score", "rejected_score")
        missing = [k for k in required if k not in d]
        if missing:
            raise MotionPreferFormatError(f"{where}: missing field(s) {missing}")
        unknown = sorted(set(d) - set(required) - {"chosen_tokens", "rejected_tokens"})
        if unknown:
            raise MotionPreferFormatError(f"{where}: unknown field(s) {unknown}")
        if d["task"] not in TASKS:
            raise MotionPreferFormatError(f"{where}: field 'task': expected one of {list(TASKS)}, got {d['task']!r}")
        for name in ("prompt_id", "prompt", "chosen_key", "rejected_key"):
            check_text(d[name], f"{where}: field {name!r}")
        if d["chosen_key"] == d["rejected_key"]:
            raise MotionPreferFormatError(f"{where}: chosen_key and rejected_key are the same motion {d['chosen_key']!r}")
        return cls(
            task=d["task"],
            prompt_id=d["prompt_id"],
            prompt=d["prompt"],
            labels=check_labels(d["labels"], d["task"], f"{where}: field 'labels'"),
            chosen_key=d["chosen_key"],
            rejected_key=d["rejected_key"],
            chosen_score=check_score(d["chosen_score"], f"{where}: field 'chosen_score'"),
            rejected_score=check_score(d["rejected_score"], f"{where}: field 'rejected_score'"),
            chosen_tokens=check_tokens(d.get("chosen_tokens"), f"{where}: field 'chosen_tokens'"),
            rejected_tokens=check_tokens(d.get("rejected_tokens"), f"{where}: field 'rejected_tokens'"),
        )


def _dedupe_group(group: Sequence[PreferenceRecord]) -> list[PreferenceRecord]:
    """One record per motion. The same motion can appear twice for one prompt (two samples that
    decoded to identical codes share a content-addressed key); Algorithm 1 must not pair a motion
    with itself, and two different scores for one motion mean the input is inconsistent."""
    by_key: dict[str, PreferenceRecord] = {}
    for r in group:
        seen = by_key.get(r.motion_key)
        if seen is None:
            by_key[r.motion_key] = r
        elif seen.score != r.score:
            raise MotionPreferFormatError(
                f"motion {r.motion_key!r} has two scores ({seen.score} and {r.score}) for prompt {r.prompt!r}; "
                "keep one judgement per motion (e.g. from a single judge) before building pairs"
            )
    return list(by_key.values())


def rank_group(group: Sequence[PreferenceRecord]) -> list[PreferenceRecord]:
    """Score descending; ties by motion key, so the order does not depend on input order."""
    return sorted(group, key=lambda r: (-r.score, r.motion_key))


def pairs_from_group(ranked: Sequence[PreferenceRecord], theta: float, threshold: float | None) -> list[tuple[int, int]]:
    """Index pairs (i, j), i < j, of a score-sorted group that Algorithm 1 keeps."""
    out = []
    for i in range(len(ranked)):
        if threshold is not None and not ranked[i].score > threshold:
            break  # sorted descending: no later sample passes the filter either
        for j in range(i + 1, len(ranked)):
            if ranked[i].score - ranked[j].score > theta:
                out.append((i, j))
    return out


def build_task_pairs(records: Sequence[PreferenceRecord], task: str, config: PairConfig | None = None) -> list[PreferencePair]:
    """Algorithm 1 for one sub-task. Records of other sub-tasks are ignored."""
    if task not in TASKS:
        raise PairConfigError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    config = config or PairConfig()
    groups: dict[str, list[PreferenceRecord]] = defaultdict(list)
    for r in records:
        if r.task == task:
            groups[r.prompt].append(r)
    pairs = []
    for prompt in sorted(groups):
        pairs += group_pairs(groups[prompt], task, prompt, config)
    return pairs


def group_pairs(group: Sequence[PreferenceRecord], task: str, prompt: str, config: PairConfig) -> list[PreferencePair]:
    """Algorithm 1 for one prompt's records of one sub-task."""
    ranked = rank_group(_dedupe_group(group))
    out = []
    for i, j in pairs_from_group(ranked, config.theta, config.threshold(task)):
        won, lost = ranked[i], ranked[j]
        out.append(
            PreferencePair(
                task=task,
                prompt_id=won.prompt_id,
                prompt=prompt,
                labels=won.labels,
                chosen_key=won.motion_key,
                rejected_key=lost.motion_key,
                chosen_score=won.score,
                rejected_score=lost.score,
                chosen_tokens=won.tokens,
                rejected_tokens=lost.tokens,
            )
        )
    return out


def build_pairs(records: Sequence[PreferenceRecord], config: PairConfig | None = None) -> dict[str, list[PreferencePair]]:
    """Algorithm 1 for every sub-task present in the records."""
    present = {r.task for r in records}
    return {task: build_task_pairs(records, task, config) for task in TASKS if task in present}


class MixedSetTooLarge(ValueError):
    """More mixed pairs were asked for than exist."""


def sample_mixed(
    pairs_by_task: Mapping[str, Sequence[PreferencePair]], size: int, seed: int = 0, strict: bool = True
) -> list[PreferencePair]:
    """A mixed set of `size` pairs drawn uniformly without replacement from all sub-tasks (the
    paper's 3.5K mixed set). Each pair is ranked by sha256(seed, pair id), so the draw depends only
    on the seed and the pairs, not on their order or the Python version. With strict=False a size
    larger than the pool returns the whole pool."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise PairConfigError(f"mixed set size must be a positive integer, got {size!r}")
    pool = {p.pair_id: p for pairs in pairs_by_task.values() for p in pairs}
    if size > len(pool):
        if strict:
            raise MixedSetTooLarge(
                f"asked for a mixed set of {size} pairs but only {len(pool)} distinct pairs exist; "
                "ask for fewer or pass strict=False to take them all"
            )
        size = len(pool)

    def rank(pid: str) -> str:
        return hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest()

    chosen = sorted(pool, key=rank)[:size]
    return [pool[pid] for pid in chosen]


# -- JSONL ------------------------------------------------------------------------------------


def pairs_to_jsonl(pairs: Sequence[PreferencePair]) -> bytes:
    return to_jsonl(p.to_dict() for p in pairs)


def parse_pairs(data: bytes, source: str = "pairs.jsonl") -> list[PreferencePair]:
    return [PreferencePair.from_dict(obj, where) for where, obj in iter_jsonl(data, source)]


def save_pairs(store: ArtifactStore, key: str, pairs: Sequence[PreferencePair]) -> ArtifactInfo:
    return store.put_bytes(key, pairs_to_jsonl(pairs), "application/x-ndjson")


def load_pairs(store: ArtifactStore, key: str) -> list[PreferencePair]:
    return parse_pairs(store.get_bytes(key), source=key)


# -- statistics (the paper's Table 3) -----------------------------------------------------------


@dataclass(frozen=True)
class TaskStats:
    task: str  # a sub-task, or "total"
    prompts: int
    motions: int
    pairs: int

    def to_dict(self) -> dict:
        return {"task": self.task, "prompts": self.prompts, "motions": self.motions, "pairs": self.pairs}


def dataset_stats(records: Sequence[PreferenceRecord], pair_config=None) -> list[TaskStats]:
    """Prompts (distinct prompt texts), motions (records) and Algorithm 1 pairs per sub-task,
    then a total row; sub-tasks with no records are left out."""
    pair_config = pair_config or PairConfig()
    rows = []
    for task in TASKS:
        task_records = [r for r in records if r.task == task]
        if not task_records:
            continue
        pairs = build_task_pairs(task_records, task, pair_config)
        rows.append(TaskStats(task, len({r.prompt for r in task_records}), len(task_records), len(pairs)))
    rows.append(TaskStats("total", sum(r.prompts for r in rows), sum(r.motions for r in rows), sum(r.pairs for r in rows)))
    return rows


def format_stats(rows: Sequence[TaskStats]) -> str:
    """A Markdown table like the paper's Table 3."""
    lines = ["| sub-task | prompts | motions | pairs |", "|---|---:|---:|---:|"]
    lines += [f"| {r.task} | {r.prompts} | {r.motions} | {r.pairs} |" for r in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class PairSetFile:
    name: str  # a sub-task or "mixed"
    key: str
    pairs: int


@dataclass(frozen=True)
class PairSets:
    files: list[PairSetFile]
    stats: list[TaskStats]  # per sub-task, then "total"
    stats_key: str


def build_pair_sets(
    store: ArtifactStore, records_key: str, out_prefix: str, config: PairConfig | None = None, mixed_size: int | None = None, seed: int = 0
) -> PairSets:
    """Read MotionPrefer records and write, under out_prefix: pairs-<task>.jsonl per sub-task;
    pairs-mixed.jsonl when mixed_size is given (0 = every pair, in seeded order; a size larger
    than the pool takes the whole pool); stats.json with the Table 3 counts.

    The files are those of build_pairs, sample_mixed and dataset_stats on the whole list, but
    memory does not hold the records or the pairs: the records are read line by line into a
    temporary file per sub-task (an index keeps where each prompt's records lie: one entry per
    run of a prompt's consecutive records, so one per prompt for the pairs stage's input, which
    comes prompt by prompt), each prompt's group is read back to build its pairs, and the pairs go
    straight to their file and to a temporary file the mixed set is copied from. What grows with
    the pairs is the mixed set's ranking: one (rank, place) entry per pair with mixed_size 0 (every
    pair, in seeded order), at most 2 x mixed_size otherwise."""
    if mixed_size is not None and mixed_size < 0:  # checked before anything is written
        raise ValueError(f"mixed_size must be >= 0 (0 = every pair), got {mixed_size}")
    config = config or PairConfig()
    prefix = out_prefix.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="atom-pairs-") as tmp:
        spools = {task: open(Path(tmp, f"records-{task}.jsonl"), "w+b") for task in TASKS}
        pair_spool = open(Path(tmp, "pairs.jsonl"), "w+b")
        try:
            runs, motions = _spool_records(store, records_key, spools)
            files, counts = [], {}
            ranked: list[tuple[str, int, int]] = []  # (rank, offset, length) in pair_spool, for the mixed set
            for task in TASKS:
                if task not in runs:
                    continue  # no records of this sub-task: no file, no row (as build_pairs)
                key = f"{prefix}/pairs-{task}.jsonl"
                with store.open_writer(key, "application/x-ndjson") as sink:
                    counts[task] = 0
                    for prompt in sorted(runs[task]):
                        for pair in group_pairs(_read_group(spools[task], runs[task][prompt]), task, prompt, config):
                            line = encode_jsonl_row(pair.to_dict())
                            sink.write(line)
                            counts[task] += 1
                            if mixed_size is not None:
                                ranked.append((_mixed_rank(seed, pair.pair_id), pair_spool.tell(), len(line)))
                                pair_spool.write(line)
                                if mixed_size and len(ranked) >= 2 * mixed_size:  # only the first mixed_size can be drawn
                                    ranked.sort()
                                    del ranked[mixed_size:]
                files.append(PairSetFile(task, key, counts[task]))
            if mixed_size is not None:
                # Every pair is a distinct pair id (one group per prompt, one record per motion in
                # it), so the pool is every pair, as sample_mixed's dict of them was.
                pool = sum(counts.values())
                size = pool if mixed_size == 0 else min(mixed_size, pool)
                ranked.sort()
                key = f"{prefix}/pairs-mixed.jsonl"
                with store.open_writer(key, "application/x-ndjson") as sink:
                    for _rank, offset, length in ranked[:size]:
                        pair_spool.seek(offset)
                        sink.write(pair_spool.read(length))
                files.append(PairSetFile("mixed", key, size))
        finally:
            for fh in [*spools.values(), pair_spool]:
                fh.close()
    rows = [TaskStats(task, len(runs[task]), motions[task], counts[task]) for task in TASKS if task in runs]
    rows.append(TaskStats("total", sum(r.prompts for r in rows), sum(r.motions for r in rows), sum(r.pairs for r in rows)))
    stats_key = f"{prefix}/stats.json"
    store.put_json(
        stats_key,
        {
            "records_key": records_key,
            "pair_config": config.to_dict(),
            "mixed_size": mixed_size,
            "seed": seed,
            "rows": [r.to_dict() for r in rows],
            "table": format_stats(rows),
            "files": [{"name": f.name, "key": f.key, "pairs": f.pairs} for f in files],
        },
    )
    return PairSets(files, rows, stats_key)


def _mixed_rank(seed: int, pair_id: str) -> str:
    """sample_mixed's rank of a pair."""
    return hashlib.sha256(f"{seed}:{pair_id}".encode()).hexdigest()


# Where a prompt's records lie in its sub-task's spool: (offset, length) per run of consecutive records.
Runs = dict[str, dict[str, list[list[int]]]]


def _spool_records(store: ArtifactStore, key: str, spools: Mapping[str, BinaryIO]) -> tuple[Runs, dict[str, int]]:
    """Validate every record (errors as load_records gives them) and copy it to its sub-task's
    spool; returns where each (task, prompt) group's records lie and the records per sub-task."""
    runs: Runs = {}
    motions: dict[str, int] = defaultdict(int)
    last: dict[str, str] = {}  # the prompt of the last record spooled, per sub-task
    for where, obj in iter_jsonl_chunks(store.iter_chunks(key), key, MotionPreferFormatError):
        r = PreferenceRecord.from_dict(obj, where)
        line = encode_jsonl_row(r.to_dict())
        spool = spools[r.task]
        groups = runs.setdefault(r.task, {})
        if last.get(r.task) == r.prompt:
            groups[r.prompt][-1][1] += len(line)  # the prompt's run goes on
        else:
            groups.setdefault(r.prompt, []).append([spool.tell(), len(line)])
        last[r.task] = r.prompt
        spool.write(line)
        motions[r.task] += 1
    return runs, motions


def _read_group(spool: BinaryIO, runs: list[list[int]]) -> list[PreferenceRecord]:
    """One prompt's records back from the spool, in the order they were read."""
    out = []
    for offset, length in runs:
        spool.seek(offset)
        for where, obj in iter_jsonl_chunks([spool.read(length)], "spool", MotionPreferFormatError):
            out.append(PreferenceRecord.from_dict(obj, where))
    return out
