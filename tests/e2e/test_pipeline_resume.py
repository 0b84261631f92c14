"""`atomctl run-pipeline` killed with SIGKILL at several points, then run again: it finishes, redoes
nothing that finished, and never pays for the same judge question twice.

The judge is the VLM judge against a real local HTTP server speaking the chat-completions API (the
one paid dependency we cannot reach here); everything else is the real embedded system.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "judge"))
from fake_openai import FakeOpenAI, images_of, score_reply  # noqa: E402

pytestmark = pytest.mark.slow

CONFIG = """
run: resume
world: {clips: 200}
model: {pretrain_preset: tiny}
prompts: {tasks: [integrity], per_task: 4, eval_per_task: 3}
generate: {samples_per_prompt: 4, eval_samples_per_prompt: 2, replicas: 1}  # one process a restart (seconds each)
render: {size: 64, form: full_image}
judge: {backend: vlm, model: fake-vlm, budget_usd: 100, batch: 4}
train: {epochs: 2, batch_size: 4}
eval: {replications: 2, mm_texts: 3, mm_samples: 3, general_texts: 12}
site: {build: false}
"""


def question(req) -> str:
    """What makes a judge question distinct: its text and its images."""
    return hashlib.sha256(json.dumps(req["messages"], sort_keys=True).encode()).hexdigest()


def script(req, n):
    # A deterministic verdict per motion image: the same question always gets the same answer.
    h = int(hashlib.sha256("".join(images_of(req)).encode()).hexdigest(), 16)
    return score_reply(5 if h % 2 else 0)


def _manifest(store: Path) -> dict:
    try:
        return json.loads((store / "runs/resume/manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _state(store: Path, stage: str) -> str:
    return _manifest(store).get("stages", {}).get(stage, {}).get("state", "")


def _start(tmp_path, fake):
    env = {
        **os.environ,
        "ATOM_JUDGE_BASE_URL": fake.base_url,
        "ATOM_JUDGE_API_KEY": "sk-test-not-a-real-key",
        "ATOM_CACHE_DIR": str(tmp_path / "cache"),
        "ATOM_JUDGE_USD_PER_1K_INPUT": "0.001",
    }
    log = open(tmp_path / "run.log", "ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atom.cli",
            "--store",
            str(tmp_path / "store"),
            "run-pipeline",
            "--config",
            str(tmp_path / "c.yaml"),
            "--quiet",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _kill_when(proc, condition, wait_for, timeout_s=600):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            services = _children(proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            # The services die with it (PDEATHSIG) and release their ports.
            wait_for(lambda: all(_gone(pid) for pid in services), 60, "the services' exit")
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    raise TimeoutError("the condition was never reached")


def test_kill_and_resume_at_several_points(tmp_path, wait_for):
    (tmp_path / "c.yaml").write_text(CONFIG)
    store = tmp_path / "store"
    with FakeOpenAI(script) as fake:
        # 1. killed while judging, after some answers are in the cache
        proc = _start(tmp_path, fake)
        assert _kill_when(proc, lambda: _state(store, "judge") == "running" and fake.calls >= 3, wait_for)
        # 2. killed while training
        proc = _start(tmp_path, fake)
        assert _kill_when(proc, lambda: _state(store, "train") == "running", wait_for)
        generated_before = _manifest(store)["stages"]["generate"]["finished"]
        # 3. killed while evaluating
        proc = _start(tmp_path, fake)
        assert _kill_when(proc, lambda: _state(store, "evaluate") == "running", wait_for)
        # 4. to the end
        proc = _start(tmp_path, fake)
        assert proc.wait(900) == 0, (tmp_path / "run.log").read_text()[-3000:]

        questions = [question(r) for r in fake.requests]
    log = (tmp_path / "run.log").read_text()
    m = _manifest(store)
    assert all(s["state"] == "done" for s in m["stages"].values()), m["stages"]
    assert m["stages"]["generate"]["finished"] == generated_before  # not redone
    # Answers that reached the store are never asked for again. The only repeats allowed are the
    # calls in flight at the moment of the SIGKILL during judging (at most the judge's concurrency, 4):
    # their answers never arrived, so nobody could have kept them.
    assert len(questions) - len(set(questions)) <= 4, "answered judge questions were paid for twice"
    assert m["stages"]["judge"]["attempts"] >= 2
    assert "| integrity" in log and "report ->" in log
    # The first run's models were made by the trainer service, as jobs (one each: content-keyed).
    jobs = [json.loads(p.read_text()) for p in (store / "jobs").glob("*.json")]
    kinds = sorted(j["kind"] for j in jobs)
    assert kinds.count("pretrain") == 1 and kinds.count("evaluator") == 1, kinds
    assert all(j["state"] == "SUCCEEDED" for j in jobs if j["kind"] != "preference"), jobs
    assert "sk-test-not-a-real-key" not in log
    for p in store.rglob("*.json*"):
        assert "sk-test-not-a-real-key" not in p.read_text(errors="ignore")
