"""The VLM judge against a real local HTTP server, through the real openai client."""

import base64
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import make_item, png
from fake_openai import FakeOpenAI, Reply, error_reply, images_of, prompt_of, score_reply
from services.judge.budget import CostModel
from services.judge.client import JudgeConfigError, JudgeUnauthenticated, RetryPolicy, resolve_api_key
from services.judge.instructions import INSTRUCTION_VERSION, build_messages, text_bytes
from services.judge.records import JudgeItem
from services.judge.vlm import VLMConfig, VLMJudge

KEY = "sk-test-0123456789abcdefSECRET"
ENV = {"ATOM_JUDGE_API_KEY": KEY}
FAST_RETRY = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)


def judge(srv, store=None, sleeps=None, **kw):
    cfg = dict(model="fake-vlm", base_url=srv.base_url, retry=FAST_RETRY, timeout_s=5.0)
    cfg.update(kw)
    sleep = (lambda s: sleeps.append(s)) if sleeps is not None else None
    return VLMJudge(VLMConfig(**cfg), store, env=ENV, sleep=sleep)


def test_good_replies_score_count_tokens_and_send_images(store):
    items = [make_item(i) for i in range(3)] + [make_item(9, form="full-image")]
    with FakeOpenAI([score_reply(5, prompt_tokens=1000, completion_tokens=50)]) as srv:
        with judge(srv, store) as j:
            got = list(j.score_batch(items))
        assert srv.calls == 4
        by_prompt = {prompt_of(r): r for r in srv.requests}  # requests arrive in any order
        first = by_prompt[items[0].prompt.text]
    assert [g.item_id for g in got] == [it.item_id for it in items]
    assert all(g.ok and g.score == 5 and not g.cache_hit for g in got)
    g = got[0]
    assert (g.prompt_tokens, g.completion_tokens, g.attempts) == (1000, 50, 1)
    assert g.cost_usd == pytest.approx(1.0 * 0.0025 + 0.05 * 0.01)
    assert g.judge_id == f"vlm:fake-vlm:{INSTRUCTION_VERSION}"
    # the request: model, rules in the system message, structured output, one image part per frame
    assert first["model"] == "fake-vlm"
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"]["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert "Score 4: all three motions appear, but not in the described order" in first["messages"][0]["content"]
    urls = images_of(first)
    assert len(urls) == 3
    assert [base64.b64decode(u.split(",", 1)[1]) for u in urls] == list(items[0].images)
    assert len(images_of(by_prompt[items[3].prompt.text])) == 1  # full-image: one composite
    # the record in the store
    rec = store.get_json(g.record_key)
    assert rec["score"] == 5 and rec["prompt_text"] == items[0].prompt.text and rec["labels"]["task"] == "temporal"


def test_batch_yields_in_input_order_when_first_is_slow():
    def script(req, n):
        slow = "(take 0)" in prompt_of(req)
        return score_reply(4, delay_s=0.3 if slow else 0.0)

    items = [make_item(i) for i in range(4)]
    seen = []
    with FakeOpenAI(script) as srv, judge(srv, concurrency=4) as j:
        got = list(j.score_batch(items, progress=lambda d, t, jm: seen.append((d, t, jm.item_id))))
    assert [g.item_id for g in got] == ["item-0", "item-1", "item-2", "item-3"]
    assert seen == [(i + 1, 4, f"item-{i}") for i in range(4)]


@pytest.mark.parametrize(
    "content,why",
    [
        ("I think the motion is fine.", "no score"),
        ('{"score": 7, "rationale": "x"}', "not allowed"),
        ('{"rationale": "no score here"}', "no 'score'"),
        ("Score: 3. On reflection, score: 4.", "several scores"),
        ('{"score": "high"}', "not an integer"),
        ("", "empty"),
    ],
)
def test_malformed_replies_are_recorded_errors_never_guesses(store, content, why):
    item = make_item(0)
    with FakeOpenAI([Reply(content=content)]) as srv, judge(srv, store) as j:
        g = j.score(item)
        assert srv.calls == 1  # a bad reply is not retried blindly
        assert g.score is None and g.error_kind == "reply" and why in g.error
        assert g.prompt_tokens == 100 and g.cost_usd > 0  # it was paid for
        rec = store.get_json(g.record_key)
        assert rec["score"] is None and rec["reply"] == content
        again = j.score(item)  # an unanswered record is not a cache hit
        assert srv.calls == 2 and not again.cache_hit
        assert j.stats.reply_errors == 2


def test_429_then_success_is_retried_and_counted():
    sleeps = []
    script = [error_reply(429, "slow down"), error_reply(429, "slow down", headers={"retry-after": "0.04"}), score_reply(3)]
    with FakeOpenAI(script) as srv, judge(srv, sleeps=sleeps, concurrency=1) as j:
        g = j.score(make_item(0, "frequency"))
        assert g.ok and g.score == 3 and g.attempts == 3
        assert srv.calls == 3 and j.stats.retries == 2 and j.stats.http_calls == 3
    assert len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.015  # base 0.01 x jitter in [0.5, 1.5)
    assert sleeps[1] >= 0.04  # Retry-After honoured


