"""The Batch API path against a local server speaking OpenAI's files and batches API, through the
real openai client: resume after SIGKILL, partial failures, expiry, lost replies, budget."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import make_item
from fake_openai import FakeOpenAI, score_reply
from services.judge.batch import BatchConfig, BatchJudge, Submission
from services.judge.budget import CostModel
from services.judge.client import JudgeConfigError, RetryPolicy
from services.judge.vlm import VLMConfig, VLMJudge

ENV = {"ATOM_JUDGE_API_KEY": "sk-test-batch-0000000000"}
ROOT = Path(__file__).resolve().parents[2]
FAST = BatchConfig(poll_initial_s=0.02, poll_max_s=0.1)
P, C = 1000, 50  # the tokens every scripted answer reports


def make_judge(srv, store, **kw):
    cfg = dict(model="fake-vlm", base_url=srv.base_url, retry=RetryPolicy(3, 0.01, 0.02))
    cfg.update(kw)
    return VLMJudge(VLMConfig(**cfg), store, env=ENV)


def half_price(judge) -> float:
    return judge.config.cost.cost(P, C) * 0.5


def lines_of(srv, batch_index: int) -> list[dict]:
    fid = srv.batch_creates[batch_index]["input_file_id"]
    return [json.loads(x) for x in srv.files[fid]["data"].decode().splitlines() if x.strip()]


def records(store) -> list[Submission]:
    return [Submission.from_dict(store.get_json(k)) for k in store.list("judge-batches/")]


def test_batch_judges_at_half_price_into_the_same_cache(store):
    items = [make_item(i) for i in range(5)]
    with FakeOpenAI([score_reply(4, prompt_tokens=P, completion_tokens=C)]) as srv:
        srv.batch_delay_s = 0.1
        with make_judge(srv, store) as j:
            run = BatchJudge(j, FAST).run(items)
            assert srv.calls == 0  # nothing went through the synchronous endpoint
            assert len(srv.batch_creates) == 1 and srv.uploads == 1
            req = srv.batch_creates[0]
            assert req["endpoint"] == "/v1/chat/completions" and req["completion_window"] == "24h"
            assert srv.files[req["input_file_id"]]["purpose"] == "batch"
            line = lines_of(srv, 0)[0]
            assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
            assert line["body"]["response_format"]["type"] == "json_schema" and line["body"]["model"] == "fake-vlm"
            assert {ln["custom_id"] for ln in lines_of(srv, 0)} == {j.key_for(it) for it in items}
            assert all(g.ok and g.score == 4 and g.cost_usd == pytest.approx(half_price(j)) for g in run.judgements)
            assert [g.item_id for g in run.judgements] == [it.item_id for it in items]
            assert run.cost_usd == pytest.approx(5 * half_price(j)) and j.ledger.spent_usd == pytest.approx(run.cost_usd)
            rec = store.get_json(run.judgements[0].record_key)
            assert rec["score"] == 4 and rec["price"] == "batch" and rec["batch_id"] == "batch_fake_0"
            (sub,) = records(store)
            assert sub.status == "completed" and set(sub.outcome.values()) == {"ok"}
            assert "5 answered" in run.format()
        with make_judge(srv, store) as j:  # the synchronous path reads the same cache
            g = j.score(items[0])
            assert g.cache_hit and g.score == 4 and srv.calls == 0


def test_sigkill_mid_wait_resumes_the_same_batch_and_pays_once(store):
    items = [make_item(i) for i in range(4)]
    child = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import make_item
        from atom.store import LocalStore
        from services.judge.batch import BatchConfig, BatchJudge
        from services.judge.vlm import VLMConfig, VLMJudge
        j = VLMJudge(VLMConfig(model="fake-vlm", base_url=sys.argv[1]), LocalStore(sys.argv[2]),
                     env={{"ATOM_JUDGE_API_KEY": "x"}})
        BatchJudge(j, BatchConfig(poll_initial_s=0.05, poll_max_s=0.1)).run([make_item(i) for i in range(4)])
        print("finished")  # never reached: killed while waiting
    """)
    with FakeOpenAI([score_reply(5, prompt_tokens=P, completion_tokens=C)]) as srv:
        srv.batch_delay_s = 60.0  # far longer than the test: the batch is in progress when killed
        proc = subprocess.Popen(
            [sys.executable, "-c", child, srv.base_url, str(store.root)],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while srv.batch_retrieves < 3:  # created, recorded, and polled: it is waiting
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the child never started waiting on its batch"
                time.sleep(0.02)
            (sub,) = records(store)
            assert sub.batch_id == "batch_fake_0" and sub.status == "in_progress"  # written before waiting
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL and "finished" not in proc.stdout.read()
        assert len(srv.batch_creates) == 1

        srv.batch_delay_s = 0.0  # the provider finishes the batch while nobody watches
        with make_judge(srv, store) as j:
            run = BatchJudge(j, FAST).run(items)
            assert len(srv.batch_creates) == 1 and srv.uploads == 1  # nothing paid twice
            assert set(srv.lines_seen.values()) == {1} and len(srv.lines_seen) == 4
            assert run.created == [] and run.resumed == ["batch_fake_0"]
            assert all(g.ok and g.score == 5 and not g.cache_hit for g in run.judgements)
            assert all(g.cost_usd == pytest.approx(half_price(j)) for g in run.judgements)
            assert j.ledger.spent_usd == pytest.approx(4 * half_price(j))  # charged when collected
        with make_judge(srv, store) as j:
            again = BatchJudge(j, FAST).run(items)
            assert again.cached == 4 and len(srv.batch_creates) == 1
            assert all(j.cache.get(j.key_for(it))["score"] == 5 for it in items)


def test_only_failed_lines_are_retried_in_a_new_batch(store):
    items = [make_item(i) for i in range(6)]
    with FakeOpenAI([score_reply(3, prompt_tokens=P, completion_tokens=C)]) as srv, make_judge(srv, store) as j:
        keys = [j.key_for(it) for it in items]
        flaky, refused = set(keys[:2]), keys[2]
        srv.line_status = lambda cid, body, attempt: 500 if cid in flaky and attempt == 0 else 400 if cid == refused else 200
        run = BatchJudge(j, FAST).run(items)
        assert len(srv.batch_creates) == 2
        assert {ln["custom_id"] for ln in lines_of(srv, 1)} == flaky  # not the 400, not the answered ones
        by_id = {g.item_id: g for g in run.judgements}
        assert by_id["item-2"].error_kind == "request" and "HTTP 400" in by_id["item-2"].error
        assert sum(g.ok for g in run.judgements) == 5
        assert run.lines_failed == 3 and run.lines_ok == 5
        assert run.cost_usd == pytest.approx(5 * half_price(j))  # failed lines cost nothing
        subs = sorted(records(store), key=lambda s: s.created_unix)
        assert [s.reason for s in subs] == ["new", "retry"]
        assert subs[0].outcome[keys[0]].startswith("retry:500") and subs[0].outcome[refused] == "final:request:400"


def test_lines_that_keep_failing_give_up_after_the_retry_rounds(store):
    with FakeOpenAI([score_reply(3)]) as srv, make_judge(srv, store) as j:
        srv.line_status = lambda cid, body, attempt: 503
        run = BatchJudge(j, BatchConfig(poll_initial_s=0.01, poll_max_s=0.02, max_retry_rounds=2)).run([make_item(0)])
        assert len(srv.batch_creates) == 3  # the first try and two retries
        (g,) = run.judgements
        assert g.error_kind == "unavailable" and "failed 3 times" in g.error


def test_expired_batch_keeps_what_finished_and_resubmits_the_rest(store):
    items = [make_item(i) for i in range(4)]
    with FakeOpenAI([score_reply(5, prompt_tokens=P, completion_tokens=C)]) as srv, make_judge(srv, store) as j:
        done = {j.key_for(items[0]), j.key_for(items[1])}
        srv.expire_batches = {0}
        srv.expire_done = lambda cid: cid in done
        run = BatchJudge(j, FAST).run(items)
        assert len(srv.batch_creates) == 2
        assert {ln["custom_id"] for ln in lines_of(srv, 1)} == {j.key_for(items[2]), j.key_for(items[3])}
        assert all(g.ok for g in run.judgements) and run.lines_expired == 2 and run.lines_ok == 4
        assert sorted(s.reason for s in records(store)) == ["expired", "new"]
        assert run.cost_usd == pytest.approx(4 * half_price(j))


def test_a_lost_create_reply_adopts_the_batch_instead_of_making_another(store):
    items = [make_item(i) for i in range(3)]
    with FakeOpenAI([score_reply(5)]) as srv, make_judge(srv, store) as j:
        srv.hang_up_creates = {0}  # the batch is made, its creator hears nothing
        run = BatchJudge(j, FAST).run(items)
        assert len(srv.batch_creates) == 1 and all(g.ok for g in run.judgements)
        assert run.resumed == ["batch_fake_0"] and j.stats.retries >= 1


def test_killed_between_upload_and_create_is_completed_on_resume(store):
    items = [make_item(i) for i in range(2)]
    with FakeOpenAI([score_reply(2)]) as srv, make_judge(srv, store) as j:
        bj = BatchJudge(j, FAST)

        def crash(sub, check_first):
            raise KeyboardInterrupt("killed after the upload")

        bj._create = crash
        with pytest.raises(KeyboardInterrupt):
            bj.run(items)
        (sub,) = records(store)
        assert sub.status == "uploaded" and sub.input_file_id and not sub.batch_id
        run = BatchJudge(j, FAST).run(items)
        assert srv.uploads == 1 and len(srv.batch_creates) == 1  # the same file, one batch
        assert all(g.ok and g.score == 2 for g in run.judgements)


def test_budget_caps_what_is_submitted(store):
    cost = CostModel(usd_per_1k_input=1.0, usd_per_1k_output=1.0, image_tokens=100, max_completion_tokens=50)
    items = [make_item(i) for i in range(5)]
    with FakeOpenAI([score_reply(5, prompt_tokens=10, completion_tokens=5)]) as srv, make_judge(srv, store, cost=cost) as j:
        _, _, _, est = j.build_request(items[0])
        run = BatchJudge(j, FAST).run(items, budget_usd=est * 0.5 * 2.5)  # room for two lines at the batch price
        kinds = [g.error_kind for g in run.judgements]
        assert kinds.count("") == 2 and kinds.count("budget") == 3
        assert len(lines_of(srv, 0)) == 2


def test_votes_go_through_the_batch_and_are_aggregated(store):
    def script(req, n):
        return score_reply({0: 5, 1: 4, 2: 5}[req["seed"]])

    with FakeOpenAI(script) as srv, make_judge(srv, store, votes=3, vote_seed=0, response_format="guided_json") as j:
        run = BatchJudge(j, FAST).run([make_item(0), make_item(1)])
        lines = lines_of(srv, 0)
        assert len(lines) == 6 and sorted(ln["body"]["seed"] for ln in lines) == [0, 0, 1, 1, 2, 2]
        assert "guided_json" in lines[0]["body"] and "extra_body" not in lines[0]["body"]  # merged like extra_body
        g = run.judgements[0]
        assert g.score == 5 and g.extra["votes"] == [5, 4, 5] and g.extra["agreement"] == pytest.approx(2 / 3)


def test_max_wait_leaves_batches_pending_for_the_next_run(store):
    items = [make_item(0)]
    with FakeOpenAI([score_reply(1)]) as srv, make_judge(srv, store) as j:
        srv.batch_delay_s = 60.0
        run = BatchJudge(j, BatchConfig(poll_initial_s=0.01, poll_max_s=0.02, max_wait_s=0.1)).run(items)
        assert run.pending == 1 and run.judgements[0].error_kind == "pending"
        srv.batch_delay_s = 0.0
        run = BatchJudge(j, FAST).run(items)
        assert run.judgements[0].score == 1 and len(srv.batch_creates) == 1


def test_needs_a_store():
    with FakeOpenAI() as srv, VLMJudge(VLMConfig(model="m", base_url=srv.base_url), env=ENV) as j:
        with pytest.raises(JudgeConfigError, match="store"):
            BatchJudge(j)
