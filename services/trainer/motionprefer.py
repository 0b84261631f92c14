"""MotionPrefer: the judged motions, one record per (prompt, motion, judgement).

Stored as JSONL in the artifact store (datasets/<run>/motionprefer.jsonl). Every line is validated
on load; a corrupt line is reported by its line number and field, never skipped silently,
because a silently dropped judgement changes which pairs Algorithm 1 builds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from atom.motion.events import TASKS
from atom.store import ArtifactInfo, ArtifactStore
from atom.store.jsonl import encode_jsonl
from atom.store.jsonl import iter_jsonl as _iter_jsonl

_FIELDS = ("prompt_id", "prompt", "task", "labels", "motion_key", "score", "judge_id", "rationale", "tokens")
_REQUIRED = ("prompt_id", "prompt", "task", "labels", "motion_key", "score", "judge_id")


class MotionPreferFormatError(ValueError):
    """A MotionPrefer or pairs file is malformed; the message names the line and the field."""


@dataclass(frozen=True)
class PreferenceRecord:
    """One judged motion.

    labels      the prompt's label group as LabelGroup.to_dict() ({"task", "events": [...]})
    motion_key  store key of the motion artifact (atom.motion.record.MotionRecord .npz)
    tokens      the motion's VQ codes inline, or None to read them from the motion artifact
    """

    prompt_id: str
    prompt: str
    task: str
    labels: dict
    motion_key: str
    score: float
    judge_id: str
    rationale: str = ""
    tokens: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        # One canonical form (float score, tuple tokens) so equal records serialise identically.
        object.__setattr__(self, "score", float(self.score))
        if self.tokens is not None:
            object.__setattr__(self, "tokens", tuple(int(t) for t in self.tokens))

    def to_dict(self) -> dict:
        return {
            "prompt_id": self.prompt_id,
            "prompt": self.prompt,
            "task": self.task,
            "labels": self.labels,
            "motion_key": self.motion_key,
            "score": self.score,
            "judge_id": self.judge_id,
            "rationale": self.rationale,
            "tokens": list(self.tokens) if self.tokens is not None else None,
        }

    @classmethod
    def from_dict(cls, d, where: str = "record") -> "PreferenceRecord":
        if not isinstance(d, dict):
            raise MotionPreferFormatError(f"{where}: expected a JSON object, got {type(d).__name__}")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise MotionPreferFormatError(f"{where}: missing field(s) {missing}")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise MotionPreferFormatError(f"{where}: unknown field(s) {unknown}; expected only {list(_FIELDS)}")
        for name in ("prompt_id", "prompt", "motion_key", "judge_id"):
            check_text(d[name], f"{where}: field {name!r}")
        task = d["task"]
        if task not in TASKS:
            raise MotionPreferFormatError(f"{where}: field 'task': expected one of {list(TASKS)}, got {task!r}")
        labels = check_labels(d["labels"], task, f"{where}: field 'labels'")
        score = check_score(d["score"], f"{where}: field 'score'")
        rationale = d.get("rationale", "") or ""
        if not isinstance(rationale, str):
            raise MotionPreferFormatError(f"{where}: field 'rationale': expected a string, got {type(rationale).__name__}")
        tokens = check_tokens(d.get("tokens"), f"{where}: field 'tokens'")
        return cls(d["prompt_id"], d["prompt"], task, labels, d["motion_key"], score, d["judge_id"], rationale, tokens)


def check_text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MotionPreferFormatError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def check_score(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MotionPreferFormatError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def check_tokens(value, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise MotionPreferFormatError(f"{where}: expected a non-empty list of motion codes or null, got {value!r:.80}")
    for i, t in enumerate(value):
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise MotionPreferFormatError(f"{where}: item {i} must be an integer code >= 0, got {t!r}")
    return tuple(value)


def check_labels(value, task: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise MotionPreferFormatError(f"{where}: expected an object {{'task', 'events'}}, got {type(value).__name__}")
    if value.get("task") != task:
        raise MotionPreferFormatError(f"{where}: labels.task {value.get('task')!r} differs from the record's task {task!r}")
    events = value.get("events")
    if not isinstance(events, list) or not events:
        raise MotionPreferFormatError(f"{where}: labels.events must be a non-empty list, got {events!r:.80}")
    for i, e in enumerate(events):
        if not isinstance(e, dict) or not isinstance(e.get("event"), str) or not e["event"]:
            raise MotionPreferFormatError(f"{where}: labels.events[{i}] must be {{'event': name, 'count': n}}, got {e!r:.80}")
        count = e.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise MotionPreferFormatError(f"{where}: labels.events[{i}].count must be an integer >= 1, got {count!r}")
    return value


# -- JSONL ------------------------------------------------------------------------------------


def to_jsonl(rows: Iterable[dict]) -> bytes:
    return encode_jsonl(rows)


def iter_jsonl(data: bytes, source: str):
    """Yield (where, object) per non-blank line; errors are MotionPreferFormatError."""
    return _iter_jsonl(data, source, MotionPreferFormatError)


def records_to_jsonl(records: Iterable[PreferenceRecord]) -> bytes:
    return to_jsonl(r.to_dict() for r in records)


def parse_records(data: bytes, source: str = "motionprefer.jsonl") -> list[PreferenceRecord]:
    return [PreferenceRecord.from_dict(obj, where) for where, obj in iter_jsonl(data, source)]


def save_records(store: ArtifactStore, key: str, records: Sequence[PreferenceRecord]) -> ArtifactInfo:
    return store.put_bytes(key, records_to_jsonl(records), "application/x-ndjson")


def load_records(store: ArtifactStore, key: str) -> list[PreferenceRecord]:
    return parse_records(store.get_bytes(key), source=key)


def motion_tokens(store: ArtifactStore, motion_key: str) -> tuple[int, ...]:
    """The VQ codes of a stored motion artifact."""
    from atom.motion.record import MotionRecord

    record = MotionRecord.from_bytes(store.get_bytes(motion_key), source=motion_key)
    if record.tokens.size == 0:
        raise MotionPreferFormatError(f"motion {motion_key!r} holds no VQ tokens; preference training needs the generator's tokens")
    return tuple(int(t) for t in record.tokens)


def record_tokens(store: ArtifactStore, record: PreferenceRecord) -> tuple[int, ...]:
    return record.tokens if record.tokens is not None else motion_tokens(store, record.motion_key)
