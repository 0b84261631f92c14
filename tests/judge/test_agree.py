import math

import pytest
from scipy import stats

from atom.agreement import AgreementInputError, agreement, agreement_by_id, load_scores


def test_perfect_and_partial_agreement():
    rep = agreement([5, 4, 3, 1], [5, 4, 3, 1], labels=[1, 2, 3, 4, 5])
    assert rep.exact == 1.0 and rep.spearman == pytest.approx(1.0) and rep.kappa == pytest.approx(1.0)
    assert rep.confusion[4][4] == 1 and rep.confusion[1][1] == 0

    a, b = [5, 4, 3, 1, 2, 5], [5, 3, 3, 2, 2, 4]
    rep = agreement(a, b, names=("vlm", "human"))
    assert rep.n == 6 and rep.exact == pytest.approx(3 / 6) and rep.within_one == 1.0
    assert rep.mean_abs_diff == pytest.approx(0.5)
    assert rep.spearman == pytest.approx(stats.spearmanr(a, b).statistic)
    assert rep.labels == [1, 2, 3, 4, 5]
    assert sum(map(sum, rep.confusion)) == 6 and rep.confusion[4][3] == 1  # a=5, b=4
    text = rep.render()
    assert "vlm vs human" in text and "Spearman" in text and "exact match    0.500" in text


def test_kappa_matches_hand_computation():
    a, b = [0, 0, 5, 5, 5, 0], [0, 5, 5, 5, 0, 0]
    rep = agreement(a, b)
    p_o, p_e = 4 / 6, 0.5 * 0.5 + 0.5 * 0.5
    assert rep.kappa == pytest.approx((p_o - p_e) / (1 - p_e))


def test_missing_scores_are_skipped_and_constant_sides_have_no_rank_correlation():
    rep = agreement([5, None, 0, 5], [5, 5, None, 5])
    assert rep.n == 2 and rep.skipped == 2
    assert rep.spearman is None and rep.kappa is None  # both sides constant
    assert "n/a" in rep.render()
    empty = agreement([None], [1])
    assert empty.n == 0 and math.isnan(empty.exact)


def test_a_judge_that_scored_nothing_stops_the_agreement():
    from atom.pipeline.agree import JudgeGaveNoScores, require_scores

    require_scores("vlm", {"a": 5, "b": None}, ["HTTP 500"])  # some scores: compare what there is
    require_scores("vlm", {}, [])
    require_scores("human:x.csv", {"a": None}, [])  # no errors reported: nothing to explain
    with pytest.raises(
        JudgeGaveNoScores,
        match=r"'vlm' gave no score for any of the 2 items; first error: HTTP 401: "
        r"bad key more$",
    ):
        require_scores("vlm", {"a": None, "b": None}, ["HTTP 401: bad key\nmore", "HTTP 401: bad key"])


def test_bad_inputs():
    with pytest.raises(AgreementInputError, match="length"):
        agreement([1, 2], [1])
    with pytest.raises(AgreementInputError, match="not among"):
        agreement([7], [1], labels=[1, 2, 3])
    with pytest.raises(AgreementInputError, match="not an integer"):
        agreement([1.5], [1])


def test_label_files_and_by_id(tmp_path):
    csv_path = tmp_path / "human.csv"
    csv_path.write_text("item_id,score,annotator\na,5,x\nb,3,y\nc,,z\nd,4,z\n")
    jsonl_path = tmp_path / "judge.jsonl"
    jsonl_path.write_text(
        '{"item_id": "a", "score": 5}\n{"item_id": "b", "score": 4}\n{"item_id": "c", "score": 2}\n{"item_id": "e", "score": 1}\n'
    )
    human, judge = load_scores(csv_path), load_scores(jsonl_path)
    assert human == {"a": 5, "b": 3, "c": None, "d": 4}
    rep = agreement_by_id(judge, human, names=("judge", "human"))
    assert rep.n == 2 and rep.exact == 0.5
    assert rep.skipped == 1 + 2  # c has no human score; d and e are on one side only
    with pytest.raises(AgreementInputError, match="header"):
        load_scores(data="id,value\na,1\n", fmt="csv")
    with pytest.raises(AgreementInputError, match="line 1"):
        load_scores(data='{"id": "a"}\n', fmt="jsonl")
