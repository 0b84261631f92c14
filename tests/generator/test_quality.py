import numpy as np

from atom.motion.events import COUNTABLE_EVENTS, EventLabel
from atom.motion.quality import TASKS, event_fidelity, event_requests, score
from services.generator.sampling import derive_seed, sample_motions


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


def test_event_fidelity_runs_end_to_end_on_in_process_sampling(tiny_bundle):
    # `atomctl pretrain --quality` samples through the generator service (tests/cli); any sampler will do.
    def sample(captions, samples, seed):
        seeds = [derive_seed(seed, c, i) for c in captions for i in range(samples)]
        motions = sample_motions(tiny_bundle, [c for c in captions for _ in range(samples)], seeds, max_tokens=6)
        joints = [m.joints if m.valid else None for m in motions]
        return [joints[i * samples : (i + 1) * samples] for i in range(len(captions))]

    rep = event_fidelity(sample, prompts_per_task=2, samples_per_prompt=2)
    assert set(rep.tasks) == set(TASKS)
    for t in rep.tasks.values():
        assert t.samples == 4 and 0 <= t.count_exact <= t.all_events <= 1 and t.in_order <= t.all_events
    text = rep.format()
    assert "temporal" in text and "all events" in text
    assert rep.to_dict()["headline"].keys() == set(TASKS)
