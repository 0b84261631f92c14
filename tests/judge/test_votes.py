"""Self-consistency: majority votes, their reliability, their cache, and pair filtering."""

import math

import pytest

from conftest import make_item
from fake_openai import FakeOpenAI, images_of, prompt_of, score_reply
from services.judge.client import RetryPolicy
from services.judge.records import Judgement
from services.judge.votes import (
    PairVotes,
    agreement_of,
    filter_pairs,
    format_vote_summary,
    majority,
    normalised_entropy,
    summarize_votes,
    vote_plan,
)
from services.judge.vlm import VLMConfig, VLMJudge

ENV = {"ATOM_JUDGE_API_KEY": "sk-test-votes-0000000000"}
TEMPORAL = (1, 2, 3, 4, 5)


def test_majority_agreement_and_ties():
    r = majority([5, 5, 4], TEMPORAL)
    assert (r.score, r.agreement, r.votes) == (5, pytest.approx(2 / 3), (5, 5, 4))
    assert r.entropy == pytest.approx(normalised_entropy([2, 1], 5))
    assert majority([0, 5], (0, 5)).score == 0  # a tie goes to the lower score
    tie = majority([3, 4, None], TEMPORAL)
    assert tie.score == 3 and tie.agreement == pytest.approx(1 / 3)  # a failed vote counts against
    assert majority([None, None], TEMPORAL).score is None
    assert majority([2, 2, 2], TEMPORAL).entropy == 0.0
    assert majority([1, 2, 3], TEMPORAL).entropy == pytest.approx(1.0)  # as spread as 3 votes can be
    assert majority([1, 2], TEMPORAL).entropy == pytest.approx(1.0)
    assert normalised_entropy([1, 1, 1, 1, 1], 5) == pytest.approx(1.0)
    assert normalised_entropy([3, 1], 5) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4))
    with pytest.raises(ValueError, match="not among"):
        majority([7], TEMPORAL)
    plan = vote_plan(3, 0.7, seed=10)
    assert [(v.index, v.seed, v.temperature) for v in plan] == [(0, 10, 0.7), (1, 11, 0.7), (2, 12, 0.7)]


def judge(srv, store, **kw):
    cfg = dict(model="fake-vlm", base_url=srv.base_url, retry=RetryPolicy(1, 0.0, 0.0), vote_temperature=0.9, vote_seed=100)
    cfg.update(kw)
    return VLMJudge(VLMConfig(**cfg), store, env=ENV)


def by_seed(scores: dict):
    """A script whose answer depends on the request's seed (how sampling differs between votes)."""
    return lambda req, n: score_reply(scores.get(req.get("seed"), 2), prompt_tokens=100, completion_tokens=10)


def test_votes_ask_n_times_keep_the_majority_and_record_it(store):
    items = [make_item(0), make_item(1)]
    with FakeOpenAI(by_seed({100: 5, 101: 4, 102: 5})) as srv, judge(srv, store, votes=3) as j:
        got = list(j.score_batch(items))
        assert srv.calls == 6
        for req in srv.requests:
            assert req["temperature"] == 0.9 and req["seed"] in (100, 101, 102)
        for it in items:  # every vote shows the frames in their time order
            reqs = [r for r in srv.requests if prompt_of(r) == it.prompt.text]
            assert sorted(r["seed"] for r in reqs) == [100, 101, 102]
            assert all(images_of(r) == images_of(reqs[0]) for r in reqs)
    g = got[0]
    assert g.ok and g.score == 5 and g.extra["votes"] == [5, 4, 5]
    assert g.extra["agreement"] == pytest.approx(2 / 3) and 0 < g.extra["entropy"] < 1
    assert g.cost_usd == pytest.approx(3 * j.config.cost.cost(100, 10)) and g.prompt_tokens == 300
    rec = store.get_json(g.record_key)  # the aggregate record, next to the three vote records
    assert rec["score"] == 5 and rec["votes"] == [5, 4, 5] and rec["agreement"] == pytest.approx(2 / 3)
    assert len(store.list("judgements/")) == 2 * 3 + 2
    assert len(set(g.extra["vote_keys"])) == 3


