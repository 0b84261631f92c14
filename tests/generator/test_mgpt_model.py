import numpy as np
import pytest
import torch

from atom.mgpt.bundle import BundleError, bundle_exists, load_bundle, save_bundle
from atom.mgpt.lm import DEFAULT_TEMPLATE, LMError, MotionLM, format_prompt
from atom.mgpt.tokenizer import (
    MOTION_END,
    MOTION_START,
    TokenizerError,
    WordTokenizer,
    motion_ids_between,
    motion_to_text,
    parse_motion_string_motiongpt,
    split_words,
    text_to_motion,
)
from atom.mgpt.vqvae import VQVAE, VQVAEConfig
from atom.store import LocalStore

from gen_tiny_models import CAPTIONS, TINY_VQ, make_tiny_bundle


def _expected_full_size_keys():
    """MotionGPT's VQ-VAE layout (mGPT/archs/mgpt_vq.py), written out by hand (weights; every conv also has a bias of its out size)."""
    w = {
        "encoder.model.0": (512, 263, 3),
        "encoder.model.4": (512, 512, 3),
        "decoder.model.0": (512, 512, 3),
        "decoder.model.4": (512, 512, 3),
        "decoder.model.6": (263, 512, 3),
    }
    for stage in (2, 3):
        w[f"encoder.model.{stage}.0"] = (512, 512, 4)
        w[f"decoder.model.{stage}.2"] = (512, 512, 3)
        for blk in (0, 1, 2):
            for side, res in (("encoder", f"encoder.model.{stage}.1"), ("decoder", f"decoder.model.{stage}.0")):
                w[f"{res}.model.{blk}.conv1"] = (512, 512, 3)
                w[f"{res}.model.{blk}.conv2"] = (512, 512, 1)
    keys = {}
    for name, shape in w.items():
        keys[name + ".weight"] = shape
        keys[name + ".bias"] = (shape[0],)
    keys["quantizer.codebook"] = (512, 512)
    return keys


def test_full_size_vqvae_matches_released_state_dict():
    vq = VQVAE()
    got = {k: tuple(v.shape) for k, v in vq.state_dict().items()}
    assert got == _expected_full_size_keys()
    assert abs(vq.num_parameters() - 19.4e6) < 0.1e6
    dil = [b.conv1.dilation[0] for b in vq.encoder.model[2][1].model]
    assert dil == [9, 3, 1]
    assert [b.conv1.dilation[0] for b in vq.decoder.model[3][0].model] == [9, 3, 1]


def test_vqvae_encode_decode_shapes_and_errors():
    vq = VQVAE(TINY_VQ).eval()
    x = torch.randn(2, 24, 263)
    codes = vq.encode(x)
    assert codes.shape == (2, 6) and codes.dtype == torch.long
    assert vq.decode(codes).shape == (2, 24, 263)
    with pytest.raises(ValueError, match="263"):
        vq.encode(torch.randn(1, 8, 251))
    with pytest.raises(ValueError, match="multiple of 4"):
        vq.encode(torch.randn(1, 10, 263))
    with pytest.raises(ValueError, match="0..511"):
        vq.decode(torch.tensor([[512]]))


def test_ema_quantizer_learns_and_resets_dead_codes():
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(width=16, code_dim=8, num_codes=16, res_depth=1))
    vq.train()
    opt = torch.optim.Adam(vq.parameters(), lr=3e-3)
    x = torch.randn(8, 16, 263)
    first = None
    for step in range(60):
        out = vq(x)
        loss = torch.nn.functional.mse_loss(out.recon, x) + 0.02 * out.commit_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first
    assert out.perplexity.item() > 4  # codes stay in use, the codebook did not collapse
    # A loaded codebook counts as trained: the next training step must not re-seed it.
    fresh = VQVAE(vq.config)
    fresh.load_state_dict(vq.state_dict())
    assert bool(fresh.quantizer.initialized)


def test_motion_text_format():
    assert motion_to_text([3, 0]) == "<motion_id_512><motion_id_3><motion_id_0><motion_id_513>"
    assert text_to_motion("x <motion_id_512><motion_id_7><motion_id_600><motion_id_513><motion_id_9>") == [7, 511]
    assert motion_ids_between([5, MOTION_START, 1, 2, MOTION_END, 3, MOTION_END]) == [1, 2]
    assert motion_ids_between([MOTION_START, MOTION_END]) == []
    assert motion_ids_between([MOTION_START, 4, 514]) == [4, 511]  # no end: all after start, clamped
    with pytest.raises(ValueError):
        motion_to_text([512])


def _m(*ks):
    return "".join(f"<motion_id_{k}>" for k in ks)


@pytest.mark.parametrize(
    "text, codes",
    [
        # The codes between the first start (512) and the first end (513) token.
        (_m(512, 7, 8, 9, 513), [7, 8, 9]),
        ("words " + _m(512, 7, 8, 513) + " more" + _m(512, 1, 513), [7, 8]),
        # [0] when the start or the end is missing, when the end comes first, or when nothing lies between.
        (_m(7, 8, 513), [0]),
        (_m(512, 7, 8), [0]),
        (_m(513, 512, 7, 513), [0]),
        (_m(512, 513), [0]),
        ("no motion at all", [0]),
        # A word inside drops the code before it (the piece "id_7> walk<motion_id_8" reads as 8) ...
        (_m(512, 6, 7) + " walk" + _m(8, 9, 513), [6, 8, 9]),
        # ... right after the start it drops the first code, right before the end the last one.
        (_m(512) + " a" + _m(7, 8, 9, 513), [8, 9]),
        (_m(512, 7, 8, 9) + " a" + _m(513), [7, 8]),
        # The mask token 514 and out-of-codebook indices pass through (callers clamp).
        (_m(512, 514, 3, 513), [514, 3]),
    ],
)
def test_motiongpt_parse_rule(text, codes):
    """MotionGPT's motion_string_to_token on decoded text, case by case (checked against its code)."""
    assert parse_motion_string_motiongpt(text) == codes


