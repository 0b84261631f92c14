import numpy as np

from atom.motion.events import COUNTABLE_EVENTS, EventLabel
from services.generator.quality import TASKS, event_requests, measure_quality, score


def L(*items):
    return [EventLabel(e, c) for e, c in items]


def test_score_rules():
    req = L(("walk_forward", 1), ("squat", 1), ("wave", 1))
    assert score(req, L(("walk_forward", 1), ("squat", 1), ("wave", 1))) == (True, True, True)
    assert score(req, L(("wave", 1), ("walk_forward", 1), ("squat", 1))) == (True, False, True)
    assert score(req, L(("walk_forward", 1), ("kick", 1), ("squat", 1), ("wave", 1))) == (True, True, True)
    assert score(req, L(("walk_forward", 1), ("wave", 1))) == (False, False, False)
    assert score(L(("squat", 3)), L(("squat", 2))) == (True, True, False)
    assert score(L(("squat", 3)), L(("squat", 2), ("kick", 1), ("squat", 1))) == (True, True, True)
    assert score(L(("squat", 1)), []) == (False, False, False)


def test_event_requests_have_the_task_shapes():
    rng = np.random.default_rng(0)
    for g in event_requests("temporal", 20, rng):
        assert len(g) == 3 and len({e.event for e in g}) == 3
    for g in event_requests("frequency", 20, rng):
        assert len(g) == 1 and g[0].event in COUNTABLE_EVENTS and 2 <= g[0].count <= 3
    for g in event_requests("integrity", 20, rng):
        assert 2 <= len(g) <= 3
    assert all(len(g) == 1 and g[0].count == 1 for g in event_requests("single", 10, rng))


def test_measure_quality_runs_end_to_end(tmp_path, tiny_bundle):
    from atom.motion.world.corpus import build_corpus

    build_corpus(tmp_path, 12, seed=1)
    rep = measure_quality(tiny_bundle, tmp_path, split="train", max_clips=3, prompts_per_task=2, samples_per_prompt=1)
    assert rep.vq_clips == 3 and rep.vq_mpjpe_mm > 0 and rep.vq_mpjpe_rootrel_mm > 0
    assert set(rep.tasks) == set(TASKS)
    for t in rep.tasks.values():
        assert t.samples == 2 and 0 <= t.count_exact <= t.all_events <= 1 and t.in_order <= t.all_events
    text = rep.format()
    assert "MPJPE" in text and "temporal" in text
    assert rep.to_dict()["headline"].keys() == set(TASKS)