def test_raising_votes_pays_only_for_the_new_ones(store):
    items = [make_item(0), make_item(1)]
    scores = {100: 5, 101: 4, 102: 4, 103: 5, 104: 5}
    with FakeOpenAI(by_seed(scores)) as srv:
        with judge(srv, store, votes=3) as j:
            three = list(j.score_batch(items))
        assert srv.calls == 6 and three[0].score == 4
        with judge(srv, store, votes=5) as j:
            five = list(j.score_batch(items))
        assert srv.calls == 6 + 2 * 2  # only votes 4 and 5 of each item are new questions
        assert sorted(r["seed"] for r in srv.requests[6:]) == [103, 103, 104, 104]
        assert five[0].score == 5 and five[0].extra["votes"] == [5, 4, 4, 5, 5]
        assert five[0].extra["agreement"] == pytest.approx(3 / 5)
        assert five[0].cost_usd == pytest.approx(2 * j.config.cost.cost(100, 10))  # the cached votes are free
        with judge(srv, store, votes=5) as j:
            again = list(j.score_batch(items))
        assert srv.calls == 10 and all(g.cache_hit for g in again)
        with judge(srv, store, votes=1) as j:  # one answer at temperature 0 is another question
            list(j.score_batch(items[:1]))
        assert srv.calls == 11 and "seed" not in srv.requests[-1]


def test_failed_votes_lower_agreement_and_all_failed_is_an_error(store):
    def script(req, n):
        return score_reply(5) if req["seed"] == 100 else score_reply(9)  # 9 is not a temporal score

    with FakeOpenAI(script) as srv, judge(srv, store, votes=3) as j:
        g = j.score_votes(make_item(0))
        assert g.ok and g.score == 5 and g.extra["agreement"] == pytest.approx(1 / 3)
        assert g.extra["vote_errors"] == ["reply", "reply"]
    with FakeOpenAI([score_reply(9)]) as srv, judge(srv, store, votes=2) as j:
        g = j.score_votes(make_item(5))
        assert not g.ok and g.error_kind == "reply" and g.extra["votes"] == [None, None]


def test_pair_filter_and_summary():
    def jm(score, agreement):
        return Judgement("x", score, "", "vlm", extra={"agreement": agreement, "entropy": 1 - agreement, "votes": [score]})

    pairs = [
        PairVotes.of("p1", "temporal", jm(5, 1.0), jm(2, 0.8)),
        PairVotes.of("p2", "temporal", jm(5, 0.6), jm(1, 1.0)),  # the chosen side is unsure
        PairVotes.of("p3", "integrity", {"agreement": 1.0}, 0.4),
        PairVotes.of("p4", "integrity", Judgement("k", 5, "", "kinematic-v1"), {"extra": {"agreement": 0.75}}),
    ]
    assert agreement_of(Judgement("k", 5, "", "kinematic-v1")) == 1.0  # one answer: no votes to disagree
    f = filter_pairs(pairs, min_agreement=0.7)
    assert f.kept == ["p1", "p4"] and f.dropped == ["p2", "p3"] and f.dropped_count == 2
    assert f.kept_per_task == {"temporal": 1, "integrity": 1} and f.dropped_per_task == {"temporal": 1, "integrity": 1}
    assert filter_pairs(pairs, 0.0).kept == ["p1", "p2", "p3", "p4"]
    with pytest.raises(ValueError):
        filter_pairs(pairs, 1.5)
    summary = summarize_votes(
        {"temporal": [jm(5, 1.0), jm(5, 0.6), jm(2, 0.8), Judgement("e", None, "", "v")], "integrity": [jm(0, 1.0)]}, f
    )
    t = summary["temporal"]
    assert t.judged == 3 and t.mean_agreement == pytest.approx(0.8) and t.unanimous == pytest.approx(1 / 3)
    assert t.scores == {2: 1, 5: 2} and (t.pairs_kept, t.pairs_dropped) == (1, 1)
    text = format_vote_summary(summary)
    assert "temporal" in text and "2:1 5:2" in text
