import pytest

from services.evaluator.alignment import (
    AlignmentInputError,
    compare,
    paired_difference,
    per_prompt_means,
    task_score,
    win_tie_lose,
)


def test_per_prompt_means_and_task_score():
    means = per_prompt_means([("p1", 5), ("p1", 3), ("p2", 0), ("p3", 5)])
    assert means == {"p1": 4.0, "p2": 0.0, "p3": 5.0}
    ci = task_score(means)
    assert ci.mean == pytest.approx(3.0)
    assert ci.n == 3
    # population std of (4, 0, 5) = sqrt(14/3)
    assert ci.half_width == pytest.approx(1.96 * (14 / 3) ** 0.5 / 3**0.5)
    with pytest.raises(AlignmentInputError):
        task_score({})


def test_win_tie_lose_and_difference():
    a = {"p1": 5.0, "p2": 3.0, "p3": 2.0, "p4": 4.0, "only_a": 1.0}
    b = {"p1": 4.0, "p2": 3.0, "p3": 3.0, "p4": 1.0, "only_b": 0.0}
    wtl = win_tie_lose(a, b)
    assert (wtl.win, wtl.tie, wtl.lose) == (2, 1, 1)
    assert wtl.win_rate == pytest.approx(0.5)
    d = paired_difference(a, b)
    assert d.mean == pytest.approx((1 + 0 - 1 + 3) / 4)
    assert d.n == 4
    c = compare("temporal", "tuned", "base", a, b)
    assert c.to_dict()["improved"] is d.above_zero
    assert c.to_dict()["win"] == 2


def test_clear_improvement_is_above_zero():
    a = {f"p{i}": 4.0 + (i % 2) for i in range(40)}
    b = {f"p{i}": 2.0 + (i % 3) * 0.5 for i in range(40)}
    assert paired_difference(a, b).above_zero
    assert not paired_difference(b, a).above_zero


def test_no_common_prompt_is_an_error():
    with pytest.raises(AlignmentInputError, match="share no judged prompt"):
        win_tie_lose({"a": 1.0}, {"b": 1.0})
