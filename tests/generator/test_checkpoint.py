"""Loading a MotionGPT-style Lightning checkpoint safely (files written here in the released layout)."""

import collections
import os
import sys
import types

import numpy as np
import pytest
import torch

from atom.mgpt.checkpoint import CheckpointError, UnsafePickleError, load_motiongpt, read_state_dict, safe_load
from atom.mgpt.vqvae import VQVAE, VQVAEConfig

SMALL_VQ = VQVAEConfig(width=32, code_dim=16, num_codes=512, res_depth=3)
FAKE_MODULE = "omegaconf_lookalike_for_atom_tests"
EXECUTED = []


class FakeDictConfig:
    """Stands for OmegaConf's DictConfig: if the loader ran any of its code, EXECUTED would fill up."""

    def __init__(self, content):
        self.content = content

    def __setstate__(self, state):
        EXECUTED.append("setstate")
        self.__dict__.update(state)

    def __reduce_ex__(self, protocol):
        return (FakeDictConfig, (self.content,), {"content": self.content})


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/atom-pwned-by-checkpoint",))


def _fake_flan_dir(path, extra_words=()):
    """A flan-t5-base look-alike: T5 tokenizer (46 pieces + 4 sentinels, standing for 32000 + 100) and config."""
    from transformers import T5Config, T5Tokenizer

    words = "a person man walks forward backward jumps squats then and turns left right generate motion".split()
    words += list(extra_words)
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [("\u2581" + w, -5.0) for w in words] + [(c, -9.0) for c in "abcdefghijklmnopqrstuvwxyz:.,"]
    T5Tokenizer(vocab=vocab, extra_ids=4).save_pretrained(str(path))
    T5Config(
        vocab_size=len(vocab) + 4,
        d_model=32,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        d_kv=16,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    ).save_pretrained(str(path))
    return path


def _lightning_checkpoint(path, flan_dir, vq_config=SMALL_VQ, vocab_delta=0, evil=False):
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    vq = VQVAE(vq_config)
    with torch.no_grad():
        vq.quantizer.codebook.normal_()
    vocab = len(AutoTokenizer.from_pretrained(str(flan_dir))) + 515 + vocab_delta
    cfg = T5Config.from_pretrained(str(flan_dir))
    cfg.vocab_size = vocab
    t5 = T5ForConditionalGeneration(cfg)
    t5.lm_head.weight = torch.nn.Parameter(torch.randn(vocab, 32))  # untied, as in flan-t5
    sd = collections.OrderedDict()
    for k, v in vq.state_dict().items():
        sd["vae." + k] = v
    for k, v in t5.state_dict().items():
        sd["lm.language_model." + k] = v
    sd["metrics.TM2TMetrics.t2m_textencoder.main.0.weight"] = torch.zeros(3, 3)
    sd["_losses.losses_train.total"] = torch.zeros(())
    # Pickle the fake config under a module name that is importable only while saving.
    FakeDictConfig.__module__ = FAKE_MODULE
    fake_mod = types.ModuleType(FAKE_MODULE)
    fake_mod.FakeDictConfig = FakeDictConfig
    sys.modules[FAKE_MODULE] = fake_mod
    try:
        ckpt = {
            "epoch": 2999,
            "global_step": 123,
            "pytorch-lightning_version": "1.8.6",
            "state_dict": sd,
            "hyper_parameters": {"cfg": FakeDictConfig({"model": {"target": "mGPT.models.mgpt.MotionGPT"}})},
            "lr_schedulers": [],
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}],
            "shapes": torch.Size([1, 2]),
            "dtype": torch.float32,
            "np": np.arange(3),
        }
        if evil:
            ckpt["callbacks"] = Evil()
        torch.save(ckpt, str(path))
    finally:
        del sys.modules[FAKE_MODULE]
    return path, vq, t5


@pytest.fixture(scope="module")
def flan(tmp_path_factory):
    return _fake_flan_dir(tmp_path_factory.mktemp("flan"))


