"""The VLM judge when the endpoint misbehaves: every reply path gives its budget reservation back,
a broken reply fails only its own item, and a refused key / permission / quota fails the call.

All against the real local HTTP server (fake_openai), through the real openai client."""

import pytest

from conftest import make_item
from fake_openai import (
    FakeOpenAI,
    Reply,
    error_reply,
    forbidden_reply,
    hang_reply,
    not_json_reply,
    quota_reply,
    score_reply,
    server_error_reply,
    truncated_reply,
    unauthorized_reply,
    wrong_schema_reply,
)
from atom.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.judge.budget import BudgetLedger, CostModel
from services.judge.client import JudgeConfigError, RetryPolicy
from services.judge.vlm import VLMConfig, VLMJudge

KEY = "sk-test-0123456789abcdefSECRET"
ENV = {"ATOM_JUDGE_API_KEY": KEY}
FAST_RETRY = RetryPolicy(max_retries=2, base_delay_s=0.0, max_delay_s=0.0)
COST = CostModel()


def judge(srv, ledger=None, env=ENV, **kw):
    cfg = dict(model="fake-vlm", base_url=srv.base_url, retry=FAST_RETRY, timeout_s=5.0, concurrency=2)
    cfg.update(kw)
    return VLMJudge(VLMConfig(**cfg), env=env, ledger=ledger)


# -- 200 replies that are not a chat completion ---------------------------------------------------