def test_backoff_is_seeded():
    def delays(seed):
        sleeps = []
        with FakeOpenAI([error_reply(503)] * 3 + [score_reply(5)]) as srv, judge(srv, sleeps=sleeps, seed=seed) as j:
            assert j.score(make_item(0)).ok
        return sleeps

    a, b, c = delays(1), delays(1), delays(2)
    assert a == b and a != c
    assert a[2] > a[0]  # exponential growth dominates the jitter


def test_retries_exhausted_and_non_retryable_errors():
    with FakeOpenAI([error_reply(500, "boom")]) as srv, judge(srv) as j:
        g = j.score(make_item(0))
        assert g.error_kind == "unavailable" and g.attempts == 4 and srv.calls == 4 and "HTTP 500" in g.error
    with FakeOpenAI([error_reply(401, "bad key")]) as srv, judge(srv) as j:
        with pytest.raises(JudgeUnauthenticated):  # fails the call: every item would be refused
            j.score(make_item(0))
        assert srv.calls == 1
    with FakeOpenAI([error_reply(404, "no such model")]) as srv, judge(srv) as j:
        g = j.score(make_item(0))
        assert g.error_kind == "request" and srv.calls == 1


def test_timeouts_are_retried_then_give_up():
    with FakeOpenAI([Reply(delay_s=2.0), score_reply(5)]) as srv, judge(srv, timeout_s=0.2) as j:
        g = j.score(make_item(0))
        assert g.ok and g.attempts == 2 and srv.calls == 2
        # the timed-out attempt may be billed: its estimate is counted, on top of the real cost
        assert g.cost_usd > j.config.cost.cost(100, 20)
    with FakeOpenAI([Reply(delay_s=2.0)]) as srv, judge(srv, timeout_s=0.1, retry=RetryPolicy(1, 0.0, 0.0)) as j:
        g = j.score(make_item(0))
        assert g.error_kind == "unavailable" and "timed out" in g.error and g.attempts == 2


def test_budget_runs_out_mid_batch_without_overspending():
    cost = CostModel(usd_per_1k_input=1.0, usd_per_1k_output=1.0, image_tokens=100, max_completion_tokens=50)
    # The server reports usage close to the estimate so the cap binds tightly.
    item = make_item(0)
    msgs = build_messages("temporal", item.prompt.text, item.images, item.form, 8)
    est_p, est_c, est_usd = cost.estimate(text_bytes(msgs), 3, 2)
    reply = score_reply(5, prompt_tokens=est_p - 5, completion_tokens=est_c)
    cap = est_usd * 3.5
    items = [make_item(i) for i in range(10)]
    with FakeOpenAI([reply]) as srv, judge(srv, cost=cost, concurrency=3) as j:
        got = list(j.score_batch(items, budget_usd=cap))
        ok = [g for g in got if g.ok]
        refused = [g for g in got if g.error_kind == "budget"]
        assert len(ok) == 3 and len(refused) == 7 and srv.calls == 3
        assert all("budget cap" in g.error for g in refused)
        spent = sum(g.cost_usd for g in got)
        assert spent <= cap and j.ledger.spent_usd == pytest.approx(spent)
        assert j.stats.budget_refusals == 7


def test_lifetime_budget_cap_refuses_before_any_call():
    with FakeOpenAI([score_reply(5)]) as srv, judge(srv, budget_usd=1e-6) as j:
        g = j.score(make_item(0))
        assert g.error_kind == "budget" and srv.calls == 0


def test_cache_second_run_makes_no_http_calls(store):
    items = [make_item(i) for i in range(3)]
    with FakeOpenAI([score_reply(4)]) as srv:
        with judge(srv, store) as j:
            first = list(j.score_batch(items))
        with judge(srv, store) as j2:  # a new judge (a new run) on the same store
            second = list(j2.score_batch(items))
            assert j2.stats.cache_hits == 3 and j2.stats.http_calls == 0
        assert srv.calls == 3
    assert all(g.cache_hit and g.cost_usd == 0 and g.score == 4 for g in second)
    assert [g.record_key for g in first] == [g.record_key for g in second]
    assert len(store.list("judgements/")) == 3


def test_cache_key_covers_the_question(store):
    base = make_item(0)
    variants = [
        JudgeItem("a", base.prompt, [png(1), png(2), png(4)], base.form),  # a frame changed
        JudgeItem("b", base.prompt, list(base.images)[::-1], base.form),  # frame order changed
        JudgeItem("c", base.prompt, [png(7)], "trajectory-image"),
        JudgeItem("d", base.prompt, [png(7)], "full-image"),  # same image, other form
    ]
    with FakeOpenAI([score_reply(5)]) as srv, judge(srv, store) as j:
        keys = {j.key_for(v) for v in [base] + variants}
        assert len(keys) == 5
        with judge(srv, store, model="other-model") as other:
            assert other.key_for(base) != j.key_for(base)


