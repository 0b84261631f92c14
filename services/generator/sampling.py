"""Batched text-to-motion sampling with one seed per sample.

Every row of a batch draws from its own `torch.Generator`, one uniform number per sampled token,
so a (prompt, seed) pair gives the same motion whatever else shares its batch and whatever the
batch size: this is what makes a generated motion reproducible (MotionGPT's own sampling uses the
global RNG, so its outputs depend on the batch). The decoding loop is ours: the encoder runs once,
the decoder advances one token per step with its KV cache, finished rows leave the batch.

Two decodings (`SamplingConfig.decoding`):
- "constrained" (the tiny base model's): a forced start-of-motion token, then only motion codes or
  the end token can be drawn, at most `max_tokens` codes (49 = 196 frames, HumanML3D's longest).
- "motiongpt": MotionGPT's own text-to-motion inference, for its released checkpoint. The prompt is
  `Generate motion: <caption>` with the caption in double quotes half the time (decided by the
  sample's seed); the whole vocabulary is sampled with transformers' defaults (top-k 50, top-p 1,
  temperature 1) for at most 127 new tokens (`max_length=128` with the decoder's start token)
  until `</s>`; the decoded text is parsed by MotionGPT's rule
  (atom.mgpt.tokenizer.parse_motion_string_motiongpt), which falls back to the single code 0.
  Sampling stops at the first end-of-motion token as well: the parse never reads past it.

Pipeline: caption -> prompt template -> T5 -> motion tokens -> VQ decoder -> normalised features
-> de-normalised features -> joints (atom.motion.features.features_to_joints_torch).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch

from atom.mgpt.bundle import ModelBundle
from atom.mgpt.lm import MotionLM, format_prompt
from atom.mgpt.tokenizer import MOTION_END, MOTION_START, NUM_CODES, motion_ids_between, parse_motion_string_motiongpt
from atom.motion.skeleton import FEATURE_DIM, FRAMES_PER_TOKEN, MAX_FRAMES, NUM_JOINTS

DEFAULT_MAX_TOKENS = MAX_FRAMES // FRAMES_PER_TOKEN  # 49 codes = 196 frames, HumanML3D's longest
DECODINGS = ("constrained", "motiongpt")
# MotionGPT's text-to-motion call: generate(max_length=128, do_sample=True) with transformers'
# default top_k=50; the caption is quoted with probability 0.5 (its `quota_ratio`).
MOTIONGPT_TEMPLATE = "Generate motion: {caption}"
MOTIONGPT_TOP_K = 50
MOTIONGPT_MAX_NEW_TOKENS = 127
MOTIONGPT_QUOTE_PROB = 0.5
_SEED_MASK = (1 << 63) - 1
# Held while a model is temporarily cast to float64: no other sampling call may see it half-cast.
_CAST_LOCK = threading.RLock()


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    # constrained: motion codes per sample, at most; motiongpt: new tokens per sample, at most
    max_tokens: int = DEFAULT_MAX_TOKENS
    min_tokens: int = 1  # the end token is not allowed before this many codes (constrained mode)
    decoding: str = "constrained"  # or "motiongpt" (see the module docstring)
    batch_size: int = 32
    # "auto": float64 for a float32 model on the CPU, else the model's own dtype. In float32 the
    # decoder's matrix products round differently for 1 row and for 32 (different kernels), about
    # 3e-6 in the logits, which flipped 1 draw in ~800 between batch sizes; in float64 the
    # difference is ~1e-15 and no flip was seen. On a CPU float64 costs no time for small models.
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, got {self.decoding!r}")
        if self.precision not in ("auto", "float32", "float64"):
            raise ValueError(f"precision must be 'auto', 'float32' or 'float64', got {self.precision!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1] (1 = off), got {self.top_p}")
        if not 1 <= self.max_tokens <= 1024:
            raise ValueError(f"max_tokens must lie in 1..1024, got {self.max_tokens}")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"min_tokens must lie in 0..max_tokens, got {self.min_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def constrained(self) -> bool:
        return self.decoding == "constrained"

    @classmethod
    def motiongpt(
        cls, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, max_tokens: int = 0, batch_size: int = 32
    ) -> "SamplingConfig":
        """MotionGPT's decoding; a 0 (or 1.0) keeps MotionGPT's value for that setting."""
        return cls(
            temperature=temperature or 1.0,
            top_k=top_k or MOTIONGPT_TOP_K,
            top_p=top_p or 1.0,
            max_tokens=max_tokens or MOTIONGPT_MAX_NEW_TOKENS,
            min_tokens=0,
            decoding="motiongpt",
            batch_size=batch_size,
        )


@dataclass
class SampledMotion:
    prompt: str  # the caption as given
    seed: int
    tokens: np.ndarray  # (N,) int32 VQ codes
    features: np.ndarray  # (4N, 263) float32, de-normalised (empty when invalid)
    joints: np.ndarray  # (4N, 22, 3) float32 (empty when invalid)
    finished: bool  # the model wrote the end-of-motion token (else it ran into max_tokens)
    raw_ids: list[int] = field(default_factory=list)  # generated token ids, for debugging
    reason: str = ""  # why the motion is invalid, "" when valid

    @property
    def valid(self) -> bool:
        return not self.reason

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


def quote_caption(seed: int) -> bool:
    """MotionGPT's coin for wrapping the caption in double quotes, drawn from the sample's seed
    (apart from the token draws, so it does not shift them)."""
    h = hashlib.sha256(f"quote\x1f{int(seed)}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < MOTIONGPT_QUOTE_PROB


def motiongpt_prompt(caption: str, seed: int) -> str:
    caption = caption.strip()
    return format_prompt(f'"{caption}"' if quote_caption(seed) else caption, MOTIONGPT_TEMPLATE)


def derive_seed(base_seed: int, prompt: str, index: int) -> int:
    """The seed of sample `index` of `prompt` in a request with `base_seed` (stable across runs,
    machines and Python versions; fits in an int64)."""
    h = hashlib.sha256(f"{int(base_seed)}\x1f{prompt}\x1f{int(index)}".encode()).digest()
    return int.from_bytes(h[:8], "big") & _SEED_MASK


def _filter_probs(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """One row of logits -> float64 probabilities after temperature, top-k and top-p."""
    logits = logits.double() / cfg.temperature
    if cfg.top_k and cfg.top_k < logits.numel():
        kth = torch.topk(logits, cfg.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    if cfg.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        cum = torch.cumsum(sorted_p, -1)
        keep = (cum - sorted_p) < cfg.top_p  # the smallest prefix whose mass reaches top_p
        keep[0] = True
        mask = torch.zeros_like(probs, dtype=torch.bool)
        mask[order[keep]] = True
        probs = probs * mask
        probs = probs / probs.sum()
    return probs


def _draw(probs: torch.Tensor, gen: torch.Generator) -> int:
    """Inverse-CDF sampling with one uniform from this row's generator."""
    u = torch.rand((), generator=gen, dtype=torch.float64).item()
    cum = torch.cumsum(probs, -1)
    idx = int(torch.searchsorted(cum, torch.tensor([u * float(cum[-1])], dtype=cum.dtype), right=True)[0])
    idx = min(idx, probs.numel() - 1)
    while probs[idx] == 0 and idx > 0:  # u landed on the edge of a zero-probability tail
        idx -= 1
    return idx