def test_word_tokenizer_roundtrip(tmp_path):
    tok = WordTokenizer.build(CAPTIONS)
    assert split_words("A man's jump, then.") == ["a", "man's", "jump", ",", "then", "."]
    ids = tok.encode("A person walks FORWARD!")
    assert ids[-1] == tok.eos_id and tok.unk_id in ids
    assert (tok.pad_id, tok.eos_id, tok.unk_id) == (0, 1, 2)
    assert len(tok) == 3 + len(tok.words) + 515
    m = tok.encode(motion_to_text([5, 6]))
    assert [tok.motion_index(i) for i in m[:-1]] == [512, 5, 6, 513]
    assert tok.decode_motion(m) == [5, 6]
    tok.save(tmp_path)
    again = WordTokenizer.load(tmp_path)
    assert again.itos == tok.itos
    (tmp_path / "word_tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="not valid JSON"):
        WordTokenizer.load(tmp_path)
    assert WordTokenizer.build(CAPTIONS).itos == tok.itos  # deterministic ids


def test_prompt_template():
    assert format_prompt("a man jumps") == "Generate motion: a man jumps"
    assert DEFAULT_TEMPLATE == "Generate motion: {caption}"
    with pytest.raises(ValueError):
        format_prompt("x", "no placeholder")


def test_sequence_logprobs_exact_and_batch_independent(tiny_bundle):
    lm = tiny_bundle.lm
    caps = ["a person walks forward", "a man jumps in place, then squats and waves", "someone kicks"]
    motions = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10], [11]]
    ii, am = lm.encode_prompts(caps)
    labels = lm.encode_motion(motions)
    assert labels[0].tolist()[:6] == [
        lm.tokenizer.motion_token_id(512),
        lm.tokenizer.motion_token_id(1),
        lm.tokenizer.motion_token_id(2),
        lm.tokenizer.motion_token_id(3),
        lm.tokenizer.motion_token_id(513),
        lm.tokenizer.eos_id,
    ]
    assert (labels[0, 6:] == -100).all()
    with torch.no_grad():
        batch = lm.sequence_logprobs(ii, am, labels)
        for i in range(3):
            ii1, am1 = lm.encode_prompts([caps[i]])
            single = lm.sequence_logprobs(ii1, am1, lm.encode_motion([motions[i]]))
            assert torch.allclose(batch[i], single[0], atol=1e-5, rtol=0)
        # The sum equals a manual teacher-forced computation.
        ii1, am1 = lm.encode_prompts([caps[0]])
        lab = lm.encode_motion([motions[0]])[0].tolist()
        dec = [lm.start_id] + lab[:-1]
        logits = lm.model(input_ids=ii1, attention_mask=am1, decoder_input_ids=torch.tensor([dec])).logits[0]
        manual = sum(torch.log_softmax(logits[t].double(), -1)[lab[t]].item() for t in range(len(lab)))
        assert abs(manual - batch[0].item()) < 1e-4
    assert batch.shape == (3,) and (batch < 0).all()


def test_dropout_off_makes_train_mode_deterministic(tiny_bundle):
    lm = make_tiny_bundle().lm
    lm.set_dropout(0.0)
    lm.model.train()
    ii, am = lm.encode_prompts(["a person walks forward"])
    lab = lm.encode_motion([[1, 2]])
    a = lm.sequence_logprobs(ii, am, lab)
    b = lm.sequence_logprobs(ii, am, lab)
    assert torch.equal(a, b)


def test_lm_save_load(tmp_path, tiny_bundle):
    lm = tiny_bundle.lm
    lm.save(tmp_path / "lm")
    again = MotionLM.load(tmp_path / "lm")
    ii, am = lm.encode_prompts(["a man jumps"])
    lab = lm.encode_motion([[9, 8]])
    with torch.no_grad():
        assert torch.allclose(lm.sequence_logprobs(ii, am, lab), again.sequence_logprobs(ii, am, lab))
    with pytest.raises(LMError, match="not a MotionLM directory"):
        MotionLM.load(tmp_path)


def test_bundle_roundtrip_and_corruption(tmp_path, tiny_bundle):
    store = LocalStore(tmp_path / "store")
    assert not bundle_exists(store, "models/tiny")
    with pytest.raises(BundleError, match="no model bundle"):
        load_bundle(store, "models/tiny")
    save_bundle(store, "models/tiny", tiny_bundle)
    assert bundle_exists(store, "models/tiny")
    b = load_bundle(store, "models/tiny")
    assert np.array_equal(b.mean, tiny_bundle.mean) and np.array_equal(b.std, tiny_bundle.std)
    codes = torch.tensor([[1, 2, 3]])
    assert torch.allclose(b.vqvae.decode(codes), tiny_bundle.vqvae.decode(codes))
    assert b.info["name"] == "tiny-test" and b.vqvae.config == TINY_VQ
    x = np.ones((4, 263), np.float32)
    assert np.allclose(b.denormalize(b.normalize(x)), x, atol=1e-5)

    store.put_bytes("models/tiny/vqvae.safetensors", b"garbage")
    with pytest.raises(BundleError, match="vqvae.safetensors is corrupt"):
        load_bundle(store, "models/tiny")
    save_bundle(store, "models/tiny", tiny_bundle)
    lm_key = next(k for k in store.list("models/tiny/lm/") if k.endswith("config.json"))
    store.delete(lm_key)
    with pytest.raises(BundleError, match="incomplete"):
        load_bundle(store, "models/tiny")
