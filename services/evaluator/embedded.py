"""The embedded text/motion evaluator: a small contrastive pair of encoders trained on a
HumanML3D-layout corpus (the procedural world by default), standing in for Guo et al.'s
evaluator where that one cannot be used (no licensed data, no download).

- Text: captions -> HumanML3D-style lemmas (atom.motion.postag, so free text and pre-tagged
  'word/POS' captions give the same tokens) -> word embedding -> bidirectional GRU.
- Motion: un-normalised (T, 263) features -> normalisation -> average-pool x2 -> strided conv
  (x2) -> bidirectional GRU packed by length, so the embedding depends only on the motion's own
  frames. Both encoders are recurrent, so event order is seen ("walk then squat" differs from
  "squat then walk"), and so are repetitions.
- Loss: symmetric InfoNCE with a learned temperature; in-batch pairs whose captions are
  identical are not used as negatives.
- Embeddings are L2-normalised and multiplied by `embedding_scale`, so Euclidean distance (the
  metrics' distance) ranks like the cosine the loss trains; the scale only sets the units that
  FID / MM-Dist / Diversity are reported in.

Artifacts: <prefix>/model.safetensors (weights + normalisation) and <prefix>/evaluator.json
(config, vocabulary, training summary).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from atom.settings import EvalSettings
from services.evaluator.glove import caption_tokens

FEATURE_DIM = 263
MAX_FRAMES = 196
FORMAT_VERSION = 1
PAD, UNK = "<pad>", "<unk>"
MIN_FRAMES = 8  # pooling x2 then two stride-2 convs: 8 frames give one GRU step

Progress = Callable[[str, int, int], None]


class EmbeddedEvaluatorError(ValueError):
    """Bad training data, bad configuration, or a stored evaluator that does not load."""


@dataclass(frozen=True)
class EmbeddedConfig:
    seed: int = 0
    steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    word_dim: int = 64
    text_hidden: int = 128
    motion_hidden: int = 128
    conv_channels: int = 96
    embed_dim: int = 64
    embedding_scale: float = 4.0
    init_temperature: float = 0.07
    min_word_count: int = 1
    train_split: str = "train"
    num_threads: int = 1

    def __post_init__(self) -> None:
        for f in ("steps", "batch_size", "word_dim", "text_hidden", "motion_hidden", "conv_channels", "embed_dim"):
            if getattr(self, f) < 1:
                raise EmbeddedEvaluatorError(f"config.{f} must be >= 1, got {getattr(self, f)}")
        if self.batch_size < 2:
            raise EmbeddedEvaluatorError("config.batch_size must be >= 2 for a contrastive loss")

    @classmethod
    def from_dict(cls, d: dict) -> "EmbeddedConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise EmbeddedEvaluatorError(f"unknown embedded-evaluator config keys {sorted(unknown)}")
        return cls(**d)


def text_words(text: str) -> list[str]:
    """Lemmatised words of a caption (free text or 'word/POS' tokens)."""
    return [t.rpartition("/")[0] or t for t in caption_tokens(text)]


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, cfg: EmbeddedConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.word_dim, padding_idx=0)
        self.gru = nn.GRU(cfg.word_dim, cfg.text_hidden, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Linear(2 * cfg.text_hidden, cfg.text_hidden), nn.LayerNorm(cfg.text_hidden),
                                 nn.GELU(), nn.Linear(cfg.text_hidden, cfg.embed_dim))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.out(torch.cat([h[0], h[1]], dim=-1))


class MotionEncoder(nn.Module):
    def __init__(self, cfg: EmbeddedConfig):
        super().__init__()
        c = cfg.conv_channels
        self.conv1 = nn.Conv1d(FEATURE_DIM, c, 4, 2, 1)
        self.conv2 = nn.Conv1d(c, c, 4, 2, 1)
        self.gru = nn.GRU(c, cfg.motion_hidden, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Linear(2 * cfg.motion_hidden, cfg.motion_hidden),
                                 nn.LayerNorm(cfg.motion_hidden), nn.GELU(),
                                 nn.Linear(cfg.motion_hidden, cfg.embed_dim))

    @staticmethod
    def _mask(h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        # Zero what lies past each motion, so a conv edge sees the same zeros as its own padding
        # and an embedding does not depend on what else is in the batch.
        keep = torch.arange(h.shape[-1], device=h.device)[None, :] < valid.to(h.device)[:, None]
        return h * keep[:, None, :].to(h.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, 263) normalised, zero-padded; lengths in frames."""
        h = self._mask(F.avg_pool1d(x.permute(0, 2, 1), 2, 2), lengths // 2)
        h = self._mask(F.leaky_relu(self.conv1(h), 0.2), lengths // 4)
        h = F.leaky_relu(self.conv2(h), 0.2).permute(0, 2, 1)
        packed = pack_padded_sequence(h, (lengths // 8).cpu(), batch_first=True, enforce_sorted=False)
        _, hn = self.gru(packed)
        return self.out(torch.cat([hn[0], hn[1]], dim=-1))


class _Model(nn.Module):
    def __init__(self, vocab_size: int, cfg: EmbeddedConfig):
        super().__init__()
        self.text = TextEncoder(vocab_size, cfg)
        self.motion = MotionEncoder(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))
        self.register_buffer("mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("std", torch.ones(FEATURE_DIM))


@dataclass
class EmbeddedEvaluator:
    """Trained encoders + vocabulary; meets the TextMotionEvaluator interface."""

    config: EmbeddedConfig
    vocab: list[str]
    model: _Model
    summary: dict = field(default_factory=dict)
    name: str = "embedded"
    batch_size: int = 128
    device: str = "cpu"

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.vocab)}
        self.model.eval()

    def to(self, device) -> "EmbeddedEvaluator":
        self.model.to(device)
        self.device = str(device)
        return self

    # -- encoding ----------------------------------------------------------------------------
    def _text_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = []
        for t in texts:
            ids = [self._index.get(w, 1) for w in text_words(t)] or [1]
            seqs.append(torch.tensor(ids, dtype=torch.long))
        return pad_sequence(seqs, batch_first=True).to(self.device), torch.tensor([len(s) for s in seqs])

    def _motion_batch(self, features: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = []
        for i, f in enumerate(features):
            f = np.asarray(f, np.float32)
            if f.ndim != 2 or f.shape[1] != FEATURE_DIM:
                raise EmbeddedEvaluatorError(f"motion {i}: features must be (T, {FEATURE_DIM}), got {f.shape}")
            if f.shape[0] < MIN_FRAMES:
                raise EmbeddedEvaluatorError(f"motion {i}: needs at least {MIN_FRAMES} frames, got {f.shape[0]}")
            if not np.all(np.isfinite(f)):
                raise EmbeddedEvaluatorError(f"motion {i}: features contain NaN or infinite values")
            seqs.append(torch.from_numpy(f[:MAX_FRAMES]))
        lengths = torch.tensor([len(s) for s in seqs])
        x = (pad_sequence(seqs, batch_first=True).to(self.device) - self.model.mean) / self.model.std
        return x, lengths

    def _scale(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=-1) * self.config.embedding_scale

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = [self._scale(self.model.text(*self._text_batch(texts[i : i + self.batch_size]))).cpu().numpy()
               for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.config.embed_dim), np.float32)

    @torch.no_grad()
    def embed_motions(self, features: Sequence[np.ndarray]) -> np.ndarray:
        out = [self._scale(self.model.motion(*self._motion_batch(features[i : i + self.batch_size]))).cpu().numpy()
               for i in range(0, len(features), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.config.embed_dim), np.float32)

    def describe(self) -> dict:
        return {"name": self.name, "embedding_dim": self.config.embed_dim,
                "embedding_scale": self.config.embedding_scale, "vocab_size": len(self.vocab),
                "motion_encoder": "avgpool2 + 2 stride-2 convs + BiGRU packed by length",
                **({"gt": self.summary["gt"]} if "gt" in self.summary else {})}

    # -- persistence -------------------------------------------------------------------------
    def to_artifacts(self) -> tuple[bytes, bytes]:
        weights = st_save({k: v.contiguous() for k, v in self.model.state_dict().items()})
        meta = {"format_version": FORMAT_VERSION, "name": self.name, "config": asdict(self.config),
                "vocab": self.vocab, "summary": self.summary}
        return weights, json.dumps(meta, indent=1, sort_keys=True).encode()

    @classmethod
    def from_artifacts(cls, weights: bytes, meta_json: bytes) -> "EmbeddedEvaluator":
        try:
            meta = json.loads(meta_json)
        except ValueError as exc:
            raise EmbeddedEvaluatorError(f"evaluator.json is not JSON ({exc})") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise EmbeddedEvaluatorError(
                f"evaluator.json has format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}; "
                "retrain the embedded evaluator"
            )
        cfg = EmbeddedConfig.from_dict(meta["config"])
        model = _Model(len(meta["vocab"]), cfg)
        try:
            state = st_load(weights)
        except Exception as exc:
            raise EmbeddedEvaluatorError(f"model.safetensors is not readable ({exc})") from None
        expected = model.state_dict()
        for k, v in expected.items():
            if k not in state:
                raise EmbeddedEvaluatorError(f"model.safetensors lacks tensor {k!r}")
            if tuple(state[k].shape) != tuple(v.shape):
                raise EmbeddedEvaluatorError(f"model.safetensors: {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}")
        model.load_state_dict(state, strict=True)
        return cls(cfg, list(meta["vocab"]), model, dict(meta.get("summary", {})), name=meta.get("name", "embedded"))

    def save(self, store, prefix: str) -> dict[str, str]:
        weights, meta = self.to_artifacts()
        p = prefix.rstrip("/")
        return {"weights": store.put_bytes(f"{p}/model.safetensors", weights).key,
                "meta": store.put_bytes(f"{p}/evaluator.json", meta).key}

    @classmethod
    def load(cls, store, prefix: str) -> "EmbeddedEvaluator":
        p = prefix.rstrip("/")
        return cls.from_artifacts(store.get_bytes(f"{p}/model.safetensors"), store.get_bytes(f"{p}/evaluator.json"))


# --- training -------------------------------------------------------------------------------


@dataclass
class TrainingClip:
    features: np.ndarray  # (T, 263) un-normalised
    captions: tuple[str, ...]


def build_vocab_from_words(word_lists: Sequence[Sequence[str]], min_count: int = 1) -> list[str]:
    counts: dict[str, int] = {}
    for ws in word_lists:
        for w in ws:
            counts[w] = counts.get(w, 0) + 1
    return [PAD, UNK] + sorted(w for w, n in counts.items() if n >= min_count)


def _symmetric_info_nce(t: torch.Tensor, m: torch.Tensor, logit_scale: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    logits = logit_scale.exp().clamp(max=100.0) * F.normalize(t, dim=-1) @ F.normalize(m, dim=-1).T
    # Duplicate captions in a batch are not negatives of each other.
    eye = torch.eye(len(t), dtype=torch.bool)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(t))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def train_on_clips(
    clips: Sequence[TrainingClip],
    config: EmbeddedConfig = EmbeddedConfig(),
    progress: Progress | None = None,
    mean_std: tuple[np.ndarray, np.ndarray] | None = None,
) -> EmbeddedEvaluator:
    """Train the embedded evaluator on in-memory clips (features + captions)."""
    from atom.motion.features import compute_mean_std

    clips = [c for c in clips if c.captions]
    if len(clips) < config.batch_size:
        raise EmbeddedEvaluatorError(
            f"need at least batch_size={config.batch_size} captioned clips to train, got {len(clips)}"
        )
    short = [i for i, c in enumerate(clips) if np.asarray(c.features).shape[0] < MIN_FRAMES]
    if short:
        raise EmbeddedEvaluatorError(f"clips {short[:5]} have fewer than {MIN_FRAMES} frames")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(config.num_threads)
    try:
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        # Tag each distinct caption once (the tagger is pure Python).
        words = {c: text_words(c) for clip in clips for c in clip.captions}
        vocab = build_vocab_from_words([words[c] for clip in clips for c in clip.captions], config.min_word_count)
        model = _Model(len(vocab), config)
        if mean_std is None:
            # Pooled per feature group (HumanML3D style) without the root/contact bias: every
            # group enters the encoder at unit scale.
            ms = compute_mean_std((c.features for c in clips), feature_bias=1.0)
            mean_std = (ms.mean, ms.std)
        model.mean.copy_(torch.as_tensor(np.asarray(mean_std[0], np.float32)))
        model.std.copy_(torch.as_tensor(np.asarray(mean_std[1], np.float32)))
        ev = EmbeddedEvaluator(config, vocab, model)
        model.train()
        # Pre-tokenise and pre-normalise once.
        cap_ids = [[torch.tensor([ev._index.get(w, 1) for w in words[c]] or [1]) for c in clip.captions]
                   for clip in clips]
        cap_keys = [[" ".join(words[c]) for c in clip.captions] for clip in clips]
        feats = [((torch.from_numpy(np.asarray(c.features, np.float32)[:MAX_FRAMES]) - model.mean) / model.std)
                 for c in clips]
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        warmup = max(1, config.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
        start = time.monotonic()
        losses = []
        order = rng.permutation(len(clips))
        pos = 0
        for step in range(config.steps):
            if pos + config.batch_size > len(order):
                order, pos = rng.permutation(len(clips)), 0
            idx = order[pos : pos + config.batch_size]
            pos += config.batch_size
            which = [int(rng.integers(len(cap_ids[i]))) for i in idx]
            ids = [cap_ids[i][w] for i, w in zip(idx, which)]
            keys = [cap_keys[i][w] for i, w in zip(idx, which)]
            same = torch.tensor([[a == b for b in keys] for a in keys])
            t = model.text(pad_sequence(ids, batch_first=True), torch.tensor([len(x) for x in ids]))
            m = model.motion(pad_sequence([feats[i] for i in idx], batch_first=True),
                             torch.tensor([len(feats[i]) for i in idx]))
            loss = _symmetric_info_nce(t, m, model.logit_scale, same)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress and (step % 50 == 0 or step == config.steps - 1):
                progress(f"embedded evaluator: step {step + 1}, loss {np.mean(losses[-50:]):.3f}", step + 1, config.steps)
        model.eval()
        ev.summary = {
            "train_clips": len(clips),
            "steps": config.steps,
            "final_loss": float(np.mean(losses[-50:])),
            "train_seconds": round(time.monotonic() - start, 1),
            "temperature": float(1.0 / model.logit_scale.detach().exp().clamp(max=100.0)),
        }
        return ev
    finally:
        torch.set_num_threads(prev_threads)


def load_training_clips(dataset, split: str, min_len: int = MIN_FRAMES, max_len: int = MAX_FRAMES + 4) -> list[TrainingClip]:
    """Captioned clips of a split of a HumanML3D-layout directory (path or HumanML3D reader)."""
    from atom.motion.humanml3d import HumanML3D

    ds = dataset if isinstance(dataset, HumanML3D) else HumanML3D(dataset)
    return [TrainingClip(c.features, tuple(cap.text for cap in c.captions))
            for c in ds.iter_clips(split, min_len=min_len, max_len=max_len) if c.captions]


def contrast_accuracy(evaluator, real, seed: int = 0) -> dict:
    """Order and count awareness on procedural-world clips (labels required).

    For each clip, its events are captioned twice with the same phrasing draws: once as they
    happened and once altered - two adjacent different events swapped (order), or one
    countable event's count changed (count). A hit when the motion is nearer the true caption;
    chance is 0.5.
    """
    from atom.motion.events import COUNTABLE_EVENTS, EventLabel
    from atom.motion.world.captions import caption

    texts: list[str] = []
    motions: list[np.ndarray] = []
    kinds: list[str] = []
    for n, r in enumerate(real):
        labels = r.tags.get("labels")
        if not labels or not isinstance(labels.get("events"), list):
            continue
        events = [EventLabel(e["event"], int(e.get("count", 1))) for e in labels["events"]]
        rng = np.random.default_rng([seed, n])
        swaps = [i for i in range(len(events) - 1) if events[i].event != events[i + 1].event]
        if swaps:
            i = swaps[int(rng.integers(len(swaps)))]
            altered = events[:i] + [events[i + 1], events[i]] + events[i + 2:]
            kinds.append("order")
            texts += [caption(events, np.random.default_rng([seed, n, 1])),
                      caption(altered, np.random.default_rng([seed, n, 1]))]
            motions.append(r.features)
        countable = [i for i, e in enumerate(events) if e.event in COUNTABLE_EVENTS]
        if countable:
            i = countable[int(rng.integers(len(countable)))]
            other = [c for c in range(1, 6) if c != events[i].count]
            altered = list(events)
            altered[i] = EventLabel(events[i].event, other[int(rng.integers(len(other)))])
            kinds.append("count")
            texts += [caption(events, np.random.default_rng([seed, n, 2])),
                      caption(altered, np.random.default_rng([seed, n, 2]))]
            motions.append(r.features)
    out = {}
    if kinds:
        t = evaluator.embed_texts(texts).reshape(len(kinds), 2, -1)
        m = evaluator.embed_motions(motions)
        d = np.linalg.norm(t - m[:, None, :], axis=-1)
        hit = d[:, 0] < d[:, 1]
        for kind in ("order", "count"):
            sel = np.array([k == kind for k in kinds])
            out[kind] = {"pairs": int(sel.sum()), "accuracy": float(hit[sel].mean()) if sel.any() else None}
    return out


def train_embedded_evaluator(
    dataset_root,
    config: EmbeddedConfig = EmbeddedConfig(),
    progress: Progress | None = None,
    *,
    gt_split: str | None = "test",
    reference_split: str | None = "val",
    gt_replications: int = EvalSettings().replications,
) -> EmbeddedEvaluator:
    """Train on `config.train_split` of a HumanML3D-layout directory (the procedural world by
    default), then measure the ground-truth figures on `gt_split` (R@k, MM-Dist, Diversity,
    FID against `reference_split`) and order-awareness; they go into `evaluator.summary['gt']`."""
    from atom.motion.humanml3d import HumanML3D
    from services.evaluator.report import ground_truth_metrics
    from services.evaluator.subsets import build_subsets

    ds = HumanML3D(dataset_root)
    clips = load_training_clips(ds, config.train_split)
    ev = train_on_clips(clips, config, progress)
    if gt_split:
        test = build_subsets(ds, gt_split)["general"]
        ref = build_subsets(ds, reference_split)["general"] if reference_split else None
        gt = ground_truth_metrics(ev, test, ref, replications=gt_replications, seed=config.seed)
        ev.summary["gt"] = {
            "split": gt_split,
            "reference_split": reference_split,
            "clips": len(test),
            "replications": gt_replications,
            **{k: v.to_dict() for k, v in gt.items()},
            **contrast_accuracy(ev, test, config.seed),
        }
        if progress:
            progress(f"embedded evaluator: GT R@1 {gt['r1'].mean:.3f}, R@3 {gt['r3'].mean:.3f}, FID {gt['fid'].mean:.4f}",
                     config.steps, config.steps)
    return ev
