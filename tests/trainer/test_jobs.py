"""Training jobs: ids from the config, states, watching, cancellation, resume after a restart."""

import threading

import pytest

from services.trainer.config import TrainConfig
from services.trainer.jobs import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    JobManager,
    JobNotFound,
    job_id_for,
)
from services.trainer.pairs import PreferencePair, save_pairs

LABELS = {"task": "integrity", "events": [{"event": "squat", "count": 1}]}


@pytest.fixture
def pairs_key(store):
    pairs = [
        PreferencePair(
            "integrity",
            f"p{i}",
            f"a man walks forward then squats {i}",
            LABELS,
            f"m/{i}w",
            f"m/{i}l",
            5,
            0,
            tuple(range(i, i + 5)),
            tuple(range(200 + i, 206 + i)),
        )
        for i in range(4)
    ]
    save_pairs(store, "datasets/j/pairs.jsonl", pairs)
    return "datasets/j/pairs.jsonl"


def cfg(pairs_key, **kw):
    return TrainConfig(**{"pairs_key": pairs_key, "output_prefix": "models/j", "batch_size": 2, "epochs": 2, **kw})


def manager(store, tiny_lm, **kw):
    calls = []

    def loader(config):
        calls.append(config.base_model)
        return tiny_lm()

    m = JobManager(store, loader, persist_interval_s=0.0, **kw)
    m.calls = calls
    return m


def test_a_job_runs_to_success_and_the_same_config_is_the_same_job(store, tiny_lm, pairs_key):
    m = manager(store, tiny_lm)
    config = cfg(pairs_key)
    job_id = m.start(config)
    assert job_id == job_id_for(config) and job_id.startswith("train-")
    events = list(m.watch(job_id))
    assert events[-1].state == SUCCEEDED and events[-1].step == 4
    steps = [e.step for e in events if e.state == RUNNING and e.loss is not None]
    assert steps == sorted(steps) and steps[-1] == 4
    status = m.get(job_id)
    assert status.adapter_prefix == "models/j/adapter" and store.exists("models/j/adapter/adapter_model.safetensors")
    assert m.start(config) == job_id and m.wait(job_id).attempts == 1 and len(m.calls) == 1  # not run again
    late = list(m.watch(job_id))  # a late watcher gets the final state at once
    assert [e.state for e in late] == [SUCCEEDED]
    assert store.get_json(f"jobs/{job_id}.json")["state"] == SUCCEEDED
    assert [s.job_id for s in m.list()] == [job_id]


def test_cancel_then_start_again_resumes_from_the_checkpoint(store, tiny_lm, pairs_key):
    m = manager(store, tiny_lm)
    config = cfg(pairs_key, epochs=50)  # 100 steps: long enough to cancel mid-way
    job_id = m.start(config)
    for event in m.watch(job_id):
        if event.step >= 3:
            m.cancel(job_id)
            break
    status = m.wait(job_id, timeout=60)
    assert status.state == CANCELLED and 3 <= status.step < 100
    assert store.get_json("models/j/checkpoints/latest.json")["step"] == status.step

    assert m.start(config) == job_id
    final = m.wait(job_id, timeout=120)
    assert final.state == SUCCEEDED and final.attempts == 2 and final.resumed_from_step == status.step
    assert store.get_json("models/j/train_summary.json")["resumed_from_step"] == status.step


def test_a_restarted_manager_knows_its_jobs_and_resumes_interrupted_ones(store, tiny_lm, pairs_key):
    config = cfg(pairs_key)
    job_id = job_id_for(config)
    # What a process that died mid-run leaves behind: a RUNNING record.
    store.put_json(f"jobs/{job_id}.json", {"job_id": job_id, "state": RUNNING, "config": config.to_dict(), "step": 1})
    m = manager(store, tiny_lm)
    status = m.get(job_id)
    assert status.state == FAILED and status.interrupted and "start it again" in status.error
    assert m.resume_interrupted() == [job_id]
    assert m.wait(job_id, timeout=120).state == SUCCEEDED
    # and a third process sees it finished
    assert manager(store, tiny_lm).get(job_id).state == SUCCEEDED


def test_a_failing_job_reports_why(store, tiny_lm):
    m = manager(store, tiny_lm)
    job_id = m.start(cfg("datasets/missing.jsonl"))
    status = m.wait(job_id, timeout=60)
    assert status.state == FAILED and "datasets/missing.jsonl" in status.error


def test_a_preference_job_runs_alone_and_a_pending_job_can_be_cancelled(store, tiny_lm, pairs_key):
    gate = threading.Event()

    def slow_loader(config):
        gate.wait(30)
        return tiny_lm()

    # Two CPU threads, but a preference job takes them all: the second waits for the first.
    m = JobManager(store, slow_loader, threads=2, persist_interval_s=0.0)
    first = m.start(cfg(pairs_key, output_prefix="models/a"))
    second = m.start(cfg(pairs_key, output_prefix="models/b"))
    assert m.get(second).state == "PENDING"
    m.cancel(second)
    assert m.wait(second, timeout=10).state == CANCELLED
    gate.set()
    assert m.wait(first, timeout=120).state == SUCCEEDED


def test_unknown_job_and_stop_event(store, tiny_lm, pairs_key):
    m = manager(store, tiny_lm)
    with pytest.raises(JobNotFound, match="no training job 'train-nope'"):
        m.get("train-nope")
    with pytest.raises(JobNotFound):
        list(m.watch("train-nope"))
    # a watcher whose client went away stops without waiting for the job
    gate = threading.Event()
    m2 = JobManager(store, lambda c: (gate.wait(30), tiny_lm())[1], persist_interval_s=0.0)
    job_id = m2.start(cfg(pairs_key, output_prefix="models/s"))
    stop = threading.Event()
    stream = m2.watch(job_id, stop=stop, poll_s=0.05)
    first = next(stream)
    assert first.job_id == job_id and not first.terminal
    stop.set()
    rest = list(stream)
    assert all(not e.terminal for e in rest)
    gate.set()
    m2.wait(job_id, timeout=120)