def _base_model(model):
    """A PEFT wrapper keeps its LoRA layers inside the base model: drive the base model directly."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@torch.no_grad()
def sample_token_ids(
    lm: MotionLM, texts: Sequence[str], seeds: Sequence[int], cfg: SamplingConfig, model=None, num_codes: int = NUM_CODES
) -> list[tuple[list[int], bool]]:
    """Formatted prompt texts -> per row (generated token ids, wrote an end token?). One batch.
    In constrained mode only codes below `num_codes` (the VQ codebook size) can be drawn."""
    net = _base_model(model if model is not None else lm.model)
    param = next(net.parameters())
    cast = cfg.precision == "float64" or (cfg.precision == "auto" and param.device.type == "cpu" and param.dtype == torch.float32)
    orig = param.dtype
    with _CAST_LOCK if cast else contextlib.nullcontext():
        if cast:
            net.to(torch.float64)
        try:
            return _sample_batch(lm, net, texts, seeds, cfg, num_codes)
        finally:
            if cast:
                net.to(orig)  # exact: every value came from `orig`


def _sample_batch(lm: MotionLM, net, texts, seeds, cfg: SamplingConfig, num_codes: int) -> list[tuple[list[int], bool]]:
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    was_training = net.training
    net.eval()
    try:
        tok = lm.tokenizer
        device = lm.device
        ids, mask = lm.encode_text(list(texts))
        enc = net.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        b = len(texts)
        gens = []
        for s in seeds:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(s) & _SEED_MASK)
            gens.append(g)
        start_tok, end_tok = tok.motion_token_id(MOTION_START), tok.motion_token_id(MOTION_END)
        code_lo = tok.motion_token_id(0)
        vocab = net.get_output_embeddings().weight.shape[0]
        allowed = torch.zeros(vocab, dtype=torch.bool)
        allowed[code_lo : code_lo + min(num_codes, NUM_CODES)] = True
        allowed[end_tok] = True
        out: list[list[int]] = [[] for _ in range(b)]
        ended = [False] * b
        active = list(range(b))
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        cur = torch.full((b, 1), lm.start_id, dtype=torch.long, device=device)
        # constrained: start, codes, end; motiongpt: generate()'s max_length less the start token
        max_steps = cfg.max_tokens + 2 if cfg.constrained else cfg.max_tokens
        for step in range(max_steps):
            if cfg.constrained and step == 0:
                # The start-of-motion token is forced: no draw, so the RNG streams stay aligned.
                nxt = [start_tok] * len(active)
                _ = net(encoder_outputs=(enc,), attention_mask=mask, decoder_input_ids=cur, past_key_values=cache, use_cache=True)
            else:
                logits = (
                    net(encoder_outputs=(enc,), attention_mask=mask, decoder_input_ids=cur, past_key_values=cache, use_cache=True)
                    .logits[:, -1]
                    .double()
                    .cpu()
                )
                nxt = []
                for r, row in enumerate(active):
                    lg = logits[r]
                    if cfg.constrained:
                        lg = lg.masked_fill(~allowed, float("-inf"))
                        ncodes = len(out[row]) - 1
                        if ncodes < cfg.min_tokens:
                            lg[end_tok] = float("-inf")
                    nxt.append(_draw(_filter_probs(lg, cfg), gens[row]))
            keep = []
            for r, row in enumerate(active):
                t = nxt[r]
                out[row].append(t)
                if t == end_tok or (not cfg.constrained and t == tok.eos_id):
                    ended[row] = t == end_tok
                elif len(out[row]) < max_steps and not (cfg.constrained and len(out[row]) - 1 >= cfg.max_tokens):
                    keep.append(r)  # else out of room: it stops without an end token
            if not keep:
                break
            if len(keep) < len(active):
                idx = torch.tensor(keep, dtype=torch.long, device=device)
                cache.reorder_cache(idx)  # type: ignore[arg-type]  # transformers says LongTensor: idx is a long Tensor
                enc, mask = enc.index_select(0, idx), mask.index_select(0, idx)
                active = [active[r] for r in keep]
                nxt = [nxt[r] for r in keep]
            cur = torch.tensor(nxt, dtype=torch.long, device=device)[:, None]
        return [(out[i], ended[i]) for i in range(b)]
    finally:
        net.train(was_training)


def codes_from_ids(lm: MotionLM, ids: list[int], cfg: SamplingConfig) -> list[int]:
    """Generated token ids -> VQ codes. Constrained: the codes between the start and end tokens.
    MotionGPT: its string parse of the decoded text (special tokens skipped, as its
    batch_decode does)."""
    if cfg.constrained:
        return lm.tokenizer.decode_motion(ids)
    return parse_motion_string_motiongpt(lm.tokenizer.decode(ids))


@torch.no_grad()
def decode_tokens(bundle: ModelBundle, token_lists: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """VQ code lists -> [(de-normalised features (4N, 263), joints (4N, 22, 3))]; an empty list gives
    empty arrays. Each motion is decoded on its own: batched convolutions may round differently
    with the batch size, and a motion's bytes must not depend on its neighbours."""
    from atom.motion.features import features_to_joints_torch

    dev = next(bundle.vqvae.parameters()).device
    out = []
    for t in token_lists:
        if len(t) == 0:
            out.append((np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, NUM_JOINTS, 3), np.float32)))
            continue
        codes = torch.tensor([list(t)], dtype=torch.long, device=dev)
        feats = bundle.denormalize(bundle.vqvae.decode(codes)[0].float())
        joints = features_to_joints_torch(feats.double()).float()
        out.append((feats.cpu().numpy().astype(np.float32), joints.cpu().numpy().astype(np.float32)))
    return out


