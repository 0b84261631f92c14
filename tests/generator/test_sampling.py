import numpy as np
import pytest
import torch

from atom.motion.features import features_to_joints
from services.generator.sampling import SamplingConfig, _draw, _filter_probs, derive_seed, sample_motions

CAPS = [
    "a person walks forward",
    "a man jumps in place, then squats and waves",
    "someone kicks",
    "a person turns left",
    "a person waves two times",
]


def test_same_prompt_and_seed_same_motion_whatever_the_batch(tiny_bundle):
    caps = CAPS * 2
    seeds = list(range(100, 110))
    ref = sample_motions(tiny_bundle, caps, seeds, max_tokens=12, batch_size=32)
    for bs in (1, 3, 7):
        other = sample_motions(tiny_bundle, caps, seeds, max_tokens=12, batch_size=bs)
        assert [m.tokens.tolist() for m in other] == [m.tokens.tolist() for m in ref]
    # A different batch composition: the sample reappears alone and among other prompts.
    alone = sample_motions(tiny_bundle, [caps[6]], [seeds[6]], max_tokens=12)[0]
    mixed = sample_motions(tiny_bundle, ["someone claps", caps[6], "x y z"], [5, seeds[6], 9], max_tokens=12)[1]
    assert alone.tokens.tolist() == ref[6].tokens.tolist() == mixed.tokens.tolist()
    assert np.array_equal(alone.joints, ref[6].joints)
    # Different seeds give different motions.
    assert len({tuple(m.tokens.tolist()) for m in ref}) == len(ref)


def test_outputs_are_consistent_motions(tiny_bundle):
    before = {k: v.clone() for k, v in tiny_bundle.lm.model.state_dict().items()}
    ms = sample_motions(tiny_bundle, CAPS[:2], [1, 2], max_tokens=6)
    # Sampling decodes in float64 on the CPU; the model comes back exactly as it was.
    after = tiny_bundle.lm.model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    f32 = sample_motions(tiny_bundle, CAPS[:2], [1, 2], max_tokens=6, config=SamplingConfig(max_tokens=6, precision="float32"))
    assert all(len(m.tokens) >= 1 for m in f32)
    for m in ms:
        n = len(m.tokens)
        assert 1 <= n <= 6 and m.tokens.dtype == np.int32 and m.tokens.max() < 512
        assert m.features.shape == (4 * n, 263) and m.joints.shape == (4 * n, 22, 3)
        assert m.valid and m.raw_ids[0] == tiny_bundle.lm.tokenizer.motion_token_id(512)
        # Joints are the features' joints (de-normalised features, float32 vs float64 paths).
        assert np.allclose(m.joints, features_to_joints(m.features), atol=1e-3)
        # The features are the VQ decoding of the tokens, de-normalised.
        dec = tiny_bundle.vqvae.decode(torch.tensor(m.tokens[None], dtype=torch.long))[0].numpy()
        assert np.allclose(m.features, dec * tiny_bundle.std + tiny_bundle.mean, atol=1e-5)


def test_end_token_stops_a_row(tiny_bundle):
    lm = tiny_bundle.lm
    end = lm.tokenizer.motion_token_id(513)

    def love_ending(module, inputs, logits):
        logits = logits.clone()
        logits[..., end] += 100.0
        return logits

    hook = lm.model.lm_head.register_forward_hook(love_ending)
    try:
        ms = sample_motions(tiny_bundle, CAPS[:3], [1, 2, 3], max_tokens=20, min_tokens=2)
        # The end token is forbidden before min_tokens codes, then it wins.
        assert all(m.finished for m in ms) and {len(m.tokens) for m in ms} == {2}
        ms0 = sample_motions(tiny_bundle, CAPS[:1], [1], max_tokens=20, min_tokens=0)
        assert ms0[0].tokens.size == 0 and not ms0[0].valid and "no motion tokens" in ms0[0].reason
        assert ms0[0].joints.shape == (0, 22, 3) and ms0[0].features.shape == (0, 263)
    finally:
        hook.remove()


