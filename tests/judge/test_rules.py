import itertools
import random

import pytest

from atom.motion.events import EVENT_NAMES, EventLabel, LabelGroup
from services.judge.rules import (
    ALLOWED_SCORES,
    RuleInputError,
    is_pass,
    is_subsequence,
    missing_events,
    occurrences,
    score_from_detected,
)

A, B, C, X, Y, Z = "walk_forward", "squat", "wave", "kick", "clap", "bow"


def ev(*names):
    return [EventLabel(n) if isinstance(n, str) else EventLabel(*n) for n in names]


def group(task, *names):
    return LabelGroup(task, tuple(ev(*names)))


def test_occurrences_expand_counts():
    assert occurrences(ev((B, 2), C, (B, 1))) == [B, B, C, B]
    with pytest.raises(RuleInputError):
        occurrences([EventLabel(B, -1)])


def test_subsequence_and_multiset_missing():
    assert is_subsequence([A, B], [X, A, Y, B, Z])
    assert not is_subsequence([B, A], [A, B])
    assert is_subsequence([], [A])
    assert missing_events([A, A, B], [A, B]) == [A]  # one occurrence cannot serve two asks
    assert missing_events([A, B], [B, A, A]) == []


@pytest.mark.parametrize(
    "detected,score",
    [
        ([A, B, C], 5),
        ([C, B, A], 5),  # order does not matter for integrity
        ([X, A, B, Y, C, Z], 5),  # extras are harmless
        ([(A, 2), B, C], 5),  # counts are ignored
        ([A, B], 0),
        ([], 0),
        ([X, Y, Z], 0),
    ],
)
def test_integrity(detected, score):
    s, why = score_from_detected(group("integrity", A, B, C), ev(*detected))
    assert s == score and why


def test_integrity_repeated_ask_needs_two_occurrences():
    g = group("integrity", A, B, A)
    assert score_from_detected(g, ev(A, B))[0] == 0
    assert score_from_detected(g, ev((A, 2), B))[0] == 5


@pytest.mark.parametrize(
    "detected,score",
    [
        ([A, B, C], 5),
        ([X, A, Y, B, Z, C], 5),  # extras anywhere keep the order
        ([A, A, B, C, C], 5),
        ([B, A, B, C], 5),  # the second B completes the order
        ([C, A, B], 4),
        ([B, A, C], 4),
        ([C, B, A], 4),
        ([A, B], 3),
        ([B, A, X], 3),  # one missing: order is not scored further
        ([C], 2),
        ([X, A], 2),
        ([], 1),
        ([X, Y, Z], 1),
    ],
)
def test_temporal(detected, score):
    assert score_from_detected(group("temporal", A, B, C), ev(*detected))[0] == score


def test_temporal_every_permutation_of_three():
    g = group("temporal", A, B, C)
    for perm in itertools.permutations([A, B, C]):
        assert score_from_detected(g, ev(*perm))[0] == (5 if list(perm) == [A, B, C] else 4)


def test_temporal_needs_exactly_three():
    with pytest.raises(RuleInputError, match="exactly 3"):
        score_from_detected(group("temporal", A, B), ev(A, B))


@pytest.mark.parametrize(
    "detected,score",
    [
        ([(B, 3)], 3),
        ([(B, 1), X, (B, 2)], 3),  # occurrences of the asked event are summed across the clip
        ([X, (B, 3), Y], 3),
        ([(B, 2)], 2),
        ([(B, 4)], 2),
        ([X], 1),
        ([], 1),
    ],
)
def test_frequency(detected, score):
    assert score_from_detected(group("frequency", (B, 3)), ev(*detected))[0] == score


def test_frequency_rejects_bad_groups():
    with pytest.raises(RuleInputError):
        score_from_detected(group("frequency", A, B), [])
    with pytest.raises(RuleInputError):
        score_from_detected(group("frequency", (B, 0)), [])
    with pytest.raises(ValueError, match="unknown task"):
        score_from_detected(LabelGroup("speed", tuple(ev(A))), [])


def test_random_inputs_stay_in_the_allowed_sets():
    rng = random.Random(0)
    for _ in range(500):
        task = rng.choice(list(ALLOWED_SCORES))
        k = {"integrity": rng.randint(2, 5), "temporal": 3, "frequency": 1}[task]
        asked = [EventLabel(n, rng.randint(1, 3) if task == "frequency" else 1) for n in rng.sample(EVENT_NAMES, k)]
        detected = [EventLabel(rng.choice(EVENT_NAMES), rng.randint(1, 3)) for _ in range(rng.randint(0, 6))]
        s, _ = score_from_detected(LabelGroup(task, tuple(asked)), detected)
        assert s in ALLOWED_SCORES[task]
        # the asked events themselves always earn the top score
        assert score_from_detected(LabelGroup(task, tuple(asked)), asked)[0] == max(ALLOWED_SCORES[task])


def test_pass_thresholds():
    assert is_pass("integrity", 5) and not is_pass("integrity", 0)
    assert is_pass("temporal", 5) and not is_pass("temporal", 4)
    assert is_pass("frequency", 3) and not is_pass("frequency", 2)
