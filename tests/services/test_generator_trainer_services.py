"""Generator and trainer through real gRPC servers: sampling by seed, adapters, pair building,
an IPO job watched to the end, a cancelled job, and a job resumed after its server was killed."""

import sys
from pathlib import Path

import grpc
import pytest

from atom.mgpt.bundle import save_bundle
from atom.motion.events import LabelGroup, EventLabel
from atom.v1 import common_pb2, generator_pb2, trainer_pb2

sys.path.insert(0, str(Path(__file__).parent.parent / "generator"))
from gen_tiny_models import make_tiny_bundle  # noqa: E402

BASE = "models/base-test"
PROMPTS = [
    common_pb2.Prompt(
        prompt_id=f"p{i}",
        text=t,
        task="integrity",
        labels=common_pb2.LabelGroup(
            task="integrity", events=[common_pb2.EventLabel(event="walk_forward", count=1), common_pb2.EventLabel(event="squat", count=1)]
        ),
    )
    for i, t in enumerate(["a person walks forward.", "a man jumps in place, then squats.", "someone turns left and waves"])
]


@pytest.fixture
def store_root(tmp_path):
    from atom.store import LocalStore

    save_bundle(LocalStore(tmp_path / "store"), BASE, make_tiny_bundle())
    return tmp_path / "store"


def _generate(client, adapter="", seed=7, n=2, max_length=6):
    req = generator_pb2.GenerateRequest(
        prompts=PROMPTS,
        samples_per_prompt=n,
        seed=seed,
        model=common_pb2.ModelRef(base=BASE, adapter=adapter),
        sampling=generator_pb2.SamplingParams(max_length=max_length),
    )
    return sorted(client.stream("Generate", req), key=lambda m: (m.prompt_id, m.sample_index))


def test_generate_is_reproducible_by_seed(start, store_root, tmp_path):
    gen = start("generator", store_root)
    first = _generate(gen.client)
    assert len(first) == len(PROMPTS) * 2 and not any(m.cached for m in first)
    assert all(m.motion.key.startswith("motions/") and m.num_frames >= 4 for m in first)
    again = _generate(gen.client)
    assert all(m.cached for m in again)
    assert [m.motion.key for m in again] == [m.motion.key for m in first]
    # A fresh server on a fresh store makes the same motions from the same seed.
    other_root = tmp_path / "other"
    from atom.store import LocalStore

    save_bundle(LocalStore(other_root), BASE, make_tiny_bundle())
    fresh = _generate(start("generator", other_root).client)
    assert [m.motion.key for m in fresh] == [m.motion.key for m in first]
    assert [m.motion.key for m in _generate(gen.client, seed=8)] != [m.motion.key for m in first]


def test_a_bundle_rewritten_under_the_same_prefix_is_reloaded(start, store_root):
    """The generator knows a model by its content (the bundle manifest's hash), not its name: new
    weights under the same prefix are loaded, and their motions are not served from the old cache."""
    import torch

    from atom.store import LocalStore

    gen = start("generator", store_root)
    first = _generate(gen.client)
    other = make_tiny_bundle()
    with torch.no_grad():
        for p in other.lm.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_bundle(LocalStore(store_root), BASE, other)
    again = _generate(gen.client)
    assert not any(m.cached for m in again)
    assert again[0].model_id != first[0].model_id
    assert [m.motion.key for m in again] != [m.motion.key for m in first]


