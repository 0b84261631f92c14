"""A standing probe: requests an attacker or a careless client would send, against real services on
loopback. Each test is one finding of a security review that once held and must keep holding."""

import io
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from atom.motion.events import EventLabel
from atom.motion.record import MotionRecord
from atom.motion.world.compose import compose
from atom.store import LocalStore
from atom.v1 import common_pb2, evaluator_pb2, generator_pb2, judge_pb2, renderer_pb2, trainer_pb2

sys.path.insert(0, str(Path(__file__).parent.parent / "generator"))
from gen_tiny_models import make_tiny_bundle  # noqa: E402


def _walk(seed=0) -> np.ndarray:
    return compose([EventLabel("walk_forward"), EventLabel("wave")], np.random.default_rng(seed)).joints


def _raw_motion(joints) -> bytes:
    """A motion .npz written by hand, the way a hostile client would: any dtype goes."""
    buf = io.BytesIO()
    np.savez(buf, joints=joints, meta=np.array("{}"))
    return buf.getvalue()


def _render(client, key, form="full_image"):
    req = renderer_pb2.RenderRequest(
        motions=[common_pb2.ArtifactRef(key=key)], options=renderer_pb2.RenderOptions(form=form, width=64, height=64)
    )
    return list(client.stream("Render", req))


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


# -- the render cache is keyed by the bytes it read ----------------------------------------------


def test_a_key_named_like_a_hash_cannot_poison_the_render_cache(start):
    r = start("renderer")
    real = MotionRecord(joints=_walk(0)).to_bytes()
    real_key = r.store.put_content_addressed("motions", real, ".npz").key
    sha = real_key.rsplit("/", 1)[1].split(".")[0]
    # Other joints stored under a name that claims to be the real motion's hash.
    r.store.put_bytes(f"probe/{sha}.npz", MotionRecord(joints=_walk(1) + 3.0).to_bytes())
    (poison,) = _render(r.client, f"probe/{sha}.npz")
    (honest,) = _render(r.client, real_key)
    assert not honest.cached, "the real motion was served renders made from other joints"
    assert honest.render_key != poison.render_key
    assert r.store.get_bytes(honest.images[0].key) != r.store.get_bytes(poison.images[0].key)


# -- motions that are not float metres are refused ------------------------------------------------


