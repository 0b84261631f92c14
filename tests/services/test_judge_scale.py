"""The judge service's scale options over gRPC, against the local OpenAI-compatible server: votes
with their agreement, and the Batch API at its price."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "security"))
sys.path.insert(0, str(Path(__file__).parents[1] / "judge"))
from fake_openai import score_reply  # noqa: E402
from test_judge_probe import env, fake, score_request, services  # noqa: E402,F401


def test_votes_come_back_with_their_agreement(env, services, fake):  # noqa: F811
    server = fake([score_reply(5), score_reply(5), score_reply(0)] * 4, env)  # integrity scores 0 or 5
    judge = services("judge")
    req = score_request(judge.store, 2)
    req.judge.votes = 3
    out = sorted(judge.client.stream("Score", req, timeout=60), key=lambda j: j.item_id)
    assert len(out) == 2 and all(j.ok for j in out)
    for j in out:
        assert len(j.votes) == 3 and j.score == max(set(j.votes), key=list(j.votes).count)
        assert j.agreement == pytest.approx(list(j.votes).count(int(j.score)) / 3)
        assert 0 <= j.vote_entropy <= 1
    assert server.calls == 6
    again = list(judge.client.stream("Score", req, timeout=60))
    assert all(j.cache_hit for j in again) and server.calls == 6  # every vote came from the cache


def test_the_batch_api_costs_half(env, services, fake):  # noqa: F811
    server = fake([score_reply(5)], env)
    judge = services("judge")
    sync_req = score_request(judge.store, 2)
    sync = list(judge.client.stream("Score", sync_req, timeout=60))
    batch_req = score_request(judge.store, 2, first=10)
    batch_req.judge.batch_api = True
    batch = list(judge.client.stream("Score", batch_req, timeout=120))
    assert all(j.ok for j in batch) and len(server.batch_creates) == 1
    assert sum(j.cost_usd for j in batch) == pytest.approx(sum(j.cost_usd for j in sync) / 2)


def test_bad_vote_settings_are_refused(env, services, fake):  # noqa: F811
    import grpc

    fake([score_reply(5)], env)
    judge = services("judge")
    req = score_request(judge.store, 1)
    req.judge.votes = 99
    with pytest.raises(grpc.RpcError) as err:
        list(judge.client.stream("Score", req, timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "judge.votes" in err.value.details()
