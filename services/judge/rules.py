"""The AToM scoring rules (the AToM paper, Han et al., CVPR 2025) as pure functions of (asked, detected) events.

Both judges and the ground truth use these: the kinematic judge feeds the events it detects,
the benchmark feeds the events a world clip really performs, and the VLM instructions state the
same rules in words.

Definitions used when `detected` holds more than what was asked:
- `detected` is in time order. A detected EventLabel(e, n) stands for n consecutive occurrences
  of e, so [squat x2, wave] is the occurrence sequence squat, squat, wave.
- An asked event *appears* when an occurrence of it is detected. An event asked k times (the
  same name listed k times in the label group) needs k distinct occurrences: matching is on
  multisets, never reusing one occurrence for two asked events.
- Asked events are *in order* when the asked sequence is a subsequence of the occurrence
  sequence: extra events anywhere (before, between, after, repeats) do not break the order.
  [walk, turn, squat, wave] is in order for the ask (walk, squat, wave).
- Counts: integrity and temporal ignore counts (an event done twice still appears). Frequency
  compares the total number of occurrences of the asked event (summed over all detected
  entries of that name, also when other events come between) with the asked count.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from atom.motion.events import EventLabel, LabelGroup, check_task

ALLOWED_SCORES: dict[str, tuple[int, ...]] = {
    "integrity": (0, 5),
    "temporal": (1, 2, 3, 4, 5),
    "frequency": (1, 2, 3),
}
MAX_SCORE = {task: max(s) for task, s in ALLOWED_SCORES.items()}
# Scores from which a motion counts as a success for the task (the paper's score filter keeps
# chosen samples scored above 3; integrity's only passing score is 5).
PASS_SCORE = {"integrity": 5, "temporal": 5, "frequency": 3}


class RuleInputError(ValueError):
    """A label group that the task's rubric is not defined for."""


def occurrences(detected: Sequence[EventLabel]) -> list[str]:
    """Expand detected events with counts into the flat occurrence sequence."""
    out: list[str] = []
    for d in detected:
        if d.count < 0:
            raise RuleInputError(f"detected event {d.event!r} has a negative count {d.count}")
        out.extend([d.event] * d.count)
    return out


def is_subsequence(needle: Sequence[str], haystack: Sequence[str]) -> bool:
    it = iter(haystack)
    return all(any(h == n for h in it) for n in needle)


def missing_events(asked: Sequence[str], occ: Sequence[str]) -> list[str]:
    """Asked events left over after matching each to a distinct occurrence (multiset difference)."""
    left = Counter(asked) - Counter(occ)
    out = []
    for name in asked:  # keep the asked order in the report
        if left[name] > 0:
            out.append(name)
            left[name] -= 1
    return out


def _extras(asked: Sequence[str], occ: Sequence[str]) -> list[str]:
    return sorted((Counter(occ) - Counter(asked)).elements())


def score_integrity(labels: LabelGroup, detected: Sequence[EventLabel]) -> tuple[int, str]:
    asked = labels.names()
    if not asked:
        raise RuleInputError("integrity label group has no events")
    occ = occurrences(detected)
    missing = missing_events(asked, occ)
    if not missing:
        return 5, f"all {len(asked)} described events appear ({', '.join(asked)})"
    return 0, f"missing {len(missing)} of {len(asked)} described events: {', '.join(missing)}"


def score_temporal(labels: LabelGroup, detected: Sequence[EventLabel]) -> tuple[int, str]:
    asked = labels.names()
    if len(asked) != 3:
        raise RuleInputError(f"the temporal rubric is defined for exactly 3 events, got {len(asked)}: {asked}")
    occ = occurrences(detected)
    missing = missing_events(asked, occ)
    if not missing:
        if is_subsequence(asked, occ):
            return 5, f"all three events appear in the described order ({' -> '.join(asked)})"
        return 4, f"all three events appear but not in the described order; detected order: {' -> '.join(occ)}"
    score = {1: 3, 2: 2, 3: 1}[len(missing)]
    return score, f"{len(missing)} of 3 events missing: {', '.join(missing)}"


def score_frequency(labels: LabelGroup, detected: Sequence[EventLabel]) -> tuple[int, str]:
    if len(labels.events) != 1:
        raise RuleInputError(f"the frequency rubric is defined for exactly 1 event, got {len(labels.events)}")
    want = labels.events[0]
    if want.count < 1:
        raise RuleInputError(f"frequency label asks for {want.event!r} {want.count} times; counts start at 1")
    n = occurrences(detected).count(want.event)
    if n == 0:
        return 1, f"the described motion {want.event!r} does not appear"
    if n == want.count:
        return 3, f"{want.event!r} performed {n} time(s), as described"
    return 2, f"{want.event!r} performed {n} time(s), described {want.count}"


_SCORERS = {"integrity": score_integrity, "temporal": score_temporal, "frequency": score_frequency}


def score_from_detected(labels: LabelGroup, detected: Sequence[EventLabel]) -> tuple[int, str]:
    """The task's rubric applied to what was detected. Returns (score, rationale)."""
    return _SCORERS[check_task(labels.task)](labels, list(detected))


def is_pass(task: str, score: int) -> bool:
    return score >= PASS_SCORE[check_task(task)]
