"""The offline kinematic judge: detect events from joint trajectories, apply the AToM rules.

Needs no network, no renders and no money: the default judge of the embedded pipeline. Only
vocabulary events can be scored (caption-derived events need the VLM judge).

Also here: the ground-truth check. World clips perform known events, so the rules applied to
what a clip really performs give the score a perfect judge would give; comparing the kinematic
judge with that measures the judge itself (`ground_truth_cases`, `ground_truth_agreement`).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from atom.motion.events import EVENTS, EventLabel, LabelGroup
from atom.motion.record import MotionFormatError, validate_joints
from atom.store import ArtifactStore, StoreError

from atom.agreement import AgreementReport, agreement
from services.judge.records import JudgeItem, Judgement, PromptRecord
from services.judge.rules import ALLOWED_SCORES, RuleInputError, score_from_detected

JUDGE_ID = "kinematic-v1"

Detector = Callable[[np.ndarray], Sequence[EventLabel]]


def default_detector(joints: np.ndarray) -> list[EventLabel]:
    """atom.motion.detector: detect_events then summarize (imported late: it is optional until used)."""
    from atom.motion.detector import detect_events, summarize

    return list(summarize(detect_events(joints)))


def _joints_sha(joints: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(joints, dtype=np.float32).tobytes()).hexdigest()


class KinematicJudge:
    """Scores (labels, joints) with the rules. With a store, each verdict is recorded under
    judgements/<key>.json (key = sha256 of judge id, labels and joints) so the servicer can
    return a record reference, and a repeated question is read back instead of recomputed."""

    def __init__(self, store: ArtifactStore | None = None, detector: Detector | None = None, judge_id: str = JUDGE_ID):
        self.store = store
        self.detector = detector or default_detector
        self.judge_id = judge_id

    def key_for(self, labels: LabelGroup, joints: np.ndarray) -> str:
        q = {"judge": self.judge_id, "labels": labels.to_dict(), "joints": _joints_sha(joints)}
        return hashlib.sha256(json.dumps(q, sort_keys=True).encode()).hexdigest()

    def _fail(self, item_id: str, message: str) -> Judgement:
        return Judgement(item_id, None, "", self.judge_id, error=message, error_kind="input")

    def score_labels(self, labels: LabelGroup, joints, item_id: str = "") -> Judgement:
        unknown = [e for e in labels.names() if e not in EVENTS]
        if unknown:
            return self._fail(
                item_id,
                f"events {unknown} are not in the event vocabulary, so the kinematic judge "
                "cannot detect them; use the VLM judge for caption-derived prompts",
            )
        if joints is None:
            return self._fail(item_id, "the kinematic judge needs the motion's joints")
        try:
            joints = validate_joints(joints)
        except MotionFormatError as exc:
            return self._fail(item_id, str(exc))
        key = self.key_for(labels, joints)
        rkey = f"judgements/{key}.json"
        if self.store is not None:
            try:
                rec = self.store.get_json(rkey) if self.store.exists(rkey) else None
            except StoreError:
                rec = None
            if isinstance(rec, dict) and rec.get("score") is not None:
                return Judgement(
                    item_id,
                    int(rec["score"]),
                    rec["rationale"],
                    self.judge_id,
                    cache_hit=True,
                    cache_key=key,
                    record_key=rkey,
                    extra={"detected": rec.get("detected", [])},
                )
        detected = list(self.detector(joints))
        try:
            score, why = score_from_detected(labels, detected)
        except RuleInputError as exc:
            return self._fail(item_id, str(exc))
        seen = ", ".join(f"{d.event}x{d.count}" if d.count != 1 else d.event for d in detected) or "nothing"
        rationale = f"{why}; detected: {seen}"
        det = [{"event": d.event, "count": d.count} for d in detected]
        if self.store is not None:
            try:
                self.store.put_json(
                    rkey,
                    {
                        "key": key,
                        "judge_id": self.judge_id,
                        "labels": labels.to_dict(),
                        "joints_sha256": _joints_sha(joints),
                        "score": score,
                        "rationale": rationale,
                        "detected": det,
                    },
                )
            except StoreError:
                rkey = ""
        return Judgement(
            item_id,
            score,
            rationale,
            self.judge_id,
            cache_key=key,
            record_key=rkey if self.store is not None else "",
            extra={"detected": det},
        )

    def score(self, item: JudgeItem) -> Judgement:
        return self.score_labels(item.prompt.labels, item.joints, item.item_id)

    def score_batch(self, items: Iterable[JudgeItem], progress=None) -> Iterator[Judgement]:
        """One Judgement per item, in input order (computed one by one: detection is cheap)."""
        items = list(items)
        for i, it in enumerate(items, 1):
            j = self.score(it)
            if progress is not None:
                progress(i, len(items), j)
            yield j


# -- agreement with ground truth ------------------------------------------------------------------


@dataclass(frozen=True)
class GroundTruthCase:
    """A prompt's labels, the events a world clip really performs, and the clip's joints."""

    item_id: str
    labels: LabelGroup
    performed: tuple[EventLabel, ...]
    variant: str  # how `performed` was derived from `labels`
    joints: np.ndarray

    @property
    def truth(self) -> int:
        return score_from_detected(self.labels, self.performed)[0]


def _others(rng: random.Random, exclude: Iterable[str], k: int, countable: bool = False) -> list[str]:
    pool = [n for n, e in EVENTS.items() if n not in set(exclude) and (e.countable or not countable)]
    return rng.sample(pool, k)


def variants(labels: LabelGroup, rng: random.Random) -> list[tuple[str, tuple[EventLabel, ...]]]:
    """Performances that should earn each score level of the task's rubric (plus harmless
    extras), as (variant name, events performed)."""
    ev = list(labels.events)
    names = labels.names()
    out: list[tuple[str, list[EventLabel]]] = [("exact", ev)]
    if labels.task == "integrity":
        drop = rng.randrange(len(ev))
        out.append(("drop_one", ev[:drop] + ev[drop + 1 :]))
        sub = list(ev)
        sub[rng.randrange(len(ev))] = EventLabel(_others(rng, names, 1)[0])
        out.append(("substitute_one", sub))
        out.append(("shuffled", rng.sample(ev, len(ev))))
        out.append(("extra_event", ev + [EventLabel(_others(rng, names, 1)[0])]))
    elif labels.task == "temporal":
        a, b, c = ev
        out.append(("wrong_order", rng.choice([[b, a, c], [a, c, b], [c, b, a], [b, c, a], [c, a, b]])))
        x, y, z = (EventLabel(n) for n in _others(rng, names, 3))
        keep = rng.sample(range(3), 2)
        one_missing = [e if i in keep else x for i, e in enumerate(ev)]
        out.append(("one_missing", one_missing))
        k = rng.randrange(3)
        out.append(("two_missing", [e if i == k else o for i, (e, o) in enumerate(zip(ev, (x, y, z)))]))
        out.append(("all_missing", [x, y, z]))
    elif labels.task == "frequency":
        (want,) = ev
        wrong = rng.choice([c for c in range(1, 6) if c != want.count and abs(c - want.count) <= 2])
        out.append(("wrong_count", [EventLabel(want.event, wrong)]))
        out.append(("other_motion", [EventLabel(_others(rng, names, 1, countable=True)[0], want.count)]))
        out.append(("extra_event", [EventLabel(_others(rng, names, 1)[0]), want]))
    return [(v, tuple(p)) for v, p in out]


def ground_truth_cases(prompts: Sequence[PromptRecord], seed: int, max_frames: int | None = None) -> list[GroundTruthCase]:
    """World clips for every rubric level of every prompt (see `variants`)."""
    from atom.motion.world.compose import CompositionError, compose

    rng = random.Random(seed)
    cases: list[GroundTruthCase] = []
    for p in prompts:
        for variant, performed in variants(p.labels, rng):
            gen = np.random.default_rng([seed, len(cases)])
            try:
                clip = compose(performed, gen) if max_frames is None else compose(performed, gen, max_frames=max_frames)
            except CompositionError:
                continue  # too long for one clip: not a fair question for any judge
            cases.append(GroundTruthCase(f"{p.prompt_id}:{variant}", p.labels, performed, variant, clip.joints))
    return cases


@dataclass
class GroundTruthResult:
    task: str
    report: AgreementReport
    per_variant: dict[str, tuple[int, int]]  # variant -> (judge == truth, total)
    truth: list[int]
    judged: list[int | None]


def ground_truth_agreement(cases: Sequence[GroundTruthCase], judge: KinematicJudge) -> dict[str, GroundTruthResult]:
    """Per task: the judge's scores against the rules applied to what each clip really performs."""
    out: dict[str, GroundTruthResult] = {}
    for task in ALLOWED_SCORES:
        sub = [c for c in cases if c.labels.task == task]
        if not sub:
            continue
        truth = [c.truth for c in sub]
        judged = [judge.score_labels(c.labels, c.joints, c.item_id).score for c in sub]
        per: dict[str, list[int]] = {}
        for c, t, s in zip(sub, truth, judged):
            hit_total = per.setdefault(c.variant, [0, 0])
            hit_total[0] += int(s == t)
            hit_total[1] += 1
        rep = agreement(judged, truth, labels=ALLOWED_SCORES[task], names=(judge.judge_id, "truth"))
        out[task] = GroundTruthResult(task, rep, {k: (v[0], v[1]) for k, v in per.items()}, truth, judged)
    return out