MALFORMED = {
    # name: (reply, USD the provider reported for it: charged although the reply is unusable)
    "html page (text/html)": (not_json_reply(), 0.0),
    "not JSON (application/json)": (not_json_reply("upstream exploded", content_type="application/json"), 0.0),
    "truncated JSON": (truncated_reply(), 0.0),
    "no choices, no usage": (wrong_schema_reply(), 0.0),
    "no choices, usage reported": (wrong_schema_reply(drop=("choices",)), COST.cost(100, 20)),
    "choices not a list": (Reply(body={"choices": "nope", "usage": "lots"}), 0.0),
    "a JSON list": (Reply(body=[1, 2, 3]), 0.0),
    "message not an object": (Reply(body={"choices": [{"message": 5}]}), 0.0),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_replies_fail_their_item_and_release_the_budget(name):
    reply, usd = MALFORMED[name]
    items = [make_item(i) for i in range(6)]
    # $0.05 holds about three of these calls' estimates: a leaked reservation soon blocks everything.
    with FakeOpenAI([reply]) as srv, judge(srv, budget_usd=0.05) as j:
        got = list(j.score_batch(items))
        assert srv.calls == 6  # each item asked once: a broken reply is not retried blindly
        assert [g.error_kind for g in got] == ["reply"] * 6, [g.error for g in got]
        assert all(g.score is None and "malformed reply" in g.error for g in got)
        assert j.ledger.reserved_usd == 0.0
        assert j.ledger.spent_usd == pytest.approx(6 * usd)
        assert sum(g.cost_usd for g in got) == pytest.approx(6 * usd)
        assert j.stats.reply_errors == 6
        srv.script = [score_reply(4)]  # the endpoint recovers: the model is not stuck
        assert j.score(make_item(99)).ok


def test_a_completion_without_usage_is_charged_its_estimate():
    with FakeOpenAI([score_reply(5, usage=False)]) as srv, judge(srv) as j:
        g = j.score(make_item(0))
        assert g.ok and g.cost_usd > COST.cost(100, 20)  # the bound, not a guess below it
        assert j.ledger.spent_usd == pytest.approx(g.cost_usd) and j.ledger.reserved_usd == 0.0


# -- HTTP errors, timeouts, anything else ---------------------------------------------------------


@pytest.mark.parametrize(
    "reply,kind,calls",
    [
        (server_error_reply(), "unavailable", 3),  # retried, then given up
        (error_reply(429, "slow down"), "unavailable", 3),  # a rate limit is retried too
        (error_reply(404, "no such model"), "request", 1),
    ],
)
def test_http_errors_release_the_budget(reply, kind, calls):
    with FakeOpenAI([reply]) as srv, judge(srv, budget_usd=0.05) as j:
        g = j.score(make_item(0))
        assert g.error_kind == kind and srv.calls == calls
        assert j.ledger.reserved_usd == 0.0 and j.ledger.spent_usd == 0.0


@pytest.mark.parametrize("charge", [True, False])
def test_timeouts_release_the_budget_and_charge_the_estimate_when_asked(charge):
    with FakeOpenAI([hang_reply(2.0)]) as srv, judge(srv, timeout_s=0.1, retry=RetryPolicy(1, 0.0, 0.0), charge_timeouts=charge) as j:
        g = j.score(make_item(0))
        assert g.error_kind == "unavailable" and "timed out" in g.error and srv.calls == 2
        assert j.ledger.reserved_usd == 0.0
        assert (j.ledger.spent_usd > 0) == charge and g.cost_usd == pytest.approx(j.ledger.spent_usd)


class Boom(BaseException):
    """Something nobody planned for, raised deep in the HTTP stack (not an Exception, even)."""


def test_any_exception_releases_the_budget():
    import httpx2
    import openai

    def explode(response):
        raise Boom("unexpected")

    with FakeOpenAI([score_reply(5)]) as srv:
        # The real client and a real HTTP exchange; the response hook stands for any bug below us.
        client = openai.OpenAI(
            base_url=srv.base_url, api_key=KEY, max_retries=0, http_client=httpx2.Client(event_hooks={"response": [explode]})
        )
        j = VLMJudge(VLMConfig(model="fake-vlm", base_url=srv.base_url, budget_usd=0.05), env=ENV, client=client)
        with j, pytest.raises(Boom):
            j.score(make_item(0))
        assert srv.calls == 1 and j.ledger.reserved_usd == 0.0


# -- the account itself is refused: fail the whole call --------------------------------------------

ACCOUNT = {
    "401": (unauthorized_reply(f"Incorrect API key provided: {KEY}."), Unauthenticated, "rejected the API key"),
    "403": (forbidden_reply(f"key {KEY} may not use this model"), PermissionDenied, "permission"),
    "429 insufficient_quota": (quota_reply(), ResourceExhausted, "quota"),
}


@pytest.mark.parametrize("name", list(ACCOUNT))
def test_account_errors_fail_the_call_with_a_fix_and_never_the_key(name):
    reply, error, says = ACCOUNT[name]
    with FakeOpenAI([reply]) as srv, judge(srv, budget_usd=0.05) as j:
        with pytest.raises(error) as err:
            j.score(make_item(0))
        assert srv.calls == 1  # not retried: every retry would be refused the same way
        msg = str(err.value)
        assert says in msg and KEY not in msg and "\n" not in msg
        # what to do: which variable held the key, and every place a key can come from
        assert "$ATOM_JUDGE_API_KEY" in msg and "OPENAI_API_KEY" in msg and "ATOM_JUDGE_API_KEY_FILE" in msg
        assert j.ledger.reserved_usd == 0.0


@pytest.mark.parametrize("name", list(ACCOUNT))
def test_account_errors_fail_a_batch_without_asking_for_every_item(name):
    reply, error, _ = ACCOUNT[name]
    items = [make_item(i) for i in range(20)]
    with FakeOpenAI([reply]) as srv, judge(srv, concurrency=2) as j:
        with pytest.raises(error):
            list(j.score_batch(items))
        assert srv.calls <= 3  # the items already in flight at most; the rest never asked
        assert j.ledger.reserved_usd == 0.0


def test_the_message_names_the_key_file_the_key_came_from(tmp_path):
    key_file = tmp_path / "judge.key"
    key_file.write_text(KEY + "\n")
    with FakeOpenAI([unauthorized_reply()]) as srv, judge(srv, env={"ATOM_JUDGE_API_KEY_FILE": str(key_file)}) as j:
        with pytest.raises(Unauthenticated, match="judge.key"):
            j.score(make_item(0))


# -- one ledger shared by several judges ------------------------------------------------------------


def test_judges_sharing_a_ledger_share_its_cap():
    shared = BudgetLedger(0.05)
    costly = score_reply(5, prompt_tokens=100_000)  # $0.25 reported: the cap is spent in one call
    with FakeOpenAI([costly]) as srv, judge(srv, model="model-a", ledger=shared) as a, judge(srv, model="model-b", ledger=shared) as b:
        assert a.score(make_item(0)).ok
        g = b.score(make_item(0))
        assert g.error_kind == "budget" and "budget cap" in g.error and srv.calls == 1
        assert a.ledger is b.ledger is shared


def test_a_batch_cap_still_applies_on_top_of_a_shared_ledger():
    with FakeOpenAI([score_reply(5)]) as srv, judge(srv, ledger=BudgetLedger(None)) as j:
        got = list(j.score_batch([make_item(0)], budget_usd=1e-6))
        assert got[0].error_kind == "budget" and srv.calls == 0


def test_a_judge_takes_a_shared_ledger_or_its_own_cap_not_both():
    with FakeOpenAI() as srv, pytest.raises(JudgeConfigError, match="ledger"):
        judge(srv, ledger=BudgetLedger(1.0), budget_usd=1.0)


def test_error_messages_name_the_endpoint_without_credentials_in_its_url():
    from services.judge.client import endpoint_name

    assert endpoint_name("http://user:hunter2@vllm.internal:8000/v1") == "http://vllm.internal:8000/v1"
    assert endpoint_name(None) == "https://api.openai.com/v1"
    assert endpoint_name("localhost:8000/v1") == "the endpoint"
