"""Human-labelled motions for calibrating a judge: a JSONL file, one labelled motion per line.

    {"motion": "motions/abc.npz", "prompt": "A man walks forward and then squats.",
     "task": "integrity", "labels": ["walk_forward", "squat"], "score": 5}

Fields (docs/judge.md has the full description):
  motion   a path to a motion file (.npz written by atom.motion.record.MotionRecord, or a .npy of
           joints (T, 22, 3) in metres), absolute or relative to the JSONL file; else a key in the
           artifact store (e.g. motions/<sha256>.npz)
  prompt   the prompt text the motion is judged against
  task     integrity | temporal | frequency
  labels   the prompt's events in prompt order: ["walk_forward", "squat"], or
           [{"event": "jump_in_place", "count": 2}], or {"task": ..., "events": [...]}
           (temporal takes exactly 3 events, frequency exactly 1)
  score    the human's score under the task's rules (integrity 0|5, temporal 1..5, frequency 1..3)
  id       optional; default "line-<n>". Ids must be unique.
  annotator, note   optional, kept as they are.

`load_human_labels` reads every line and reports every bad line at once (HumanLabelError), each
with its line number and what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atom.motion.events import EventLabel, LabelGroup
from atom.motion.record import MotionFormatError, MotionRecord, validate_joints
from services.judge.records import PromptRecord
from services.judge.rules import ALLOWED_SCORES

REQUIRED = ("motion", "prompt", "task", "labels", "score")
EVENTS_PER_TASK = {"temporal": 3, "frequency": 1}


class HumanLabelError(ValueError):
    """A human-label file that cannot be used; the message lists every bad line."""


@dataclass(frozen=True)
class HumanLabel:
    label_id: str
    motion: str
    prompt: PromptRecord
    score: int
    line: int
    annotator: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def task(self) -> str:
        return self.prompt.task


def _events(raw, task: str) -> tuple[EventLabel, ...]:
    if isinstance(raw, dict):
        if raw.get("task", task) != task:
            raise ValueError(f"labels.task {raw.get('task')!r} differs from task {task!r}")
        raw = raw.get("events")
    if not isinstance(raw, list) or not raw:
        raise ValueError('labels must be a non-empty list of event names or {"event", "count"} objects')
    out = []
    for i, e in enumerate(raw):
        if isinstance(e, str):
            name, count = e, 1
        elif isinstance(e, dict) and isinstance(e.get("event"), str):
            name, count = e["event"], e.get("count", 1)
        else:
            raise ValueError(f'labels[{i}] must be an event name or {{"event": name, "count": n}}, got {e!r}')
        if not name.strip():
            raise ValueError(f"labels[{i}] has an empty event name")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"labels[{i}].count must be an integer >= 1, got {count!r}")
        out.append(EventLabel(name.strip(), count))
    want = EVENTS_PER_TASK.get(task)
    if want is not None and len(out) != want:
        raise ValueError(f"a {task} prompt has exactly {want} event(s), got {len(out)}")
    return tuple(out)


def parse_label(obj, line: int) -> HumanLabel:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise ValueError(f"missing field(s) {missing} (each line needs {list(REQUIRED)})")
    task = obj["task"]
    if task not in ALLOWED_SCORES:
        raise ValueError(f"task {task!r} is not one of {list(ALLOWED_SCORES)}")
    motion, text = obj["motion"], obj["prompt"]
    if not isinstance(motion, str) or not motion.strip():
        raise ValueError("motion must be a non-empty path or store key")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("prompt must be non-empty text")
    score = obj["score"]
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int) or score not in ALLOWED_SCORES[task]:
        raise ValueError(f"score {score!r} is not a valid {task} score (allowed: {list(ALLOWED_SCORES[task])})")
    labels = LabelGroup(task, _events(obj["labels"], task))
    label_id = str(obj.get("id") or f"line-{line}")
    known = set(REQUIRED) | {"id", "annotator", "note"}
    return HumanLabel(
        label_id,
        motion.strip(),
        PromptRecord.make(text.strip(), labels),
        score,
        line,
        str(obj.get("annotator", "")),
        str(obj.get("note", "")),
        {k: v for k, v in obj.items() if k not in known},
    )


def load_human_labels(source: str | Path | bytes) -> list[HumanLabel]:
    """Parse a human-label JSONL file (a path, or its bytes). Blank lines and lines starting with
    '#' are skipped. Raises HumanLabelError naming every bad line."""
    where = str(source) if isinstance(source, (str, Path)) else "human labels"
    if isinstance(source, (str, Path)):
        try:
            source = Path(source).read_bytes()
        except OSError as exc:
            raise HumanLabelError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HumanLabelError(f"{where} is not UTF-8 text ({exc})") from None
    labels: list[HumanLabel] = []
    problems: list[str] = []
    ids: dict[str, int] = {}  # label id -> line
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not JSON ({exc.msg})")
            continue
        try:
            lab = parse_label(obj, n)
        except ValueError as exc:
            problems.append(f"line {n}: {exc}")
            continue
        if lab.label_id in ids:
            problems.append(f"line {n}: id {lab.label_id!r} already used on line {ids[lab.label_id]}")
            continue
        ids[lab.label_id] = n
        labels.append(lab)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise HumanLabelError(f"{where}: {len(problems)} bad line(s):\n  " + "\n  ".join(shown))
    if not labels:
        raise HumanLabelError(f"{where} holds no labelled motions")
    return labels


def load_motion(ref: str, base_dir: str | Path | None = None, store=None) -> np.ndarray:
    """The joints (T, 22, 3) a label's `motion` names: a local .npz/.npy (relative paths from
    base_dir), else a key in `store`. Raises HumanLabelError saying which it tried."""
    path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        if path.is_file():
            if path.suffix == ".npy":
                return validate_joints(np.load(path, allow_pickle=False), str(path))
            return MotionRecord.from_bytes(path.read_bytes(), str(path)).joints
        if store is not None and store.exists(ref):
            return MotionRecord.from_bytes(store.get_bytes(ref), ref).joints
    except (MotionFormatError, ValueError, OSError) as exc:
        raise HumanLabelError(f"motion {ref!r}: {exc}") from None
    tried = f"no file {path}" + (f" and no key {ref!r} in {store.url}" if store is not None else " (and no store given)")
    raise HumanLabelError(f"motion {ref!r} not found: {tried}")
