"""Algorithm 1 on hand-made groups."""

import random

import pytest

from services.trainer.motionprefer import MotionPreferFormatError, PreferenceRecord
from services.trainer.pairs import (
    MixedSetTooLarge,
    PairConfig,
    PairConfigError,
    build_pair_sets,
    build_pairs,
    build_task_pairs,
    load_pairs,
    parse_pairs,
    pairs_to_jsonl,
    sample_mixed,
)


def rec(key, score, prompt="A man walks forward, then squats.", task="temporal", tokens=None):
    labels = {"task": task, "events": [{"event": "walk_forward", "count": 1}, {"event": "squat", "count": 1}]}
    return PreferenceRecord(f"id-{prompt[:8]}", prompt, task, labels, f"motions/{key}.npz", score, "kinematic-v1", tokens=tokens)


def as_tuples(pairs):
    return [(p.chosen_key.split("/")[1][:-4], p.rejected_key.split("/")[1][:-4]) for p in pairs]


def test_sorted_descending_every_pair_above_theta_ties_never_pair():
    group = [rec("c", 3), rec("a", 5), rec("d", 0), rec("b", 5)]
    pairs = build_task_pairs(group, "temporal", PairConfig(theta=0, score_filter=False))
    # order: a(5) b(5) c(3) d(0); (a, b) is a tie, not a pair
    assert as_tuples(pairs) == [("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert all(p.chosen_score > p.rejected_score for p in pairs)


def test_score_filter_chosen_must_exceed_three_by_default():
    group = [rec("c", 3), rec("a", 5), rec("d", 0), rec("b", 4)]
    pairs = build_task_pairs(group, "temporal")
    # c (3) may not be chosen: (c, d) is dropped
    assert as_tuples(pairs) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")]
    stricter = PairConfig(chosen_threshold={"temporal": 4.0})
    assert as_tuples(build_task_pairs(group, "temporal", stricter)) == [("a", "b"), ("a", "c"), ("a", "d")]


def test_frequency_uses_its_own_threshold_of_two():
    group = [rec("x", 3, task="frequency"), rec("y", 2, task="frequency"), rec("z", 1, task="frequency")]
    assert as_tuples(build_task_pairs(group, "frequency")) == [("x", "y"), ("x", "z")]


def test_theta_is_a_strict_margin():
    group = [rec("a", 5), rec("b", 3), rec("c", 2)]
    cfg = PairConfig(theta=2, score_filter=False)
    # 5 - 3 = 2 is not > 2; 5 - 2 = 3 is; 3 - 2 = 1 is not
    assert as_tuples(build_task_pairs(group, "temporal", cfg)) == [("a", "c")]
    cfg = PairConfig(theta=1.999, score_filter=False)
    assert as_tuples(build_task_pairs(group, "temporal", cfg)) == [("a", "b"), ("a", "c")]


def test_single_sample_and_all_tied_groups_give_no_pairs():
    assert build_task_pairs([rec("a", 5)], "temporal") == []
    assert build_task_pairs([rec("a", 5), rec("b", 5), rec("c", 5)], "temporal") == []


def test_groups_by_identical_prompt_and_ignores_other_tasks():
    records = [
        rec("a", 5, "p one"),
        rec("b", 0, "p two"),
        rec("c", 0, "p one"),
        rec("d", 5, "p two"),
        rec("e", 0, "p one", task="integrity"),
    ]
    pairs = build_task_pairs(records, "temporal")
    assert as_tuples(pairs) == [("a", "c"), ("d", "b")]
    assert [p.prompt for p in pairs] == ["p one", "p two"]
    by_task = build_pairs(records)
    assert set(by_task) == {"temporal", "integrity"} and by_task["integrity"] == []


def test_result_does_not_depend_on_input_order():
    records = [rec(f"m{i}", s, f"prompt {i % 3}") for i, s in enumerate([5, 5, 4, 3, 0, 5, 2, 4, 4, 1, 5, 0])]
    expected = build_task_pairs(records, "temporal")
    for seed in range(3):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert build_task_pairs(shuffled, "temporal") == expected


def test_duplicate_motion_collapses_and_conflicting_scores_are_an_error():
    group = [rec("a", 5), rec("a", 5), rec("b", 0)]
    assert as_tuples(build_task_pairs(group, "temporal")) == [("a", "b")]
    with pytest.raises(MotionPreferFormatError, match="two scores"):
        build_task_pairs([rec("a", 5), rec("a", 4), rec("b", 0)], "temporal")


def test_pairs_carry_tokens_and_roundtrip_jsonl():
    pairs = build_task_pairs([rec("a", 5, tokens=(1, 2, 3)), rec("b", 1)], "temporal")
    assert pairs[0].chosen_tokens == (1, 2, 3) and pairs[0].rejected_tokens is None
    assert parse_pairs(pairs_to_jsonl(pairs)) == pairs


def test_bad_pair_lines_are_reported_by_line_and_field():
    good = pairs_to_jsonl(build_task_pairs([rec("a", 5), rec("b", 1)], "temporal")).decode()
    with pytest.raises(MotionPreferFormatError, match=r"p\.jsonl line 2: field 'chosen_score'"):
        parse_pairs((good + good.replace('"chosen_score": 5.0', '"chosen_score": "high"')).encode(), "p.jsonl")
    with pytest.raises(MotionPreferFormatError, match="same motion"):
        parse_pairs(good.replace("motions/b.npz", "motions/a.npz").encode())


def test_mixed_set_is_deterministic_by_seed_and_order_free():
    # 4 prompts x [5, 2, 0] per task: 2 pairs per prompt, 16 in all
    records = [rec(f"m{t}{p}{i}", s, f"p{p}", task=t) for t in ("temporal", "integrity") for p in range(4) for i, s in enumerate([5, 2, 0])]
    by_task = build_pairs(records)
    pool = sum(len(v) for v in by_task.values())
    assert pool == 16
    a = sample_mixed(by_task, 5, seed=1)
    assert len(a) == 5 and len({p.pair_id for p in a}) == 5
    assert sample_mixed(by_task, 5, seed=1) == a
    reversed_input = {k: list(reversed(v)) for k, v in reversed(list(by_task.items()))}
    assert sample_mixed(reversed_input, 5, seed=1) == a
    assert sample_mixed(by_task, 5, seed=2) != a
    with pytest.raises(MixedSetTooLarge, match=f"only {pool}"):
        sample_mixed(by_task, pool + 1)
    assert len(sample_mixed(by_task, pool + 1, strict=False)) == pool


def test_bad_settings_are_rejected():
    with pytest.raises(PairConfigError, match="theta"):
        PairConfig(theta=-1)
    with pytest.raises(PairConfigError, match="unknown task"):
        PairConfig(chosen_threshold={"dance": 3})
    with pytest.raises(PairConfigError, match="positive"):
        sample_mixed({}, 0)


def test_build_pair_sets_writes_per_task_and_mixed_files(store):
    from services.trainer.motionprefer import save_records

    records = [rec("a", 5), rec("b", 0), rec("c", 4), rec("x", 5, task="integrity"), rec("y", 0, task="integrity")]
    save_records(store, "datasets/r1/motionprefer.jsonl", records)
    sets = build_pair_sets(store, "datasets/r1/motionprefer.jsonl", "datasets/r1", mixed_size=100, seed=0)
    got = {f.name: (f.key, f.pairs) for f in sets.files}
    assert got == {
        "integrity": ("datasets/r1/pairs-integrity.jsonl", 1),
        "temporal": ("datasets/r1/pairs-temporal.jsonl", 3),
        "mixed": ("datasets/r1/pairs-mixed.jsonl", 4),
    }
    assert len(load_pairs(store, "datasets/r1/pairs-mixed.jsonl")) == 4
    assert [(r.task, r.prompts, r.motions, r.pairs) for r in sets.stats] == [
        ("integrity", 1, 2, 1),
        ("temporal", 1, 3, 3),
        ("total", 2, 5, 4),
    ]
    assert store.get_json(sets.stats_key)["rows"][-1] == {"task": "total", "prompts": 2, "motions": 5, "pairs": 4}
    all_mixed = build_pair_sets(store, "datasets/r1/motionprefer.jsonl", "datasets/r2", mixed_size=0)
    assert all_mixed.files[-1].pairs == 4


def test_a_single_threshold_for_every_task():
    cfg = PairConfig.with_min_chosen_score(4.0, theta=1.0)
    assert cfg.threshold("frequency") == 4.0 and cfg.theta == 1.0
    assert PairConfig.with_min_chosen_score(None).threshold("frequency") == 2.0
    assert PairConfig.with_min_chosen_score(3.0, score_filter=False).threshold("temporal") is None