def sample_motions(
    bundle: ModelBundle,
    prompts: Sequence[str],
    seeds: Sequence[int],
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    *,
    batch_size: int | None = None,
    decoding: str | None = None,
    min_tokens: int | None = None,
    template: str | None = None,
    model=None,
    config: SamplingConfig | None = None,
) -> list[SampledMotion]:
    """Captions + one seed each -> motions, in input order.

    The settings: `config`, else the decoding's defaults (SamplingConfig() for "constrained",
    SamplingConfig.motiongpt() for "motiongpt"); then every keyword argument given (not None)
    overrides that field of it: explicit arguments win over the config object, as in
    services.evaluator.report.evaluate. `max_tokens` 0 is the same as not giving it (the
    config's, or the decoding's default: 49 codes; 127 new tokens for MotionGPT's).

    `model` replaces the bundle's T5 (e.g. a PEFT model with an adapter active); `template`
    overrides the bundle's prompt template (constrained decoding; MotionGPT's decoding uses its own).
    Same (prompt, seed, settings) -> same motion, whatever the batch."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of captions, not one string")
    if len(prompts) != len(seeds):
        raise ValueError(f"need one seed per prompt: {len(prompts)} prompts, {len(seeds)} seeds")
    given: dict[str, Any] = {
        k: v
        for k, v in dict(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            max_tokens=max_tokens or None,
            batch_size=batch_size,
            decoding=decoding,
            min_tokens=min_tokens,
        ).items()
        if v is not None
    }
    if config is None:
        config = SamplingConfig.motiongpt() if given.get("decoding") == "motiongpt" else SamplingConfig()
    cfg = replace(config, **given)
    lm = bundle.lm
    if cfg.constrained:
        tmpl = template or lm.template
        texts = [format_prompt(p, tmpl) for p in prompts]
    else:
        texts = [motiongpt_prompt(p, s) for p, s in zip(prompts, seeds)]
    raw: list[tuple[list[int], bool]] = []
    for lo in range(0, len(texts), cfg.batch_size):
        raw += sample_token_ids(
            lm, texts[lo : lo + cfg.batch_size], seeds[lo : lo + cfg.batch_size], cfg, model, bundle.vqvae.config.num_codes
        )
    top = bundle.vqvae.config.num_codes - 1  # unconstrained text may name codes the codebook lacks
    limit = cfg.max_tokens if cfg.constrained else None
    codes = [[min(max(c, 0), top) for c in codes_from_ids(lm, ids, cfg)[:limit]] for ids, _ in raw]
    decoded = decode_tokens(bundle, codes)
    out = []
    for p, s, (ids, ended), c, (feats, joints) in zip(prompts, seeds, raw, codes, decoded):
        reason = "" if c else "the model produced no motion tokens (empty motion)"
        out.append(
            SampledMotion(
                prompt=p,
                seed=int(s),
                tokens=np.asarray(c, np.int32),
                features=feats,
                joints=joints,
                finished=ended,
                raw_ids=list(ids),
                reason=reason,
            )
        )
    return out


__all__ = [
    "DECODINGS",
    "DEFAULT_MAX_TOKENS",
    "SampledMotion",
    "SamplingConfig",
    "codes_from_ids",
    "decode_tokens",
    "derive_seed",
    "motion_ids_between",
    "motiongpt_prompt",
    "sample_motions",
    "sample_token_ids",
]
