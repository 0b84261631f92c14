"""Pretraining and the embedded evaluator's training as trainer jobs, over real gRPC: started,
watched, keyed by content (the same request is the same, finished, job), refused with a clear
message when malformed, and resumed by the next trainer when their trainer was killed."""

import json
import signal

import grpc
import pytest

from atom.embedded_evaluator import EmbeddedEvaluator
from atom.mgpt.bundle import load_bundle
from atom.store import LocalStore
from atom.v1 import common_pb2, trainer_pb2

DATASET = "datasets/world-test"
DIGEST = "d" * 64  # what the controller sends: the dataset's content digest


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store root holding a small world (90 clips: 72 for training, enough for one evaluator batch)."""
    from atom.motion.world.corpus import build_corpus

    root = tmp_path_factory.mktemp("model-jobs")
    build_corpus(root / "world", 90, seed=2)
    return root


def _store_with_world(world, tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    store.put_tree(DATASET, world / "world")
    store.put_bytes(f"{DATASET}/DONE", b"ok\n")
    return store


def pretrain_request(prefix="models/base-test", **kw):
    return trainer_pb2.StartTrainingRequest(
        output_prefix=prefix,
        pretrain=trainer_pb2.PretrainJob(dataset=common_pb2.ArtifactRef(key=DATASET, sha256=DIGEST), preset="tiny", seed=0, **kw),
    )


def evaluator_request(steps=3):
    return trainer_pb2.StartTrainingRequest(
        output_prefix="models/evaluator-test",
        evaluator=trainer_pb2.EvaluatorJob(dataset=common_pb2.ArtifactRef(key=DATASET, sha256=DIGEST), seed=0, steps=steps),
    )


def watch(client, job_id):
    events = list(client.stream("WatchJob", trainer_pb2.JobRef(job_id=job_id), timeout=300))
    return events, events[-1].job


def test_pretrain_job_over_grpc(start, world, tmp_path):
    store = _store_with_world(world, tmp_path)
    trainer = start("trainer", store.root)

    job = trainer.client.call("StartTraining", pretrain_request(), timeout=30)
    assert job.job_id.startswith("pretrain-") and job.kind == "pretrain"
    events, final = watch(trainer.client, job.job_id)
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    assert any(e.message.startswith("lm: ") for e in events)  # progress through both stages
    assert final.output.key == "models/base-test" and final.metrics.step == final.metrics.total_steps == 60
    f = final.figures
    assert (f["vq_steps_done"], f["lm_steps_done"], f["stopped_early"]) == (30, 30, 0) and f["vq_mpjpe_mm"] > 0
    bundle = load_bundle(store, "models/base-test")
    # As the controller made it in process before: the dataset's store prefix, the tiny config, no cap.
    assert bundle.info["dataset"] == DATASET and bundle.info["config"]["time_budget_s"] is None
    record = store.get_json(f"jobs/{job.job_id}.json")
    assert record["kind"] == "pretrain" and record["state"] == "SUCCEEDED" and record["config"]["dataset_sha256"] == DIGEST

    # Keyed by content: the same request is the same job, found finished and not run again...
    manifest = store.get_bytes("models/base-test/bundle.json")
    again = trainer.client.call("StartTraining", pretrain_request(), timeout=30)
    assert again.job_id == job.job_id and again.state == common_pb2.JOB_STATE_SUCCEEDED
    assert store.get_json(f"jobs/{job.job_id}.json")["attempts"] == 1
    assert store.get_bytes("models/base-test/bundle.json") == manifest
    # ...and other content (another dataset digest) is another job, which cancels like any job.
    other = pretrain_request()
    other.pretrain.dataset.sha256 = "e" * 64
    other_id = trainer.client.call("StartTraining", other, timeout=30).job_id
    assert other_id != job.job_id
    trainer.client.call("CancelJob", trainer_pb2.JobRef(job_id=other_id), timeout=10)
    assert watch(trainer.client, other_id)[1].state == common_pb2.JOB_STATE_CANCELLED


def test_evaluator_job_over_grpc(start, world, tmp_path):
    store = _store_with_world(world, tmp_path)
    trainer = start("trainer", store.root)
    ev_job = trainer.client.call("StartTraining", evaluator_request(), timeout=30)
    assert ev_job.job_id.startswith("evaluator-")
    _, ev_final = watch(trainer.client, ev_job.job_id)
    assert ev_final.state == common_pb2.JOB_STATE_SUCCEEDED, ev_final.error
    assert ev_final.output.key == "models/evaluator-test" and ev_final.figures["steps"] == 3
    ev = EmbeddedEvaluator.load(store, "models/evaluator-test")
    assert ev.summary["train_clips"] == ev_final.figures["train_clips"] and "gt" not in ev.summary
    assert [json.loads(p.read_text())["kind"] for p in (store.root / "jobs").glob("*.json")] == ["evaluator"]


@pytest.mark.parametrize(
    "change, field, words",
    [
        (lambda r: setattr(r.pretrain, "preset", "huge"), "pretrain.preset", "must be one of default, tiny"),
        (lambda r: setattr(r.pretrain.dataset, "key", ""), "pretrain.dataset.key", "dataset"),
        (lambda r: setattr(r.pretrain, "time_budget_s", -1.0), "pretrain.time_budget_s", "positive"),
        (lambda r: setattr(r.base, "base", "models/x"), "base", "takes no base model"),
        (lambda r: setattr(r, "output_prefix", "../escape"), "output_prefix", ""),
    ],
)
def test_malformed_model_jobs_are_refused_with_the_field_named(start, tmp_path, change, field, words):
    trainer = start("trainer")
    req = pretrain_request()
    change(req)
    with pytest.raises(grpc.RpcError) as err:
        trainer.client.call("StartTraining", req, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details() and words in err.value.details()


def test_a_missing_dataset_is_not_found(start):
    trainer = start("trainer")
    with pytest.raises(grpc.RpcError) as err:
        trainer.client.call("StartTraining", evaluator_request(), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and f"{DATASET}/DONE" in err.value.details()


@pytest.mark.slow
def test_a_pretrain_job_killed_with_its_trainer_is_resumed_by_the_next(world, tmp_path, wait_for):
    """SIGKILL the trainer process mid-pretraining; the next trainer on the same store finds the job
    interrupted, runs it again by itself, and makes the same bundle an uninterrupted job makes."""
    from atom.runtime.client import connect
    from atom.runtime.launch import LocalServices

    store = _store_with_world(world, tmp_path)
    with LocalServices(str(store.root), ["trainer"], log_dir=tmp_path / "logs") as first:
        first.wait_ready()
        with connect("trainer", first.endpoints()["trainer"]) as client:
            job_id = client.call("StartTraining", pretrain_request(), timeout=30).job_id
            for event in client.stream("WatchJob", trainer_pb2.JobRef(job_id=job_id), timeout=300):
                if event.job.metrics.step >= 5:  # training, past the dataset copy
                    break
        first.services["trainer"][0].proc.send_signal(signal.SIGKILL)
        first.services["trainer"][0].proc.wait(30)
    assert store.get_json(f"jobs/{job_id}.json")["state"] == "RUNNING"  # as the killed process left it
    assert not store.exists("models/base-test/bundle.json")

    with LocalServices(str(store.root), ["trainer"], log_dir=tmp_path / "logs") as second:
        second.wait_ready()
        with connect("trainer", second.endpoints()["trainer"]) as client:
            _, final = watch(client, job_id)  # nobody started it again: the new trainer did
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.error
    record = store.get_json(f"jobs/{job_id}.json")
    assert record["attempts"] == 2 and not record["interrupted"]

    # The same bundle as an uninterrupted job's (seeded: running it again from the start is exact).
    from services.trainer.model_jobs import PretrainSpec
    from services.trainer.pretrain import pretrain

    fresh = LocalStore(tmp_path / "fresh")
    config = PretrainSpec.from_dict(record["config"]).config()
    pretrain(world / "world", fresh, "models/base-test", config, dataset_name=DATASET)
    assert fresh.get_bytes("models/base-test/bundle.json") == store.get_bytes("models/base-test/bundle.json")
