import importlib.util

import numpy as np
import pytest

from atom.motion.events import EventLabel, LabelGroup
from services.judge.compose import compose_prompts
from services.judge.kinematic import (
    JUDGE_ID,
    KinematicJudge,
    ground_truth_agreement,
    ground_truth_cases,
    variants,
)
from services.judge.records import JudgeItem, PromptRecord
from services.judge.rules import ALLOWED_SCORES, score_from_detected

HAVE_DETECTOR = importlib.util.find_spec("atom.motion.detector") is not None


def joints(seed=0, t=60):
    rng = np.random.default_rng(seed)
    j = rng.normal(size=(t, 22, 3)).astype(np.float32) * 0.1
    j[..., 1] += 1.0
    return j


def fixed_detector(events):
    return lambda _joints: [EventLabel(*e) if isinstance(e, tuple) else EventLabel(e) for e in events]


def test_scores_with_the_rules_and_records(store):
    labels = LabelGroup("temporal", (EventLabel("walk_forward"), EventLabel("squat"), EventLabel("wave")))
    j = KinematicJudge(store, detector=fixed_detector(["squat", "walk_forward", "wave"]))
    item = JudgeItem("m1", PromptRecord.make("A man walks forward, squats, then waves.", labels), joints=joints())
    g = j.score(item)
    assert g.ok and g.score == 4 and g.judge_id == JUDGE_ID == "kinematic-v1"
    assert "not in the described order" in g.rationale and "detected: squat, walk_forward, wave" in g.rationale
    rec = store.get_json(g.record_key)
    assert rec["score"] == 4 and rec["detected"][0] == {"event": "squat", "count": 1}
    calls = []
    j2 = KinematicJudge(store, detector=lambda x: calls.append(1) or [])
    again = j2.score(item)
    assert again.cache_hit and again.score == 4 and not calls  # read back, not recomputed
    other = j2.score(JudgeItem("m2", item.prompt, joints=joints(1)))
    assert other.score == 1 and calls  # other joints: a new question


def test_input_errors():
    j = KinematicJudge(detector=fixed_detector([]))
    caption = LabelGroup("integrity", (EventLabel("caption:walks_in_a_circle"), EventLabel("squat")))
    g = j.score_labels(caption, joints())
    assert g.error_kind == "input" and "VLM judge" in g.error
    ok_labels = LabelGroup("frequency", (EventLabel("squat", 2),))
    assert j.score_labels(ok_labels, None).error_kind == "input"
    assert "shape" in j.score_labels(ok_labels, np.zeros((10, 21, 3))).error
    bad = LabelGroup("temporal", (EventLabel("squat"), EventLabel("wave")))
    assert "exactly 3" in j.score_labels(bad, joints()).error


def test_batch_in_order_with_progress():
    prompts = compose_prompts(["frequency"], 3, seed=0)
    items = [JudgeItem(f"i{k}", p, joints=joints(k)) for k, p in enumerate(prompts)]
    seen = []
    out = list(KinematicJudge(detector=fixed_detector([])).score_batch(items, lambda d, t, g: seen.append(d)))
    assert [g.item_id for g in out] == ["i0", "i1", "i2"] and seen == [1, 2, 3]
    assert all(g.score == 1 for g in out)


def test_variants_cover_every_rubric_level():
    import random

    rng = random.Random(0)
    for p in compose_prompts(["integrity", "temporal", "frequency"], 20, seed=5):
        scores = {v: score_from_detected(p.labels, performed)[0] for v, performed in variants(p.labels, rng)}
        assert scores["exact"] == max(ALLOWED_SCORES[p.task])
        if p.task == "temporal":
            assert [scores[k] for k in ("wrong_order", "one_missing", "two_missing", "all_missing")] == [4, 3, 2, 1]
        elif p.task == "frequency":
            assert (scores["wrong_count"], scores["other_motion"], scores["extra_event"]) == (2, 1, 3)
        else:
            assert (scores["drop_one"], scores["substitute_one"], scores["shuffled"], scores["extra_event"]) == (0, 0, 5, 5)


def test_ground_truth_plumbing_with_oracle_and_blind_detectors():
    prompts = compose_prompts(["integrity", "temporal", "frequency"], 2, seed=1)
    cases = ground_truth_cases(prompts, seed=0)
    assert len(cases) >= 25
    assert all(c.joints.ndim == 3 and c.joints.shape[1:] == (22, 3) for c in cases)
    performed = {c.joints.tobytes(): c.performed for c in cases}
    oracle = KinematicJudge(detector=lambda jn: list(performed[np.asarray(jn).tobytes()]))
    res = ground_truth_agreement(cases, oracle)
    assert set(res) == {"integrity", "temporal", "frequency"}
    assert all(r.report.exact == 1.0 for r in res.values())
    blind = ground_truth_agreement(cases, KinematicJudge(detector=fixed_detector([])))
    assert blind["temporal"].report.exact < 0.5
    assert "truth" in blind["temporal"].report.render()


@pytest.mark.skipif(not HAVE_DETECTOR, reason="atom.motion.detector is not there yet")
def test_real_detector_agrees_with_ground_truth_on_world_clips():
    prompts = compose_prompts(["integrity", "temporal", "frequency"], 3, seed=11)
    cases = ground_truth_cases(prompts, seed=2)
    res = ground_truth_agreement(cases, KinematicJudge())
    for task, r in res.items():
        assert r.report.exact >= 0.8, (task, r.report.render())
