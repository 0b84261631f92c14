"""Pretrain a small MotionGPT-architecture model on a HumanML3D-layout corpus (the procedural world
by default), on CPU in minutes, and store it as a model bundle.

Two stages, as in MotionGPT: (1) the VQ-VAE motion tokeniser learns to reconstruct normalised
features from random windows; (2) every training clip is tokenised, and a small T5 learns
caption -> motion tokens (teacher forcing) with a word-level tokenizer built from the captions.
Everything is seeded: the same corpus, config and thread count give the same bundle.

The trainer service runs it as a `pretrain` job (services/trainer/model_jobs.py) on first use.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from atom.fields import check_fields
from atom.mgpt.bundle import ModelBundle, save_bundle
from atom.mgpt.lm import DEFAULT_TEMPLATE, MotionLM, T5Size, format_prompt
from atom.mgpt.tokenizer import WordTokenizer
from atom.mgpt.vqvae import VQVAE, VQVAEConfig

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, message)


class PretrainError(ValueError):
    """The corpus or config cannot be used for pretraining; the message says what to do."""


@dataclass(frozen=True)
class PretrainConfig:
    seed: int = 0
    vq: VQVAEConfig = field(default_factory=lambda: VQVAEConfig(width=96, code_dim=64, num_codes=512, res_depth=2))
    vq_steps: int = 1000
    vq_batch_size: int = 32
    vq_window: int = 64  # frames per training window (multiple of 4)
    vq_lr: float = 1e-3
    commit_weight: float = 0.02
    recon_loss: str = "l2"  # "l2" or "l1" (smooth L1, T2M-GPT's): L2 keeps rare extreme poses
    vq_reset_fraction: float = 0.125  # dead-code threshold as a fraction of the mean code usage
    pos_weight: float = 0.5  # extra weight on the joint-position dims 4:67
    vel_weight: float = 0.0  # extra weight on the joint-velocity dims 193:259 (fast arm motions)
    # Extra weight on the root dims 0:4 (4 of 263): without it side-steps vanished in the round trip;
    # at 0.3 and above raised arms, waves and claps vanished instead.
    root_weight: float = 0.1
    t5: T5Size = field(
        default_factory=lambda: T5Size(d_model=128, d_ff=256, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=32, dropout_rate=0.1)
    )
    lm_steps: int = 1200
    lm_batch_size: int = 32
    lm_lr: float = 3e-3
    warmup_steps: int = 150
    token_offsets: tuple[int, ...] = (0, 2)  # frame shifts: each clip is tokenised once per shift
    # One thread by default: with two, a machine shared with other busy processes slowed training
    # about tenfold here (OpenMP threads spin-waiting for each other); idle machines may pass 2.
    threads: int = 1
    template: str = DEFAULT_TEMPLATE
    split: str = "train"
    eval_split: str = "val"
    time_budget_s: float | None = None  # stop each stage early past its share (not deterministic then)

    def __post_init__(self) -> None:
        if self.vq_window % self.vq.frames_per_token or self.vq_window < self.vq.frames_per_token:
            raise PretrainError(f"vq_window must be a positive multiple of {self.vq.frames_per_token}, got {self.vq_window}")
        for name in ("vq_steps", "vq_batch_size", "lm_steps", "lm_batch_size", "threads"):
            if getattr(self, name) < 1:
                raise PretrainError(f"{name} must be >= 1, got {getattr(self, name)}")
        format_prompt("x", self.template)
        if self.recon_loss not in ("l1", "l2"):
            raise PretrainError(f"recon_loss must be 'l1' or 'l2', got {self.recon_loss!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["token_offsets"] = list(self.token_offsets)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        d = dict(d)
        if "vq" in d and isinstance(d["vq"], dict):
            d["vq"] = VQVAEConfig.from_dict(d["vq"])
        if "t5" in d and isinstance(d["t5"], dict):
            d["t5"] = T5Size(**d["t5"])
        if "token_offsets" in d:
            d["token_offsets"] = tuple(d["token_offsets"])
        check_fields(cls, d, "pretrain config", PretrainError)
        return cls(**d)

    @classmethod
    def tiny(cls, seed: int = 0) -> "PretrainConfig":
        """Seconds, not minutes: for tests and smoke runs (the model learns little)."""
        return cls(
            seed=seed,
            vq=VQVAEConfig(width=32, code_dim=16, num_codes=512, res_depth=1),
            vq_steps=30,
            vq_batch_size=8,
            vq_window=32,
            t5=T5Size(d_model=32, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=16, dropout_rate=0.0),
            lm_steps=30,
            lm_batch_size=8,
            warmup_steps=5,
            token_offsets=(0,),
        )


@dataclass
class PretrainResult:
    prefix: str
    num_train_clips: int
    num_captions: int
    vocab_size: int
    vq_recon_loss: float  # smooth-L1 on held-out normalised features (comparable across recon_loss)
    vq_perplexity: float
    codes_used: int
    lm_train_loss: float
    lm_eval_loss: float
    seconds_vq: float
    seconds_lm: float
    seconds_total: float
    vq_steps_done: int = 0
    lm_steps_done: int = 0
    stopped_early: bool = False  # the time budget cut a stage short
    # Joint error of the VQ-VAE's encode -> decode round trip on the held-out clips (mm), global
    # and root-relative (so root drift does not dominate): what the tokeniser loses, in metres.
    vq_mpjpe_mm: float | None = None
    vq_mpjpe_rootrel_mm: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Corpus:
    ids: list[str]
    features: list[np.ndarray]  # normalised, cropped to a multiple of 4
    captions: list[list[str]]


def _noop(stage: str, done: int, total: int, message: str) -> None:
    pass


def load_corpus(root, split: str, mean: np.ndarray, std: np.ndarray, multiple: int = 4) -> Corpus:
    from atom.motion.humanml3d import HumanML3D

    data = HumanML3D(root)
    ids, feats, caps = [], [], []
    for cid in data.split_ids(split):
        clip = data.load_clip(cid)
        n = (clip.length // multiple) * multiple
        texts = [c.text for c in clip.captions if c.text.strip()]
        if n < multiple or not texts:
            continue
        ids.append(cid)
        feats.append(((clip.features[:n] - mean) / std).astype(np.float32))
        caps.append(texts)
    if not ids:
        raise PretrainError(f"split {split!r} of {root} has no usable clips (at least 4 frames and one caption)")
    return Corpus(ids, feats, caps)


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _vq_loss(vq: VQVAE, x: torch.Tensor, cfg: PretrainConfig):
    out = vq(x)
    fn = F.mse_loss if cfg.recon_loss == "l2" else F.smooth_l1_loss
    rec = fn(out.recon, x)
    pos = fn(out.recon[..., 4:67], x[..., 4:67])
    root = fn(out.recon[..., :4], x[..., :4])
    vel = fn(out.recon[..., 193:259], x[..., 193:259])
    loss = rec + cfg.pos_weight * pos + cfg.root_weight * root + cfg.vel_weight * vel + cfg.commit_weight * out.commit_loss
    return loss, rec, out


def train_vqvae(corpus: Corpus, cfg: PretrainConfig, progress: Progress = _noop, deadline: float | None = None) -> tuple[VQVAE, int]:
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    window = cfg.vq_window
    eligible = [i for i, f in enumerate(corpus.features) if len(f) >= window]
    if not eligible:
        window = max(cfg.vq.frames_per_token, min(len(f) for f in corpus.features) // cfg.vq.frames_per_token * cfg.vq.frames_per_token)
        eligible = list(range(len(corpus.features)))
    vq = VQVAE(cfg.vq)
    vq.quantizer.reset_fraction = cfg.vq_reset_fraction
    vq.train()
    opt = torch.optim.AdamW(vq.parameters(), lr=cfg.vq_lr, betas=(0.9, 0.99), weight_decay=0.0)
    every = max(1, cfg.vq_steps // 20)
    for step in range(cfg.vq_steps):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg.vq_steps, cfg.warmup_steps, cfg.vq_lr)
        picks = rng.choice(eligible, size=cfg.vq_batch_size)
        batch = []
        for i in picks:
            f = corpus.features[i]
            start = int(rng.integers(0, len(f) - window + 1))
            batch.append(f[start : start + window])
        x = torch.from_numpy(np.stack(batch))
        loss, rec, out = _vq_loss(vq, x, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == cfg.vq_steps - 1:
            progress("vqvae", step + 1, cfg.vq_steps, f"recon {rec.item():.4f} perplexity {out.perplexity.item():.1f}")
        if deadline is not None and time.monotonic() > deadline:
            progress("vqvae", step + 1, cfg.vq_steps, "time budget reached, stopping early")
            break
    return vq.eval(), step + 1


@torch.no_grad()
def eval_vqvae(vq: VQVAE, corpus: Corpus, cfg: PretrainConfig) -> tuple[float, float, int]:
    """(mean smooth-L1 reconstruction of whole clips, codebook perplexity, codes used)."""
    vq.eval()
    losses, counts = [], torch.zeros(vq.config.num_codes)
    for f in corpus.features:
        x = torch.from_numpy(f)[None]
        out = vq(x)
        losses.append(F.smooth_l1_loss(out.recon, x).item())
        counts += torch.bincount(out.codes.reshape(-1), minlength=vq.config.num_codes).float()
    p = counts / counts.sum()
    perplexity = float(torch.exp(-(p * torch.log(p + 1e-10)).sum()))
    return float(np.mean(losses)), perplexity, int((counts > 0).sum())


@torch.no_grad()
def vq_reconstruction(vq: VQVAE, corpus: Corpus, mean: np.ndarray, std: np.ndarray, max_clips: int = 100) -> tuple[float, float]:
    """(MPJPE mm, root-relative MPJPE mm) of the encode -> decode round trip, mean over up to
    `max_clips` clips of `corpus` (normalised features, cropped to whole tokens)."""
    from atom.motion.features import features_to_joints

    vq.eval()
    errs = []
    for f in corpus.features[:max_clips]:
        rec = vq.decode(vq.encode(torch.from_numpy(f)[None]))[0].numpy()
        j0, j1 = features_to_joints(f * std + mean), features_to_joints(rec * std + mean)
        errs.append((np.linalg.norm(j0 - j1, axis=-1).mean(), np.linalg.norm((j0 - j0[:, :1]) - (j1 - j1[:, :1]), axis=-1).mean()))
    g, r = np.mean(errs, axis=0) * 1000.0
    return float(g), float(r)


@torch.no_grad()
def tokenize_corpus(vq: VQVAE, corpus: Corpus, offsets=(0,)) -> list[tuple[int, list[int]]]:
    """(clip index, codes) for every clip and frame offset."""
    k = vq.config.frames_per_token
    out = []
    for i, f in enumerate(corpus.features):
        for off in offsets:
            n = (len(f) - off) // k * k
            if n < k:
                continue
            codes = vq.encode(torch.from_numpy(f[off : off + n])[None])[0].tolist()
            out.append((i, codes))
    return out


def _lm_batches(pairs, captions, batch_size: int, rng: np.random.Generator):
    """Endless shuffled epochs of (caption, codes) with a random caption of each clip."""
    while True:
        order = rng.permutation(len(pairs))
        for lo in range(0, len(order) - batch_size + 1, batch_size):
            chunk = [pairs[j] for j in order[lo : lo + batch_size]]
            caps = [captions[i][int(rng.integers(len(captions[i])))] for i, _ in chunk]
            yield caps, [codes for _, codes in chunk]


def _eval_lm(lm: MotionLM, pairs, captions, batch_size: int = 64) -> float:
    total, count = 0.0, 0
    lm.model.eval()
    with torch.no_grad():
        for lo in range(0, len(pairs), batch_size):
            chunk = pairs[lo : lo + batch_size]
            ii, am = lm.encode_prompts([captions[i][0] for i, _ in chunk])
            labels = lm.encode_motion([c for _, c in chunk])
            n = int((labels != -100).sum())
            total += lm.loss(ii, am, labels).item() * n
            count += n
    return total / max(count, 1)


def train_lm(
    tokenizer: WordTokenizer, pairs, captions, cfg: PretrainConfig, progress: Progress = _noop, deadline: float | None = None
) -> tuple[MotionLM, float, int]:
    lm = MotionLM.create(tokenizer, cfg.t5, seed=cfg.seed, template=cfg.template)
    lm.model.train()
    rng = np.random.default_rng(cfg.seed + 1)
    torch.manual_seed(cfg.seed + 1)
    opt = torch.optim.AdamW(lm.model.parameters(), lr=cfg.lm_lr, betas=(0.9, 0.99), weight_decay=0.01)
    batch_size = min(cfg.lm_batch_size, len(pairs))
    batches = _lm_batches(pairs, captions, batch_size, rng)
    every = max(1, cfg.lm_steps // 20)
    ema = None
    for step in range(cfg.lm_steps):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg.lm_steps, cfg.warmup_steps, cfg.lm_lr)
        caps, codes = next(batches)
        ii, am = lm.encode_prompts(caps)
        loss = lm.loss(ii, am, lm.encode_motion(codes))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % every == 0 or step == cfg.lm_steps - 1:
            progress("lm", step + 1, cfg.lm_steps, f"loss {ema:.3f}")
        if deadline is not None and time.monotonic() > deadline:
            progress("lm", step + 1, cfg.lm_steps, "time budget reached, stopping early")
            break
    lm.set_dropout(0.0)
    lm.model.eval()
    return lm, float(ema if ema is not None else float("nan")), step + 1


def pretrain(
    dataset_root,
    store,
    out_prefix: str,
    config: PretrainConfig | None = None,
    progress: Progress | None = None,
    dataset_name: str | None = None,
) -> PretrainResult:
    """Train the VQ-VAE and the T5 on `dataset_root` (HumanML3D layout) and save the bundle under
    `out_prefix` (e.g. "models/base-world") in `store`. `dataset_name` (default: the path) is what
    the bundle records as its data; pass a stable name when dataset_root is a local cache, whose
    path would otherwise make two identical models look different."""
    from atom.motion.humanml3d import HumanML3D

    cfg = config or PretrainConfig()
    progress = progress or _noop
    t0 = time.monotonic()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        ms = HumanML3D(dataset_root).mean_std()
        mean, std = np.asarray(ms.mean, np.float32), np.asarray(ms.std, np.float32)
        train = load_corpus(dataset_root, cfg.split, mean, std, cfg.vq.frames_per_token)
        try:
            held = load_corpus(dataset_root, cfg.eval_split, mean, std, cfg.vq.frames_per_token)
        except ValueError:  # no such split (or it is empty): hold out the last tenth of train
            held = Corpus(
                train.ids[-max(1, len(train.ids) // 10) :],
                train.features[-max(1, len(train.ids) // 10) :],
                train.captions[-max(1, len(train.ids) // 10) :],
            )
        progress("data", len(train.ids), len(train.ids), f"{len(train.ids)} training clips, {len(held.ids)} held out")
        budget = cfg.time_budget_s
        vq_deadline = None if budget is None else t0 + 0.4 * budget
        vq, vq_steps = train_vqvae(train, cfg, progress, vq_deadline)
        t_vq = time.monotonic() - t0
        vq_loss, perplexity, used = eval_vqvae(vq, held, cfg)
        mpjpe, mpjpe_rel = vq_reconstruction(vq, held, mean, std)
        progress("vqvae", cfg.vq_steps, cfg.vq_steps, f"held-out recon {vq_loss:.4f} (MPJPE {mpjpe:.1f} mm), {used} codes used")

        pairs = tokenize_corpus(vq, train, cfg.token_offsets)
        held_pairs = tokenize_corpus(vq, held, (0,))
        all_caps = [format_prompt(c, cfg.template) for caps in train.captions for c in caps]
        tokenizer = WordTokenizer.build(all_caps)
        lm_deadline = None if budget is None else t0 + budget
        lm, train_loss, lm_steps = train_lm(tokenizer, pairs, train.captions, cfg, progress, lm_deadline)
        eval_loss = _eval_lm(lm, held_pairs, held.captions)
        t_lm = time.monotonic() - t0 - t_vq
        progress("lm", cfg.lm_steps, cfg.lm_steps, f"held-out loss {eval_loss:.3f}")

        info = {
            "name": out_prefix.rstrip("/").rsplit("/", 1)[-1],
            "source": "pretrain",
            "dataset": dataset_name or str(dataset_root),
            "config": cfg.to_dict(),
            "metrics": {
                "vq_recon_loss": vq_loss,
                "vq_perplexity": perplexity,
                "codes_used": used,
                "lm_train_loss": train_loss,
                "lm_eval_loss": eval_loss,
                # Fewer than configured when the time budget cut training short: the
                # model then depends on the machine's speed, not only on the seed.
                "vq_steps_done": vq_steps,
                "lm_steps_done": lm_steps,
            },
        }
        bundle = ModelBundle(vqvae=vq, lm=lm, mean=mean, std=std, info=info)
        save_bundle(store, out_prefix, bundle)
        progress("save", 1, 1, f"saved to {out_prefix}")
        return PretrainResult(
            prefix=out_prefix.rstrip("/"),
            num_train_clips=len(train.ids),
            num_captions=len(all_caps),
            vocab_size=len(tokenizer),
            vq_recon_loss=vq_loss,
            vq_perplexity=perplexity,
            codes_used=used,
            lm_train_loss=train_loss,
            lm_eval_loss=eval_loss,
            seconds_vq=t_vq,
            seconds_lm=t_lm,
            seconds_total=time.monotonic() - t0,
            vq_steps_done=vq_steps,
            lm_steps_done=lm_steps,
            stopped_early=vq_steps < cfg.vq_steps or lm_steps < cfg.lm_steps,
            vq_mpjpe_mm=mpjpe,
            vq_mpjpe_rootrel_mm=mpjpe_rel,
        )
    finally:
        torch.set_num_threads(old_threads)