def test_motiongpt_decoding(tiny_bundle):
    """MotionGPT's inference: unforced first token, whole vocabulary with top-k 50, at most 127 new
    tokens, its parse with the [0] fallback; still one motion per (prompt, seed)."""
    cfg = SamplingConfig.motiongpt()
    assert (cfg.top_k, cfg.top_p, cfg.temperature, cfg.max_tokens, cfg.decoding) == (50, 1.0, 1.0, 127, "motiongpt")
    seeds = list(range(20))
    ms = sample_motions(tiny_bundle, CAPS * 4, seeds, decoding="motiongpt")
    tok = tiny_bundle.lm.tokenizer
    for m in ms:
        assert 1 <= len(m.raw_ids) <= 127
        ended = m.raw_ids[-1] in (tok.eos_id, tok.motion_token_id(513)) or len(m.raw_ids) == 127
        assert ended
        assert len(m.tokens) >= 1 and m.tokens.max() < 512  # the fallback [0] at worst
        assert m.joints.shape == (4 * len(m.tokens), 22, 3)
    # An untrained-for-this decoding often misses the start/end tokens: the fallback is the code 0.
    assert any(m.tokens.tolist() == [0] for m in ms)
    again = sample_motions(tiny_bundle, CAPS * 4, seeds, decoding="motiongpt", batch_size=3)
    assert [m.raw_ids for m in again] == [m.raw_ids for m in ms]


def test_motiongpt_prompt_quotes_half_the_captions():
    from services.generator.sampling import motiongpt_prompt

    prompts = [motiongpt_prompt(" a person jumps ", s) for s in range(2000)]
    quoted = sum(p == 'Generate motion: "a person jumps"' for p in prompts)
    plain = sum(p == "Generate motion: a person jumps" for p in prompts)
    assert quoted + plain == 2000 and 900 < quoted < 1100
    assert motiongpt_prompt("a person jumps", 7) == motiongpt_prompt("a person jumps", 7)


def test_filters():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0])
    p = _filter_probs(logits, SamplingConfig(top_k=2))
    assert (p[2:] == 0).all() and abs(p.sum().item() - 1) < 1e-12
    p = _filter_probs(logits, SamplingConfig(top_p=0.5))
    assert p[0] == 1.0  # the top token alone holds over half the mass
    p = _filter_probs(logits, SamplingConfig(temperature=100.0))
    assert p.max() - p.min() < 0.05
    g = torch.Generator().manual_seed(0)
    draws = [_draw(torch.tensor([0.0, 0.25, 0.75], dtype=torch.float64), g) for _ in range(2000)]
    assert 0 not in draws and 0.70 < draws.count(2) / 2000 < 0.80
    with pytest.raises(ValueError):
        SamplingConfig(temperature=0)
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0)


def test_bad_input(tiny_bundle):
    with pytest.raises(ValueError, match="one seed per prompt"):
        sample_motions(tiny_bundle, CAPS[:2], [1])
    with pytest.raises(TypeError):
        sample_motions(tiny_bundle, "a person walks", [1])
    with pytest.raises(ValueError, match="empty caption"):
        sample_motions(tiny_bundle, ["  "], [1])


def test_derive_seed_is_stable():
    assert derive_seed(7, "a man jumps", 3) == derive_seed(7, "a man jumps", 3)
    assert derive_seed(7, "a man jumps", 3) != derive_seed(7, "a man jumps", 4)
    assert derive_seed(7, "a man jumps", 3) != derive_seed(8, "a man jumps", 3)
    assert 0 <= derive_seed(-1, "x", 0) < 2**63
    assert derive_seed(0, "x", 0) == 5246107913457513103  # fixed forever: stored motions depend on it


def test_explicit_arguments_override_the_config(tiny_bundle):
    """One rule (as in evaluate): `config` gives the settings, a keyword argument given
    explicitly overrides that field; an argument not given (or max_tokens 0) leaves the config's."""
    caps, seeds = CAPS * 2, list(range(20, 30))

    def tokens(ms):
        return [m.tokens.tolist() for m in ms]

    cfg = SamplingConfig(max_tokens=20, temperature=2.0, batch_size=4)
    via_config = sample_motions(tiny_bundle, caps, seeds, config=cfg)
    assert tokens(via_config) == tokens(sample_motions(tiny_bundle, caps, seeds, temperature=2.0, max_tokens=20, batch_size=4))
    assert tokens(via_config) != tokens(sample_motions(tiny_bundle, caps, seeds, max_tokens=20))  # temperature 1
    assert tokens(sample_motions(tiny_bundle, caps, seeds, max_tokens=0, config=cfg)) == tokens(via_config)
    capped = sample_motions(tiny_bundle, caps, seeds, max_tokens=3, config=cfg)
    assert all(len(m.tokens) <= 3 for m in capped)
    assert tokens(capped) == tokens(
        sample_motions(tiny_bundle, caps, seeds, config=SamplingConfig(max_tokens=3, temperature=2.0, batch_size=4))
    )