def test_loads_lightning_checkpoint_without_running_its_classes(tmp_path, flan):
    path, vq, t5 = _lightning_checkpoint(tmp_path / "motiongpt_s3_h3d.tar", flan)
    # Plain weights_only loading refuses the file (as it refuses the real one).
    with pytest.raises(Exception):
        torch.load(str(path), weights_only=True)
    obj = safe_load(path)
    cfg = obj["hyper_parameters"]["cfg"]
    assert type(cfg).__name__ == "FakeDictConfig" and type(cfg) is not FakeDictConfig
    assert EXECUTED == [] and FAKE_MODULE not in sys.modules
    assert obj["shapes"] == torch.Size([1, 2]) and obj["dtype"] is torch.float32
    # numpy objects are not weights: they come back as inert placeholders, numpy never runs.
    assert type(obj["np"]).__name__ == "_reconstruct" and not isinstance(obj["np"], np.ndarray)

    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    bundle = load_motiongpt(path, flan, mean, std, vq_config=SMALL_VQ)
    assert len(bundle.lm.tokenizer) == t5.shared.weight.shape[0]
    assert torch.equal(bundle.vqvae.quantizer.codebook, vq.quantizer.codebook)
    m = bundle.lm.model
    assert torch.equal(m.shared.weight, t5.shared.weight)
    assert torch.equal(m.lm_head.weight, t5.lm_head.weight) and m.lm_head.weight is not m.shared.weight
    assert bundle.info["ignored_keys"] == 2
    # Same logits as the model the weights came from.
    ii, am = bundle.lm.encode_prompts(["a person walks forward"])
    dec = torch.tensor([[bundle.lm.start_id, bundle.lm.tokenizer.motion_token_id(512)]])
    t5.eval()
    with torch.no_grad():
        assert torch.allclose(
            m(input_ids=ii, attention_mask=am, decoder_input_ids=dec).logits,
            t5(input_ids=ii, attention_mask=am, decoder_input_ids=dec).logits,
            atol=1e-5,
        )
    assert bundle.lm.tokenizer.motion_offset == len(bundle.lm.tokenizer) - 515


def test_wrong_shape_names_key_and_shapes(tmp_path, flan):
    path, _, _ = _lightning_checkpoint(tmp_path / "c.tar", flan, vq_config=VQVAEConfig(width=48, code_dim=16, res_depth=3))
    with pytest.raises(CheckpointError) as err:
        load_motiongpt(path, flan, np.zeros(263), np.ones(263), vq_config=SMALL_VQ)
    msg = str(err.value)
    assert "vae.encoder.model.0.weight" in msg and "[48, 263, 3]" in msg and "[32, 263, 3]" in msg


def test_wrong_feature_size_says_so(tmp_path, flan):
    path, _, _ = _lightning_checkpoint(tmp_path / "kit.tar", flan, vq_config=VQVAEConfig(input_dim=251, width=32, code_dim=16, res_depth=3))
    with pytest.raises(CheckpointError, match="251-dim features"):
        load_motiongpt(path, flan, np.zeros(263), np.ones(263), vq_config=SMALL_VQ)


def test_wrong_vocabulary_names_key(tmp_path, flan):
    path, _, _ = _lightning_checkpoint(tmp_path / "v.tar", flan, vocab_delta=3)
    with pytest.raises(CheckpointError) as err:
        load_motiongpt(path, flan, np.zeros(263), np.ones(263), vq_config=SMALL_VQ)
    msg = str(err.value)
    assert "lm.language_model.shared.weight" in msg and "vocabulary" in msg and "flan-t5-base" in msg


def test_malicious_pickle_is_refused(tmp_path, flan):
    marker = "/tmp/atom-pwned-by-checkpoint"
    if os.path.exists(marker):
        os.remove(marker)
    path, _, _ = _lightning_checkpoint(tmp_path / "evil.tar", flan, evil=True)
    with pytest.raises(UnsafePickleError, match="os.system|posix.system"):
        read_state_dict(path)
    assert not os.path.exists(marker)


def test_missing_and_garbage_files(tmp_path, flan):
    with pytest.raises(CheckpointError, match="does not exist"):
        safe_load(tmp_path / "nope.tar")
    (tmp_path / "junk.tar").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        safe_load(tmp_path / "junk.tar")
    path, _, _ = _lightning_checkpoint(tmp_path / "ok.tar", flan)
    with pytest.raises(CheckpointError, match="config.json"):
        load_motiongpt(path, tmp_path, np.zeros(263), np.ones(263), vq_config=SMALL_VQ)


def test_checkpoint_bundle_survives_the_store(tmp_path, flan):
    from atom.mgpt.bundle import load_bundle, save_bundle
    from atom.store import LocalStore

    path, _, _ = _lightning_checkpoint(tmp_path / "m.tar", flan)
    bundle = load_motiongpt(path, flan, np.zeros(263), np.ones(263), vq_config=SMALL_VQ)
    store = LocalStore(tmp_path / "store")
    save_bundle(store, "models/motiongpt-base", bundle)
    again = load_bundle(store, "models/motiongpt-base")
    assert again.lm.tokenizer.kind == "hf" and len(again.lm.tokenizer) == len(bundle.lm.tokenizer)
    assert again.lm.model.lm_head.weight is not again.lm.model.shared.weight
    ii, am = bundle.lm.encode_prompts(["a man jumps"])
    labels = bundle.lm.encode_motion([[3, 1, 4]])
    with torch.no_grad():
        assert torch.allclose(bundle.lm.sequence_logprobs(ii, am, labels), again.lm.sequence_logprobs(ii, am, labels), atol=1e-5)
