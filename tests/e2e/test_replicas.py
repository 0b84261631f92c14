"""Two replicas of every service on loopback; one replica of the generator, the renderer and the
judge is SIGKILLed while it works. The run completes, and no motion, render or judgement is lost
or duplicated."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from atom.cli.context import Ctx
from atom.mgpt.bundle import save_bundle
from atom.pipeline.config import load_config
from atom.pipeline.runner import run
from atom.runtime.launch import LocalServices
from atom.store import LocalStore

sys.path.insert(0, str(Path(__file__).parent.parent / "generator"))
from gen_tiny_models import make_tiny_bundle  # noqa: E402

pytestmark = pytest.mark.slow


def test_replica_killed_mid_run_loses_nothing(tmp_path):
    store_root = tmp_path / "store"
    store = LocalStore(store_root)
    save_bundle(store, "models/base-test", make_tiny_bundle())
    cfg = load_config(
        overrides={
            "run": "replicas",
            "world.clips": 200,
            "model.base": "models/base-test",
            "prompts.tasks": "integrity,temporal",
            "prompts.per_task": 12,
            "generate.samples_per_prompt": 4,
            "generate.batch_prompts": 2,
            "render.size": 64,
            "render.people_samples": 1000,
            "judge.batch": 4,
        }
    )
    os.environ["ATOM_CACHE_DIR"] = str(tmp_path / "cache")
    with LocalServices(str(store_root), ["generator", "renderer", "judge"], replicas=2, log_dir=tmp_path / "logs") as group:
        group.wait_ready()
        cli = Ctx(store_url=str(store_root), endpoints=group.endpoints())
        killed = {}
        plan = [("generator", "samples/"), ("renderer", "renders/"), ("judge", "judgements/")]

        def count(prefix):
            return len(store.list(prefix))

        def first(name):
            return group.services[name][0].proc

        def killer():
            # Freeze replica 0 of each service as soon as the run's clients are connected (the
            # prompts are written after that), so every chunk routed to it hangs and its stage
            # cannot finish without it. Then SIGKILL it once the other replica has delivered work
            # for that stage: the kill lands mid-stage on every machine, however fast.
            while not store.list("stages/prompts/") and not done.is_set():
                time.sleep(0.01)
            for name, _ in plan:
                os.killpg(first(name).pid, signal.SIGSTOP)
            for name, prefix in plan:
                while count(prefix) < 1:
                    if done.is_set():
                        return
                    time.sleep(0.02)
                killed[name] = count(prefix)
                os.killpg(first(name).pid, signal.SIGKILL)

        done = threading.Event()
        t = threading.Thread(target=killer, daemon=True)
        t.start()
        try:
            ctx = run(cfg, cli, until="judge", show_progress=False)
        finally:
            done.set()
            t.join(5)
            for name, _ in plan:
                if first(name).poll() is None:
                    os.killpg(first(name).pid, signal.SIGKILL)  # a frozen process ignores SIGTERM
    assert list(killed) == ["generator", "renderer", "judge"]
    out = ctx.summary["stages"]
    rows = store.get_jsonl(out["generate"].motions)
    assert len(rows) == 24 * 4
    assert len({(r["prompt_id"], r["sample_index"]) for r in rows}) == len(rows)  # none duplicated
    keys = [r["motion"] for r in rows if r["motion"]]
    assert all(store.exists(k) for k in keys)  # none lost
    renders = store.get_json(out["render"].renders)["renders"]
    assert set(renders) == set(keys)
    assert all(store.exists(i) for r in renders.values() for i in r["images"])
    judged = store.get_jsonl(out["judge"].judgements)
    assert len(judged) == len(rows) and all(j["ok"] for j in judged if j["motion"])
    # Each kill landed while its stage still had work on the frozen replica.
    for name, prefix in plan:
        assert killed[name] < count(prefix), f"{name} was killed after its stage had finished"