def test_generate_bad_requests(start, store_root):
    gen = start("generator", store_root)
    with pytest.raises(grpc.RpcError) as err:
        list(
            gen.client.stream(
                "Generate", generator_pb2.GenerateRequest(prompts=PROMPTS, samples_per_prompt=0, model=common_pb2.ModelRef(base=BASE))
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "samples_per_prompt" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(
            gen.client.stream(
                "Generate",
                generator_pb2.GenerateRequest(prompts=PROMPTS, samples_per_prompt=1, model=common_pb2.ModelRef(base="models/nothing")),
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def _dataset(store, motions):
    """MotionPrefer records: per prompt, scores 5, 5, 0, 0 for its samples."""
    rows = []
    for m in motions:
        score = 5.0 if m.sample_index < 2 else 0.0
        p = PROMPTS[int(m.prompt_id[1:])]
        rows.append(
            {
                "prompt_id": m.prompt_id,
                "prompt": p.text,
                "task": "integrity",
                "labels": LabelGroup("integrity", (EventLabel("walk_forward"), EventLabel("squat"))).to_dict(),
                "motion_key": m.motion.key,
                "score": score,
                "judge_id": "test",
                "rationale": "",
            }
        )
    store.put_jsonl("datasets/t/motionprefer.jsonl", rows)
    return "datasets/t/motionprefer.jsonl"


def _train_req(pairs_key, prefix, epochs=2, max_steps=0):
    return trainer_pb2.StartTrainingRequest(
        base=common_pb2.ModelRef(base=BASE),
        pairs=common_pb2.ArtifactRef(key=pairs_key),
        output_prefix=prefix,
        config=trainer_pb2.TrainingConfig(algorithm="ipo", batch_size=4, epochs=epochs, max_steps=max_steps, learning_rate=5e-3, seed=1),
    )


def _watch(client, job_id):
    events = list(client.stream("WatchJob", trainer_pb2.JobRef(job_id=job_id), timeout=300))
    return events


def test_pairs_training_watch_cancel_resume_and_adapter(start, store_root):
    gen = start("generator", store_root)
    motions = _generate(gen.client, n=4)
    trainer = start("trainer", store_root)
    ds = _dataset(trainer.store, motions)
    resp = trainer.client.call(
        "BuildPairs", trainer_pb2.BuildPairsRequest(dataset=common_pb2.ArtifactRef(key=ds), theta=0, output_prefix="datasets/t", seed=0)
    )
    assert resp.pairs_per_task["integrity"] == len(PROMPTS) * 4  # 2 chosen x 2 rejected per prompt
    mixed = next(r.key for r in resp.pair_sets if r.key.endswith("pairs-mixed.jsonl"))

    job = trainer.client.call("StartTraining", _train_req(mixed, "models/run-a"))
    events = _watch(trainer.client, job.job_id)
    final = events[-1].job
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    steps = [e.job.metrics.step for e in events]
    assert steps == sorted(steps) and final.metrics.step == final.metrics.total_steps > 0
    assert final.metrics.margin > 0 and final.adapter.key
    # The same config again is the same, finished job.
    assert trainer.client.call("StartTraining", _train_req(mixed, "models/run-a")).job_id == job.job_id

    # Cancel another job.
    other = trainer.client.call("StartTraining", _train_req(mixed, "models/run-b", epochs=200))
    cancelled = trainer.client.call("CancelJob", trainer_pb2.JobRef(job_id=other.job_id))
    final_b = _watch(trainer.client, other.job_id)[-1].job
    assert final_b.state == common_pb2.JOB_STATE_CANCELLED, cancelled

    # The adapter loads in the generator and changes what it generates.
    tuned = _generate(gen.client, adapter=final.adapter.key)
    base = _generate(gen.client)
    assert [m.motion.key for m in tuned] != [m.motion.key for m in base]
    assert all(m.model_id.count("+") == 1 for m in tuned)

    with pytest.raises(grpc.RpcError) as err:
        trainer.client.call("GetJob", trainer_pb2.JobRef(job_id="train-nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_killed_trainer_resumes_job(start, store_root, tmp_path):
    """SIGKILL the trainer process mid-job; a new trainer over the same store resumes the job from
    its last checkpoint and finishes it."""
    import os
    import signal

    from atom.runtime.client import connect
    from atom.runtime.launch import LocalServices

    gen = start("generator", store_root)
    motions = _generate(gen.client, n=4)
    with LocalServices(str(store_root), ["trainer"], log_dir=tmp_path / "logs") as first:
        first.wait_ready()
        t1 = connect("trainer", first.endpoints()["trainer"])
        ds = _dataset(gen.store, motions)
        resp = t1.call("BuildPairs", trainer_pb2.BuildPairsRequest(dataset=common_pb2.ArtifactRef(key=ds), output_prefix="datasets/t"))
        mixed = next(r.key for r in resp.pair_sets if r.key.endswith("pairs-mixed.jsonl"))
        job = t1.call("StartTraining", _train_req(mixed, "models/run-k", epochs=40))
        for ev in t1.stream("WatchJob", trainer_pb2.JobRef(job_id=job.job_id)):
            if ev.job.metrics.epoch >= 2:  # past an epoch checkpoint
                break
        proc = first.services["trainer"][0].proc
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        t1.close()
    t2 = start("trainer", store_root)  # a new trainer over the same store picks the job up
    final = _watch(t2.client, job.job_id)[-1].job
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    assert final.resumed
