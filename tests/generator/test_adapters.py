"""Per-call LoRA adapters on one base model (adapters made here with peft on the tiny model)."""

import copy
import tempfile
from pathlib import Path

import pytest
import torch

from atom.mgpt.bundle import save_bundle
from atom.store import LocalStore
from gen_tiny_models import make_tiny_bundle
from services.generator.adapters import AdapterError, AdapterPool, ModelCache

CAPS = ["a person walks forward", "someone kicks", "a man jumps in place, then squats"]


def _make_adapter(base_model, store, prefix, seed, base_name="models/base"):
    from peft import LoraConfig, get_peft_model

    model = copy.deepcopy(base_model)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v"], lora_dropout=0.0, task_type="SEQ_2_SEQ_LM"))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # zero at init (a no-op adapter): make it change the model
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    peft_model.peft_config["default"].base_model_name_or_path = base_name
    with tempfile.TemporaryDirectory() as tmp:
        peft_model.save_pretrained(tmp, save_embedding_layers=False)
        for f in Path(tmp).iterdir():
            store.put_bytes(f"{prefix}/{f.name}", f.read_bytes())
    peft_model.eval()
    return peft_model


def _logprobs(bundle, model):
    lm = bundle.lm
    ii, am = lm.encode_prompts(CAPS)
    labels = lm.encode_motion([[1, 2, 3], [4, 5], [6, 7, 8, 9]])
    with torch.no_grad():
        return lm.sequence_logprobs(ii, am, labels, model=model)


@pytest.fixture()
def setup(tmp_path):
    store = LocalStore(tmp_path / "store")
    bundle = make_tiny_bundle(seed=3)
    base_copy = copy.deepcopy(bundle.lm.model)
    ref_a = _make_adapter(base_copy, store, "models/run-a/adapter", seed=1)
    ref_b = _make_adapter(base_copy, store, "models/run-b/adapter", seed=2)
    return store, bundle, base_copy, ref_a, ref_b


def test_switching_adapters_per_call(setup):
    store, bundle, base_copy, ref_a, ref_b = setup
    pool = AdapterPool(bundle, store, capacity=4, base_prefix="models/base")
    base_lp = _logprobs(bundle, base_copy)
    base_motion = pool.sample(CAPS, [1, 2, 3], max_tokens=8)
    with pool.use("models/run-a/adapter") as m:
        assert torch.allclose(_logprobs(bundle, m), _logprobs(bundle, ref_a), atol=1e-5)
        assert not torch.allclose(_logprobs(bundle, m), base_lp, atol=1e-3)
    with pool.use("models/run-b/adapter") as m:
        assert torch.allclose(_logprobs(bundle, m), _logprobs(bundle, ref_b), atol=1e-5)
    with pool.use(None) as m:  # the base is intact underneath
        assert torch.allclose(_logprobs(bundle, m), base_lp, atol=1e-5)
    with pool.use("models/run-a/adapter") as m:
        assert torch.allclose(_logprobs(bundle, m), _logprobs(bundle, ref_a), atol=1e-5)
    assert pool.loads == 2 and pool.loaded() == ["models/run-b/adapter", "models/run-a/adapter"]
    # Sampling: base again gives the same motions as before any adapter; an adapter changes them.
    again = pool.sample(CAPS, [1, 2, 3], max_tokens=8)
    assert [m.tokens.tolist() for m in again] == [m.tokens.tolist() for m in base_motion]
    tuned = pool.sample(CAPS, [1, 2, 3], adapter="models/run-a/adapter", max_tokens=8)
    assert [m.tokens.tolist() for m in tuned] != [m.tokens.tolist() for m in base_motion]


def test_lru_eviction(setup):
    store, bundle, base_copy, ref_a, ref_b = setup
    pool = AdapterPool(bundle, store, capacity=1)
    with pool.use("models/run-a/adapter"):
        pass
    with pool.use("models/run-b/adapter") as m:
        assert torch.allclose(_logprobs(bundle, m), _logprobs(bundle, ref_b), atol=1e-5)
    assert pool.loaded() == ["models/run-b/adapter"]
    with pool.use("models/run-a/adapter") as m:
        assert torch.allclose(_logprobs(bundle, m), _logprobs(bundle, ref_a), atol=1e-5)
    assert pool.loads == 3
    assert pool.evict("models/run-a/adapter") and pool.loaded() == []
    with pool.use(None) as m:
        assert torch.allclose(_logprobs(bundle, m), _logprobs(bundle, base_copy), atol=1e-5)


def test_bad_adapters(setup):
    store, bundle, *_ = setup
    pool = AdapterPool(bundle, store, base_prefix="models/other-base")
    with pytest.raises(AdapterError, match="no LoRA adapter"):
        with pool.use("models/nope/adapter"):
            pass
    with pytest.raises(AdapterError, match="trained on base 'models/base'"):
        with pool.use("models/run-a/adapter"):
            pass
    store.put_json("models/bad/adapter/adapter_config.json", {"peft_type": "LORA", "r": 4, "target_modules": ["q"]})
    store.put_bytes("models/bad/adapter/adapter_model.bin", b"pickle")
    with pytest.raises(AdapterError, match="safetensors"):
        with pool.use("models/bad/adapter"):
            pass
    # An adapter made for a differently sized model does not fit.
    other = make_tiny_bundle(seed=0)
    from atom.mgpt.lm import MotionLM, T5Size

    big = MotionLM.create(other.lm.tokenizer, T5Size(d_model=48, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=24), seed=0)
    _make_adapter(big.model, store, "models/wide/adapter", seed=5, base_name="")
    with pytest.raises(AdapterError, match="does not fit"):
        with pool.use("models/wide/adapter"):
            pass


def test_model_cache_loads_bases_from_store(setup):
    store, bundle, *_ = setup
    save_bundle(store, "models/base", bundle)
    cache = ModelCache(store, max_bases=1)
    pool = cache.pool("models/base")
    assert cache.pool("models/base/") is pool
    out = pool.sample(CAPS[:1], [0], adapter="models/run-a/adapter", max_tokens=4)
    assert out[0].valid
    assert cache.loaded() == {"models/base": ["models/run-a/adapter"]}