def test_cache_is_shared_across_processes(store, tmp_path):
    item = make_item(0)
    with FakeOpenAI([score_reply(2)]) as srv:
        with judge(srv, store) as j:
            assert j.score(item).ok
        code = textwrap.dedent(f"""
            import json, sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from conftest import make_item
            from atom.store import LocalStore
            from services.judge.vlm import VLMConfig, VLMJudge
            j = VLMJudge(VLMConfig(model="fake-vlm", base_url={srv.base_url!r}), LocalStore({str(store.root)!r}),
                         env={{"ATOM_JUDGE_API_KEY": "x"}})
            g = j.score(make_item(0))
            print(json.dumps([g.score, g.cache_hit]))
        """)
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(root)), cwd=root
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, True]
        assert srv.calls == 1


def test_same_question_twice_in_a_batch_is_asked_once():
    a = make_item(0)
    b = JudgeItem("again", a.prompt, a.images, a.form)
    with FakeOpenAI([score_reply(5)]) as srv, judge(srv) as j:
        got = list(j.score_batch([a, b]))
        assert srv.calls == 1
    assert got[1].item_id == "again" and got[1].score == 5 and got[1].cache_hit and got[1].cost_usd == 0


def test_response_format_falls_back_when_unsupported():
    def script(req, n):
        if req.get("response_format", {}).get("type") == "json_schema":
            return error_reply(400, "response_format json_schema is not supported by this model")
        return Reply(content='```json\n{"score": 1, "rationale": "none seen"}\n```')

    with FakeOpenAI(script) as srv, judge(srv) as j:
        g = j.score(make_item(0))
        assert g.ok and g.score == 1 and srv.calls == 2
        assert srv.requests[1]["response_format"] == {"type": "json_object"}
        assert j.score(make_item(1)).ok and srv.calls == 3  # the fallback sticks


def test_bad_items_are_input_errors():
    good = make_item(0)
    with FakeOpenAI([score_reply(5)]) as srv, judge(srv) as j:
        bad = [
            JudgeItem("jpeg", good.prompt, [b"\xff\xd8\xff" + b"0" * 20], "frame-by-frame"),
            JudgeItem("two", good.prompt, [png(1), png(2)], "full-image"),
            JudgeItem("none", good.prompt, [], "frame-by-frame"),
            JudgeItem("form", good.prompt, [png(1)], "video"),
        ]
        got = list(j.score_batch(bad))
        assert srv.calls == 0
    assert [g.error_kind for g in got] == ["input"] * 4


def test_key_never_leaks(store, caplog):
    def script(req, n):
        if n == 0:  # a hostile or buggy server echoing the credential back
            return error_reply(400, f"bad request from key {KEY}")
        if n == 1:
            return Reply(content=f"Score: 9 (your key is {KEY})")
        return score_reply(5, rationale="fine")

    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(script) as srv:
        with judge(srv, store, concurrency=1) as j:
            got = [j.score(make_item(i)) for i in range(3)]
            text = repr(j) + repr(j.config) + repr(j._secret) + str(j._secret)
        assert srv.headers[0].get("authorization") == f"Bearer {KEY}"  # the key was really used
    dumped = json.dumps([g.to_dict() for g in got])
    files = "".join(p.read_text() for p in Path(store.root).rglob("*") if p.is_file())
    assert got[0].error_kind == "request" and got[1].error_kind == "reply" and got[2].ok
    assert KEY not in caplog.text
    assert KEY not in dumped
    assert KEY not in files and files
    assert KEY not in text


def test_key_resolution(tmp_path):
    assert resolve_api_key(env={"ATOM_JUDGE_API_KEY": "a", "OPENAI_API_KEY": "b"}).reveal() == "a"
    assert resolve_api_key(env={"OPENAI_API_KEY": "b"}).reveal() == "b"
    f = tmp_path / "key"
    f.write_text("from-file\n")
    assert resolve_api_key(env={"ATOM_JUDGE_API_KEY_FILE": str(f)}).reveal() == "from-file"
    assert resolve_api_key(key_file=f, env={}).reveal() == "from-file"
    with pytest.raises(JudgeConfigError, match="ATOM_JUDGE_API_KEY"):
        resolve_api_key(env={})
    with pytest.raises(JudgeConfigError, match="cannot read"):
        resolve_api_key(key_file=tmp_path / "missing", env={})
    assert resolve_api_key(env={}, required=False).reveal() == "EMPTY"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(resolve_api_key(env={"OPENAI_API_KEY": "b"}))
