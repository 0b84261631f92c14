"""Standing probes for the judge service's spending and credential handling (security review):

1. a reply that is not a chat completion fails only its item and never leaks its budget
   reservation (the $0.05 cap stayed "in flight" forever after six HTML replies);
2. the lifetime cap (ATOM_JUDGE_BUDGET_USD) is one cap for the whole judge process, not one per
   model name;
3. a refused key (401), a refused permission (403) and an exhausted quota (429
   insufficient_quota) fail the whole call with UNAUTHENTICATED / PERMISSION_DENIED /
   RESOURCE_EXHAUSTED, say what to set, never show the key, and make `atomctl judge agree` exit
   non-zero instead of printing "n=0 (skipped 2)".

A real judge gRPC server on loopback, talking HTTP to the local fake OpenAI server through the real
openai client: nothing is mocked.
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "judge"))  # the fake OpenAI server

from fake_openai import (  # noqa: E402
    FakeOpenAI,
    forbidden_reply,
    not_json_reply,
    quota_reply,
    score_reply,
    unauthorized_reply,
)

from atom.motion.events import EventLabel  # noqa: E402
from atom.motion.record import MotionRecord  # noqa: E402
from atom.motion.world.compose import compose  # noqa: E402
from atom.runtime.client import connect  # noqa: E402
from atom.runtime.registry import build_spec  # noqa: E402
from atom.runtime.server import ServeConfig, start_service  # noqa: E402
from atom.store import LocalStore  # noqa: E402
from atom.v1 import common_pb2, judge_pb2  # noqa: E402

KEY = "sk-probe-0123456789abcdefSECRETKEY"
ROOT = Path(__file__).resolve().parents[2]
_ENV_VARS = (
    "ATOM_JUDGE_API_KEY",
    "OPENAI_API_KEY",
    "ATOM_JUDGE_API_KEY_FILE",
    "ATOM_JUDGE_BASE_URL",
    "ATOM_JUDGE_MODEL",
    "ATOM_JUDGE_BUDGET_USD",
    "ATOM_JUDGE_CONCURRENCY",
    "ATOM_JUDGE_ALLOW_NO_KEY",
    "ATOM_JUDGE_USD_PER_1K_INPUT",
    "ATOM_JUDGE_USD_PER_1K_OUTPUT",
    "ATOM_ENDPOINTS",
    "ATOM_JUDGE_RESPONSE_FORMAT",
    "ATOM_JUDGE_VOTES",
    "ATOM_JUDGE_VOTE_TEMPERATURE",
)


class Service:
    """One atom service on loopback, its servicer kept so probes can read its ledgers."""

    def __init__(self, name: str, store_root: Path):
        self.store = LocalStore(store_root)
        self.spec = build_spec(name, str(store_root))
        self.service = start_service(self.spec, ServeConfig(host="127.0.0.1", port=0, metrics_port=0, grace_s=2))
        self.client = connect(name, self.service.address)
        self.address = self.service.address

    def stop(self):
        self.client.close()
        self.service.stop(2)


@pytest.fixture
def env(monkeypatch):
    """The judge's settings, from the environment as in a deployment; nothing inherited."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATOM_JUDGE_API_KEY", KEY)
    return monkeypatch


@pytest.fixture
def services(tmp_path):
    started = []

    def start(name: str) -> Service:
        s = Service(name, tmp_path / "store")
        started.append(s)
        return s

    yield start
    for s in reversed(started):
        s.stop()


@pytest.fixture
def fake():
    servers = []

    def start(script, env_patch) -> FakeOpenAI:
        srv = FakeOpenAI(script).start()
        servers.append(srv)
        env_patch.setenv("ATOM_JUDGE_BASE_URL", srv.base_url)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def png(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, (seed * 7) % 256, (seed * 13) % 256)).save(buf, format="PNG")
    return buf.getvalue()


