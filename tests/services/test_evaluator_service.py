"""The evaluator over real gRPC: a request past its deadline stops its work (the next call is served
at once), and request sizes are bounded."""

import time
from pathlib import Path

import grpc
import pytest

from atom.motion.features import features_to_joints
from atom.motion.humanml3d import HumanML3D
from atom.motion.record import MotionRecord
from atom.store import LocalStore
from atom.v1 import common_pb2, evaluator_pb2


def _evaluator_helpers():
    """tests/evaluator/conftest.py by its path: the name `conftest` may already stand for another
    folder's conftest in this process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluator_conftest", Path(__file__).parents[1] / "evaluator" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


write_corpus = _evaluator_helpers().write_corpus


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """A store with a small corpus, an embedded evaluator trained briefly on it, and one model's
    samples (the real test clips, standing for generated motions)."""
    from atom.embedded_evaluator import EmbeddedConfig
    from services.trainer.evaluator_training import train_embedded_evaluator

    root = tmp_path_factory.mktemp("eval")
    corpus = root / "corpus"
    write_corpus(corpus, sizes={"train": 64, "val": 16, "test": 48})
    store = LocalStore(root / "store")
    store.put_tree("datasets/syn", corpus)
    train_embedded_evaluator(corpus, EmbeddedConfig(steps=20)).save(store, "models/evaluator-syn")
    ds = HumanML3D(corpus)
    rows = []
    for cid in ds.split_ids("test"):
        clip = ds.load_clip(cid)
        joints = features_to_joints(clip.features)
        key = store.put_content_addressed(
            "motions", MotionRecord(joints=joints, features=clip.features[: len(joints)]).to_bytes(), ".npz"
        ).key
        rows.append(
            {"prompt_id": cid, "text": clip.captions[0].text, "task": "general", "motion": key, "kind": "general", "sample_index": 0}
        )
    store.put_jsonl("samples/base.jsonl", rows)
    return root / "store"


def _request(models: int = 1, **kw):
    return evaluator_pb2.EvaluateRequest(
        models=[evaluator_pb2.ModelSamples(name=f"m{i}", samples=common_pb2.ArtifactRef(key="samples/base.jsonl")) for i in range(models)],
        dataset="datasets/syn",
        evaluator="embedded:models/evaluator-syn",
        seed=0,
        output_prefix="reports/t",
        **kw,
    )


def test_a_call_past_its_deadline_stops_its_work(start, evaluation):
    ev = start("evaluator", evaluation)
    # 24 models x 1,000 replications: more than a minute of work, abandoned after 3 s.
    with pytest.raises(grpc.RpcError) as err:
        list(ev.client.stream("Evaluate", _request(models=24, replications=1000), timeout=3))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    t0 = time.monotonic()
    events = list(ev.client.stream("Evaluate", _request(replications=2), timeout=60))
    assert events[-1].HasField("report")
    # The abandoned call let go of the evaluation slot at its next replication.
    assert time.monotonic() - t0 < 20


def test_request_sizes_are_bounded(start, evaluation):
    ev = start("evaluator", evaluation)
    with pytest.raises(grpc.RpcError) as err:
        list(ev.client.stream("Evaluate", _request(replications=10**9), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "replications" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        list(ev.client.stream("Evaluate", _request(replications=2, protocol="bogus"), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "protocol" in err.value.details()
