"""vLLM's structured output (guided_json, structured_outputs) through the openai client's extra_body."""

import pytest

from conftest import make_item
from fake_openai import FakeOpenAI, Reply, error_reply
from services.judge.client import JudgeConfigError, RetryPolicy, resolve_api_key
from services.judge.instructions import judgement_schema
from services.judge.vlm import VLMConfig, VLMJudge

ENV = {"ATOM_JUDGE_API_KEY": "sk-test-structured-000000"}


def judge(srv, **kw):
    return VLMJudge(VLMConfig(model="Qwen/Qwen2.5-VL-7B-Instruct", base_url=srv.base_url, retry=RetryPolicy(1, 0.0, 0.0), **kw), env=ENV)


@pytest.mark.parametrize("mode,field", [("guided_json", "guided_json"), ("structured_outputs", "structured_outputs")])
def test_vllm_modes_send_the_schema_and_get_schema_valid_json(mode, field):
    # The scripted model rambles; guided decoding forces JSON valid for the schema.
    with FakeOpenAI([Reply(content="The motion looks fine to me, maybe a 9?")]) as srv, judge(srv, response_format=mode) as j:
        g = j.score(make_item(0, "frequency"))
        req = srv.requests[0]
        assert srv.guided == 1
    assert "response_format" not in req
    sent = req[field] if field == "guided_json" else req[field]["json"]
    assert sent == judgement_schema("frequency") and sent["properties"]["score"]["enum"] == [1, 2, 3]
    assert g.ok and g.score == 1  # the schema's first allowed score, as the fake's guided decoding picks


def test_guided_json_falls_back_when_the_server_refuses_it():
    def script(req, n):
        if "guided_json" in req:
            return error_reply(400, "guided_json is not a supported parameter")
        return Reply(content='{"score": 5, "rationale": "seen"}')

    with FakeOpenAI(script) as srv, judge(srv, response_format="guided_json") as j:
        g = j.score(make_item(0, "integrity"))
        assert g.ok and g.score == 5 and srv.calls == 2
        assert srv.requests[1]["response_format"] == {"type": "json_object"} and "guided_json" not in srv.requests[1]


def test_unknown_mode_is_refused():
    with pytest.raises(JudgeConfigError, match="guided_json"):
        VLMConfig(response_format="grammar")


def test_an_empty_key_file_is_no_key_for_an_endpoint_without_auth(tmp_path):
    empty = tmp_path / "api-key"
    empty.write_text("\n")
    env = {"ATOM_JUDGE_API_KEY_FILE": str(empty)}
    assert resolve_api_key(env=env, required=False).reveal() == "EMPTY"  # vLLM: the mounted secret may be empty
    with pytest.raises(JudgeConfigError, match="is empty"):
        resolve_api_key(env=env)  # a paid endpoint still needs a key


def test_server_reads_the_new_settings_from_the_environment(monkeypatch):
    from services.judge.server import vlm_config_from_env

    monkeypatch.setenv("ATOM_JUDGE_RESPONSE_FORMAT", "guided_json")
    monkeypatch.setenv("ATOM_JUDGE_VOTES", "3")
    monkeypatch.setenv("ATOM_JUDGE_VOTE_TEMPERATURE", "0.5")
    cfg = vlm_config_from_env("m")
    assert (cfg.response_format, cfg.votes, cfg.vote_temperature) == ("guided_json", 3, 0.5)
    assert vlm_config_from_env("m", votes=5).votes == 5
    monkeypatch.setenv("ATOM_JUDGE_RESPONSE_FORMAT", "")
    assert vlm_config_from_env("m").response_format == "json_schema"  # empty = the default