def prompt(i: int = 0) -> common_pb2.Prompt:
    return common_pb2.Prompt(
        prompt_id=f"p{i}",
        text=f"A man walks forward and squats (take {i}).",
        task="integrity",
        labels=common_pb2.LabelGroup(
            task="integrity", events=[common_pb2.EventLabel(event="walk_forward", count=1), common_pb2.EventLabel(event="squat", count=1)]
        ),
    )


def score_request(store: LocalStore, n: int, model: str = "fake-vlm", budget_usd: float = 0.0, first: int = 0):
    """n distinct VLM questions (distinct images: none is answered from another's cache key)."""
    items = []
    for i in range(first, first + n):
        ref = store.put_content_addressed("renders/probe", png(i), ".png")
        items.append(judge_pb2.ScoreItem(item_id=f"item-{i}", prompt=prompt(i), images=[common_pb2.ArtifactRef(key=ref.key)]))
    cfg = judge_pb2.JudgeConfig(backend="vlm", model=model, form="full_image", budget_usd=budget_usd)
    return judge_pb2.ScoreRequest(items=items, judge=cfg)


def ledgers(judge: Service) -> list:
    return [j.ledger for j in judge.spec.servicer._vlm.values()]


# -- 1. budget reservations never leak -------------------------------------------------------------


def test_non_json_replies_fail_their_items_and_leave_nothing_in_flight(env, services, fake):
    env.setenv("ATOM_JUDGE_BUDGET_USD", "0.05")
    srv = fake([not_json_reply()], env)
    judge = services("judge")
    got = list(judge.client.stream("Score", score_request(judge.store, 6)))
    assert len(got) == 6 and srv.calls == 6
    assert all(not j.ok and "malformed reply" in j.error for j in got)
    assert all(led.reserved_usd == 0.0 for led in ledgers(judge))
    srv.script = [score_reply(5)]  # the endpoint recovers; the model is not locked out
    (again,) = list(judge.client.stream("Score", score_request(judge.store, 1, first=100)))
    assert again.ok and again.score == 5


# -- 2. one lifetime cap per process, across model names ---------------------------------------------


def test_the_lifetime_cap_is_shared_by_every_model(env, services, fake):
    env.setenv("ATOM_JUDGE_BUDGET_USD", "0.05")
    srv = fake([score_reply(5, prompt_tokens=100_000)], env)  # $0.25 reported: one call spends the cap
    judge = services("judge")
    (a,) = list(judge.client.stream("Score", score_request(judge.store, 1, model="model-a")))
    assert a.ok and srv.calls == 1
    (b,) = list(judge.client.stream("Score", score_request(judge.store, 1, model="model-b", first=1)))
    assert not b.ok and "budget cap" in b.error
    assert srv.calls == 1  # model-b was refused before anything was sent
    assert len({id(led) for led in ledgers(judge)}) == 1


def test_a_request_budget_still_caps_its_batch(env, services, fake):
    srv = fake([score_reply(5)], env)
    judge = services("judge")
    (j,) = list(judge.client.stream("Score", score_request(judge.store, 1, budget_usd=1e-6)))
    assert not j.ok and "budget cap" in j.error and srv.calls == 0


# -- 3. refused key, permission or quota fail the call ----------------------------------------------

ACCOUNT = [
    (unauthorized_reply(f"Incorrect API key provided: {KEY}."), grpc.StatusCode.UNAUTHENTICATED),
    (forbidden_reply(f"project of key {KEY} has no access to this model"), grpc.StatusCode.PERMISSION_DENIED),
    (quota_reply(), grpc.StatusCode.RESOURCE_EXHAUSTED),
]
IDS = ["401", "403", "429-insufficient_quota"]


def _check_message(details: str) -> None:
    assert KEY not in details
    assert "$ATOM_JUDGE_API_KEY" in details and "ATOM_JUDGE_API_KEY_FILE" in details  # what to set


