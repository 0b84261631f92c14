"""The LLM prompt composer against the local chat-completions server, through the real client."""

import json

import pytest

from atom.motion.events import EVENTS, EventLabel, LabelGroup
from atom.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from fake_openai import (
    FakeOpenAI,
    Reply,
    error_reply,
    forbidden_reply,
    not_json_reply,
    quota_reply,
    truncated_reply,
    unauthorized_reply,
    wrong_schema_reply,
)
from services.judge.client import RetryPolicy
from services.judge.llm_compose import (
    ComposeReplyError,
    LLMComposeConfig,
    LLMComposer,
    parse_sentence,
    validate_sentence,
)

ENV = {"OPENAI_API_KEY": "sk-compose-test-key-123456"}


def sentence(text):
    return Reply(content=json.dumps({"sentence": text}))


def writer(req, n):
    """A well-behaved LLM: joins the phrases it was given."""
    group = json.loads(req["messages"][1]["content"])
    phrases = [e["event"] for e in group["events"]]
    if group["task"] == "frequency":
        c = group["events"][0]["count"]
        return sentence(f"A person {phrases[0]} {dict([(1, 'once'), (2, 'twice')]).get(c, f'{c} times')}.")
    return sentence("A man " + ", and then ".join(phrases) + ".")


def composer(srv, **kw):
    cfg = LLMComposeConfig(model="fake-llm", base_url=srv.base_url, retry=RetryPolicy(2, 0.0, 0.0), **kw)
    return LLMComposer(cfg, env=ENV)


def test_composes_valid_prompts_with_exact_labels():
    with FakeOpenAI(writer) as srv, composer(srv) as c:
        res = c.compose(["integrity", "temporal", "frequency"], 4, seed=3)
        assert srv.calls == 12 and res.calls == 12
        req = srv.requests[0]
    assert not res.errors and len(res.prompts) == 12
    assert [p.task for p in res.prompts] == ["integrity"] * 4 + ["temporal"] * 4 + ["frequency"] * 4
    for p in res.prompts:
        validate_sentence(p.text, p.labels, EVENTS)
    assert req["model"] == "fake-llm" and req["response_format"]["type"] == "json_schema"
    assert "pick them at random" in req["messages"][0]["content"]


def test_bad_sentences_are_retried_then_recorded():
    labels = LabelGroup("temporal", (EventLabel("walk_forward"), EventLabel("squat"), EventLabel("wave")))
    script = [
        Reply(content="not json"),
        sentence("A man walks forward and squats."),
        sentence("A man walks forward, then squats, and then waves."),
    ]
    with FakeOpenAI(script) as srv, composer(srv) as c:
        assert c.sentence_for(labels) == "A man walks forward, then squats, and then waves."
        assert srv.calls == 3
    with FakeOpenAI([sentence("A man walks forward.")]) as srv, composer(srv, max_attempts=2) as c:
        res = c.compose(["temporal"], 2, seed=0)
        assert not res.prompts and len(res.errors) == 2 and srv.calls == 4
        assert "does not mention" in res.errors[0]["error"]


def test_endpoint_failures_are_recorded_not_raised():
    with FakeOpenAI([error_reply(503)]) as srv, composer(srv) as c:
        res = c.compose(["frequency"], 1, seed=0)
        assert len(res.errors) == 1 and "gave up after 3 attempts" in res.errors[0]["error"]
        assert srv.calls == 3


@pytest.mark.parametrize(
    "reply",
    [
        not_json_reply(),
        not_json_reply("nope", content_type="application/json"),
        truncated_reply(),
        wrong_schema_reply(),
        Reply(body=[1, 2]),
    ],
    ids=["html", "not-json", "truncated", "no-choices", "json-list"],
)
def test_malformed_replies_are_recorded_not_raised(reply):
    with FakeOpenAI([reply]) as srv, composer(srv, max_attempts=2) as c:
        res = c.compose(["integrity"], 2, seed=0)
        assert not res.prompts and len(res.errors) == 2 and srv.calls == 4
        assert all("malformed reply" in e["error"] for e in res.errors)


KEY = ENV["OPENAI_API_KEY"]


@pytest.mark.parametrize(
    "reply,error",
    [
        (unauthorized_reply(f"Incorrect API key provided: {KEY}"), Unauthenticated),
        (forbidden_reply(), PermissionDenied),
        (quota_reply(), ResourceExhausted),
    ],
    ids=["401", "403", "429-insufficient_quota"],
)
def test_account_errors_fail_the_whole_compose(reply, error):
    with FakeOpenAI([reply]) as srv, composer(srv) as c:
        with pytest.raises(error) as err:
            c.compose(["integrity", "temporal"], 3, seed=0)
        assert srv.calls == 1  # neither retried nor asked again for the next label group
    msg = str(err.value)
    assert KEY not in msg and "$OPENAI_API_KEY" in msg and "ATOM_JUDGE_API_KEY_FILE" in msg


def test_validation():
    freq = LabelGroup("frequency", (EventLabel("jump_forward", 3),))
    validate_sentence("Someone leaps forward three times.", freq, EVENTS)
    validate_sentence("A person hops forward 3 times.", freq, EVENTS)
    with pytest.raises(ComposeReplyError, match="count"):
        validate_sentence("Someone leaps forward twice.", freq, EVENTS)
    temporal = LabelGroup("temporal", (EventLabel("turn_left"), EventLabel("turn_right"), EventLabel("run")))
    validate_sentence("A man turns left, then turns right, followed by running forward.", temporal, EVENTS)
    validate_sentence("A man turns right after turning left, then jogs forward.", temporal, EVENTS)
    with pytest.raises(ComposeReplyError, match="out of order"):
        validate_sentence("A man turns right, then turns left, then runs forward.", temporal, EVENTS)
    with pytest.raises(ComposeReplyError, match="does not mention"):
        validate_sentence("A man turns left twice, then runs forward.", temporal, EVENTS)
    assert parse_sentence('```json\n{"sentence": "A  man squats."}\n```') == "A man squats."
    with pytest.raises(ComposeReplyError):
        parse_sentence('{"text": "x"}')