@pytest.mark.parametrize(
    "joints, problem",
    [
        (np.full((10, 22, 3), "a"), "floating point"),
        (np.zeros((10, 22, 3), np.complex64), "floating point"),
        (np.zeros((10, 22, 3), bool), "floating point"),
        (np.zeros((10, 22, 3), np.int32), "floating point"),
        (np.full((10, 22, 3), 1.5e6, np.float32), "plausible"),
    ],
)
def test_motions_of_the_wrong_kind_are_refused_by_renderer_and_judge(start, joints, problem):
    r = start("renderer")
    j = start("judge", r.store.root)
    r.store.put_bytes("motions/odd.npz", _raw_motion(joints))
    code, details = _code(lambda: _render(r.client, "motions/odd.npz"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and problem in details
    prompt = common_pb2.Prompt(
        prompt_id="p",
        text="a person waves",
        task="integrity",
        labels=common_pb2.LabelGroup(task="integrity", events=[common_pb2.EventLabel(event="wave", count=1)]),
    )
    req = judge_pb2.ScoreRequest(
        items=[judge_pb2.ScoreItem(item_id="x", prompt=prompt, motion=common_pb2.ArtifactRef(key="motions/odd.npz"))],
        judge=judge_pb2.JudgeConfig(backend="kinematic"),
    )
    replies = []
    try:
        replies = list(j.client.stream("Score", req))
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and problem in exc.details()
    else:  # or a per-item refusal: never a score
        assert len(replies) == 1 and not replies[0].ok and problem in replies[0].error


# -- request bytes that do not parse, keys that are too long --------------------------------------


def test_undecodable_requests_and_oversized_keys_are_invalid_arguments(start):
    r = start("renderer")
    # RenderRequest{motions: [ArtifactRef{key: b"\xff\xfe"}]} by hand: not UTF-8.
    ref = b"\x0a\x02\xff\xfe"
    raw = b"\x0a" + bytes([len(ref)]) + ref
    channel = grpc.insecure_channel(r.service.address)
    call = channel.unary_stream("/atom.v1.Renderer/Render", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    code, details = _code(lambda: list(call(raw, timeout=10)))
    channel.close()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in details
    long_key = "motions/" + "a" * 100_000
    code, details = _code(lambda: _render(r.client, long_key))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "motions[0].key" in details
    assert len(details) < 500, "the oversized key was echoed back"


# -- local paths in requests ---------------------------------------------------------------------


def _eval_request(dataset, evaluator="embedded:models/evaluator"):
    return evaluator_pb2.EvaluateRequest(
        models=[evaluator_pb2.ModelSamples(name="m", samples=common_pb2.ArtifactRef(key="samples/none.jsonl"))],
        dataset=dataset,
        evaluator=evaluator,
        protocol="guo",
        output_prefix="reports/probe",
    )


@pytest.mark.parametrize(
    "dataset, evaluator",
    [
        ("/etc", "embedded:models/evaluator"),
        ("/no/such/dir", "embedded:models/evaluator"),
        ("../../etc", "embedded:models/evaluator"),
        ("datasets/x", "guo:/etc"),
        ("datasets/x", "guo:/no/such/dir"),
    ],
)
def test_local_paths_are_refused_without_revealing_what_exists(start, dataset, evaluator, monkeypatch):
    monkeypatch.delenv("ATOM_DATA_ROOTS", raising=False)
    ev = start("evaluator")
    code, details = _code(lambda: list(ev.client.stream("Evaluate", _eval_request(dataset, evaluator), timeout=30)))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "ATOM_DATA_ROOTS" in details
    assert "not found" not in details and "exist" not in details


def test_local_paths_under_an_allowed_root_are_read(start, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "humanml3d").mkdir(parents=True)
    monkeypatch.setenv("ATOM_DATA_ROOTS", str(data))
    ev = start("evaluator")
    # Inside the root: refused no longer for where it is (it fails later, on what it lacks).
    code, details = _code(lambda: list(ev.client.stream("Evaluate", _eval_request(str(data / "humanml3d")), timeout=30)))
    assert code != grpc.StatusCode.PERMISSION_DENIED
    # A path that climbs out of the root through '..' is still outside.
    code, _ = _code(lambda: list(ev.client.stream("Evaluate", _eval_request(str(data / "humanml3d" / ".." / "..")), timeout=30)))
    assert code == grpc.StatusCode.PERMISSION_DENIED


# -- validation before any write -----------------------------------------------------------------


def test_bad_training_and_pair_requests_write_nothing(start):
    t = start("trainer")
    before = sorted(t.store.list(""))
    req = trainer_pb2.StartTrainingRequest(
        base=common_pb2.ModelRef(base="models/base"),
        pairs=common_pb2.ArtifactRef(key="datasets/p/pairs-mixed.jsonl"),
        output_prefix="../../x",
    )
    code, details = _code(lambda: t.client.call("StartTraining", req))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "output_prefix" in details
    t.store.put_jsonl("datasets/r/motionprefer.jsonl", [])
    before = sorted(t.store.list(""))
    req = trainer_pb2.BuildPairsRequest(
        dataset=common_pb2.ArtifactRef(key="datasets/r/motionprefer.jsonl"), mixed_size=-5, output_prefix="datasets/r"
    )
    code, details = _code(lambda: t.client.call("BuildPairs", req))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "mixed_size" in details
    assert sorted(t.store.list("")) == before, "a refused request wrote to the store"


@pytest.mark.parametrize("content", [b"\x00\x01garbage\xff", b"[1, 2, 3]\n", b'{"text": "x"}\n{broken\n'])
def test_a_garbage_samples_file_is_an_invalid_argument(start, content):
    ev = start("evaluator")
    ev.store.put_bytes("samples/garbage.jsonl", content)
    req = evaluator_pb2.EvaluateRequest(
        models=[evaluator_pb2.ModelSamples(name="m", samples=common_pb2.ArtifactRef(key="samples/garbage.jsonl"))],
        dataset="datasets/x",
        evaluator="guo:models/guo",
        protocol="guo",
        output_prefix="reports/probe",
    )
    from services.evaluator import server as evaluator_server

    # The evaluator itself is not what is probed here: stand in a trivial one (no weights to load).
    real_load = evaluator_server.load_evaluator
    evaluator_server.load_evaluator = lambda store, spec: type("E", (), {"to": lambda self, d: self})()
    try:
        code, details = _code(lambda: list(ev.client.stream("Evaluate", req, timeout=30)))
    finally:
        evaluator_server.load_evaluator = real_load
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "samples" in details


# -- the generator follows retrained adapters ----------------------------------------------------


def _adapter(base_model, store, prefix, seed):
    import copy
    import tempfile

    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        copy.deepcopy(base_model), LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"], lora_dropout=0.0, task_type="SEQ_2_SEQ_LM")
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:  # all from the seed (lora_B is zero at init: a no-op adapter)
                p.copy_(torch.randn(p.shape, generator=g) * 2.0)
    peft_model.peft_config["default"].base_model_name_or_path = "models/base"
    with tempfile.TemporaryDirectory() as tmp:
        peft_model.save_pretrained(tmp, save_embedding_layers=False)
        for f in Path(tmp).iterdir():
            store.put_bytes(f"{prefix}/{f.name}", f.read_bytes())


def _tokens(gen, store, adapter):
    prompts = [
        common_pb2.Prompt(prompt_id=f"p{i}", text=t, task="integrity")
        for i, t in enumerate(["a person walks forward.", "someone kicks, then jumps."])
    ]
    req = generator_pb2.GenerateRequest(
        prompts=prompts,
        samples_per_prompt=2,
        seed=3,
        model=common_pb2.ModelRef(base="models/base", adapter=adapter),
        sampling=generator_pb2.SamplingParams(max_length=8),
    )
    out = sorted(gen.client.stream("Generate", req), key=lambda m: (m.prompt_id, m.sample_index))
    return [MotionRecord.from_bytes(store.get_bytes(m.motion.key)).tokens.tolist() if m.motion.key else [] for m in out], out


def test_an_adapter_retrained_under_its_prefix_is_served_with_its_new_weights(start, tmp_path):
    from atom.mgpt.bundle import save_bundle

    bundle = make_tiny_bundle()
    store = LocalStore(tmp_path / "store")
    save_bundle(store, "models/base", bundle)
    _adapter(bundle.lm.model, store, "models/run/adapter", seed=1)
    gen = start("generator", tmp_path / "store")
    _tokens(gen, store, "models/run/adapter")  # loads (and caches) the first weights
    _adapter(bundle.lm.model, store, "models/run/adapter", seed=2)  # retrained in place
    served, replies = _tokens(gen, store, "models/run/adapter")
    assert not any(m.cached for m in replies)
    # What a fresh generator makes from the new weights is what the long-running one serves.
    fresh_root = tmp_path / "fresh"
    fresh_store = LocalStore(fresh_root)
    save_bundle(fresh_store, "models/base", bundle)
    _adapter(bundle.lm.model, fresh_store, "models/run/adapter", seed=2)
    expected, _ = _tokens(start("generator", fresh_root), fresh_store, "models/run/adapter")
    assert served == expected
