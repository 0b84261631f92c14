"""Per-task test subsets (integrity, temporal, frequency) plus the general set, built from a
HumanML3D-layout split, like the paper's filtered HumanML3D test subsets.

- Procedural world (labels/<id>.json present): from the structured labels.
    integrity: two or more events;  temporal: exactly three distinct events in order;
    frequency: a countable event performed two or more times, or a clip the world made as a
      count request (labels "kind": "repeat", which includes "one time").
- Real HumanML3D (no labels): from caption heuristics.
    temporal: an ordering conjunction ("then", "after", "before", "followed by", ...) and at
      least two verbs;  integrity: at least two verbs joined by "and", a comma, or an ordering
      conjunction;  frequency: a count phrase ("twice", "three times", "5 times", ...).
  A clip enters a subset with the captions that qualify (so R-precision pairs the motion with a
  caption that states the property).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

from atom.motion.events import COUNTABLE_EVENTS
from atom.motion.humanml3d import Caption, Clip, HumanML3D
from services.evaluator.records import GENERAL, RealSample

TASKS = ("integrity", "temporal", "frequency")


class SubsetError(ValueError):
    """Labels are malformed, or a split yields no clips."""


# --- structured labels (procedural world) -------------------------------------------------------


def event_sequence(labels: dict) -> list[tuple[str, int]]:
    """Ordered (event, count) of a clip's labels; consecutive repeats of one event merge into a
    count. Accepts {"events": [{"event"|"name": str, "count": int?}, ...]} (the LabelGroup form)
    and {"group": {...}} wrapping it."""
    if "events" not in labels and isinstance(labels.get("group"), dict):
        labels = labels["group"]
    events = labels.get("events")
    if not isinstance(events, list):
        raise SubsetError(f"labels need an 'events' list, got keys {sorted(labels)}")
    seq: list[tuple[str, int]] = []
    for i, e in enumerate(events):
        if isinstance(e, str):
            name, count = e, 1
        elif isinstance(e, dict) and isinstance(event := e.get("event", e.get("name")), str):
            name, count = event, e.get("count", 1)
        else:
            raise SubsetError(f"labels event {i} must be a name or a dict with 'event', got {e!r}")
        if not isinstance(count, int) or count < 1:
            raise SubsetError(f"labels event {i} ({name}) has count {count!r}; expected an integer >= 1")
        if seq and seq[-1][0] == name:
            seq[-1] = (name, seq[-1][1] + count)
        else:
            seq.append((name, count))
    return seq


def label_tasks(labels: dict) -> set[str]:
    seq = event_sequence(labels)
    tasks = set()
    if len(seq) >= 2:
        tasks.add("integrity")
    if len(seq) == 3 and len({e for e, _ in seq}) == 3:
        tasks.add("temporal")
    # The world marks its count-prompt clips kind "repeat" (count 1..5, "one time" included, as
    # the paper's frequency prompts); otherwise any countable event done two or more times.
    if labels.get("kind") == "repeat" or any(c >= 2 and e in COUNTABLE_EVENTS for e, c in seq):
        tasks.add("frequency")
    return tasks


# --- caption heuristics (real HumanML3D) --------------------------------------------------------

_ORDER = re.compile(
    r"\b(then|after|afterwards|afterward|before|followed by|finally|next|subsequently|"
    r"and then|once done|later)\b"
)
_COUNT = re.compile(
    r"\b(twice|thrice|(one|two|three|four|five|six|seven|eight|nine|ten|\d+|"
    r"several|multiple|a few|few|many|couple of) times)\b"
)
_JOIN = re.compile(r"\band\b|,|;")


def caption_tasks(caption: Caption) -> set[str]:
    text = caption.text.lower()
    tokens = caption.tokens or tuple(Caption.from_text(caption.text).tokens)
    verbs = sum(1 for t in tokens if t.rpartition("/")[2] == "VERB")
    tasks = set()
    ordered = bool(_ORDER.search(text))
    if verbs >= 2 and ordered:
        tasks.add("temporal")
    if verbs >= 2 and (ordered or _JOIN.search(text)):
        tasks.add("integrity")
    if _COUNT.search(text):
        tasks.add("frequency")
    return tasks


# --- building the subsets -----------------------------------------------------------------------


def caption_text(caption: Caption, tagged: bool) -> str:
    """Tagged 'word/POS' form (the dataset's own tags, best for the Guo evaluator) or plain text."""
    return " ".join(caption.tokens) if tagged and caption.tokens else caption.text


def clip_sample(clip: Clip, captions: Sequence[Caption], tagged: bool, source: str) -> RealSample:
    tags = {"source": source} | ({"labels": clip.labels} if clip.labels is not None else {})
    return RealSample(clip.clip_id, tuple(caption_text(c, tagged) for c in captions), clip.features, tags)


def subsets_from_clips(clips: Iterable[Clip], tagged: bool = True) -> dict[str, list[RealSample]]:
    out: dict[str, list[RealSample]] = {t: [] for t in (*TASKS, GENERAL)}
    for clip in clips:
        if not clip.captions:
            continue
        out[GENERAL].append(clip_sample(clip, clip.captions, tagged, "all"))
        if clip.labels is not None:
            tasks = label_tasks(clip.labels)
            for t in tasks:
                out[t].append(clip_sample(clip, clip.captions, tagged, "labels"))
        else:
            per_task: dict[str, list[Caption]] = {}
            for c in clip.captions:
                for t in caption_tasks(c):
                    per_task.setdefault(t, []).append(c)
            for t, caps in per_task.items():
                out[t].append(clip_sample(clip, caps, tagged, "captions"))
    return out


def build_subsets(
    dataset: str | Path | HumanML3D,
    split: str = "test",
    tagged: bool = True,
    min_len: int = 40,
    max_len: int = 200,
) -> dict[str, list[RealSample]]:
    """task -> real clips of `split` (HumanML3D evaluation length rule), plus 'general'."""
    ds = dataset if isinstance(dataset, HumanML3D) else HumanML3D(dataset)
    out = subsets_from_clips(ds.iter_clips(split, min_len=min_len, max_len=max_len), tagged)
    if not out[GENERAL]:
        raise SubsetError(f"split {split!r} of {ds.root} has no captioned clips of {min_len} <= length < {max_len} frames")
    return out


def subset_sizes(subsets: dict[str, list[RealSample]]) -> dict[str, int]:
    return {k: len(v) for k, v in subsets.items()}