@pytest.mark.parametrize("reply,code", ACCOUNT, ids=IDS)
def test_score_fails_the_call_on_account_errors(env, services, fake, reply, code):
    env.setenv("ATOM_JUDGE_CONCURRENCY", "1")
    srv = fake([reply], env)
    judge = services("judge")
    with pytest.raises(grpc.RpcError) as err:
        list(judge.client.stream("Score", score_request(judge.store, 3)))
    assert err.value.code() == code, err.value.details()
    _check_message(err.value.details())
    assert srv.calls == 1  # not retried, and the other items were never sent
    assert all(led.reserved_usd == 0.0 for led in ledgers(judge))


@pytest.mark.parametrize("reply,code", ACCOUNT, ids=IDS)
def test_llm_compose_fails_the_call_on_account_errors(env, services, fake, reply, code):
    srv = fake([reply], env)
    judge = services("judge")
    req = judge_pb2.ComposePromptsRequest(tasks=["integrity", "temporal"], per_task=2, seed=0, backend="llm")
    with pytest.raises(grpc.RpcError) as err:
        judge.client.call("ComposePrompts", req)
    assert err.value.code() == code, err.value.details()
    _check_message(err.value.details())
    assert srv.calls == 1


def _put_run(store: LocalStore, run: str, n: int) -> None:
    """The slice of a run that `atomctl judge agree` reads: prompts, judged motions, the manifest."""
    from google.protobuf.json_format import MessageToDict

    rows, prompts = [], []
    for i in range(n):
        p = prompt(i)
        clip = compose([EventLabel("walk_forward"), EventLabel("squat")], np.random.default_rng(i))
        key = store.put_content_addressed("motions", MotionRecord(joints=clip.joints).to_bytes(), ".npz").key
        prompts.append(MessageToDict(p, preserving_proto_field_name=True))
        rows.append({"prompt_id": p.prompt_id, "motion": key})
    store.put_jsonl(f"runs/{run}/prompts.jsonl", prompts)
    store.put_jsonl(f"runs/{run}/judgements.jsonl", rows)
    store.put_json(
        f"runs/{run}/manifest.json",
        {
            "run": run,
            "stages": {
                "prompts": {"outputs": {"train": f"runs/{run}/prompts.jsonl"}},
                "judge": {"outputs": {"judgements": f"runs/{run}/judgements.jsonl"}},
            },
        },
    )


def _judge_agree(services, tmp_path) -> subprocess.CompletedProcess:
    """`atomctl judge agree --a kinematic --b vlm` on a two-motion run, against services here."""
    judge, renderer = services("judge"), services("renderer")
    _put_run(judge.store, "probe", 2)
    # `judge agree` connects to every service but calls only the renderer and the judge: the
    # others may point at any healthy server.
    cmd = [
        sys.executable,
        "-m",
        "atom.cli",
        "--store",
        str(tmp_path / "store"),
        "--endpoint",
        f"all={judge.address}",
        "--endpoint",
        f"renderer={renderer.address}",
        "judge",
        "agree",
        "--run",
        "probe",
        "--a",
        "kinematic",
        "--b",
        "vlm",
        "--judge-model",
        "fake-vlm",
    ]
    clean_env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}  # the CLI holds no key
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(clean_env, PYTHONPATH=str(ROOT)))


def _one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0, out.stdout + out.stderr
    assert "n=0" not in out.stdout and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert KEY not in out.stdout + out.stderr
    return lines[0]


def test_judge_agree_exits_non_zero_on_a_refused_key(env, services, fake, tmp_path):
    env.setenv("ATOM_JUDGE_CONCURRENCY", "1")
    srv = fake([unauthorized_reply(f"Incorrect API key provided: {KEY}.")], env)
    line = _one_line_error(_judge_agree(services, tmp_path))
    assert "UNAUTHENTICATED" in line
    _check_message(line)
    assert srv.calls == 1


def test_judge_agree_exits_non_zero_when_the_judge_scored_nothing(env, services, fake, tmp_path):
    fake([not_json_reply()], env)
    line = _one_line_error(_judge_agree(services, tmp_path))
    assert "'vlm' gave no score for any of the 2 items" in line and "malformed reply" in line
