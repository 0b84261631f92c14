"""A first run on a fresh store: the controller builds the world, and the trainer service, not the
controller, pretrains the base model and trains the embedded evaluator side by side (its job
records say so); a second run finds both and starts no job."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

CONFIG = "world: {clips: 100}\nmodel: {pretrain_preset: tiny}\n"


def _jobs(store) -> dict[str, dict]:
    return {r["kind"]: r for r in (json.loads(p.read_text()) for p in (store / "jobs").glob("*.json"))}


def test_first_run_pretrains_and_trains_the_evaluator_in_the_trainer_service(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG)
    store = tmp_path / "store"

    def atomctl(*args):
        return subprocess.run(
            [sys.executable, "-m", "atom.cli", "--store", str(store), "pretrain", "--config", str(tmp_path / "c.yaml"), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )

    out = atomctl()
    assert out.returncode == 0, out.stderr[-3000:]
    assert "in the trainer service" in out.stderr and "Traceback" not in out.stderr
    jobs = _jobs(store)
    assert set(jobs) == {"pretrain", "evaluator"}
    assert jobs["pretrain"]["state"] == jobs["evaluator"]["state"] == "SUCCEEDED"
    # Both are one-thread jobs: the evaluator is asked for first and trains while the base model
    # pretrains (the trainer runs them side by side; their records overlap in time).
    assert "evaluator alongside" in out.stderr
    assert jobs["evaluator"]["created_at"] < jobs["pretrain"]["created_at"] < jobs["evaluator"]["updated_at"]
    assert jobs["pretrain"]["output_prefix"] == "models/base-tiny-s0-n100-tiny"
    assert jobs["evaluator"]["output_prefix"] == "models/evaluator-world-s0-n100"
    assert (store / "models/base-tiny-s0-n100-tiny/bundle.json").exists()
    # --quality: the bundle's own figures, and event fidelity sampled through the generator service
    assert "held-out VQ reconstruction" in out.stdout and "temporal" in out.stdout and "all events" in out.stdout

    again = atomctl("--no-quality")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "in the trainer service" not in again.stderr  # found in the store: no job asked for
    assert _jobs(store) == jobs
