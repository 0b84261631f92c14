"""The embedded text/motion evaluator's model: a small contrastive pair of encoders, standing in
for Guo et al.'s evaluator where that one cannot be used (no licensed data, no download).

Shared library code: the trainer service trains it (services/trainer/evaluator_training.py) and the
evaluator service loads it to embed texts and motions, so it lives here, beside the MotionGPT model
(atom/mgpt), rather than in either service.

- Text: captions -> HumanML3D-style lemmas (atom.motion.postag, so free text and pre-tagged
  'word/POS' captions give the same tokens) -> word embedding -> bidirectional GRU.
- Motion: un-normalised (T, 263) features -> normalisation -> average-pool x2 -> strided conv
  (x2) -> bidirectional GRU packed by length, so the embedding depends only on the motion's own
  frames. Both encoders are recurrent, so event order is seen ("walk then squat" differs from
  "squat then walk"), and so are repetitions.
- Embeddings are L2-normalised and multiplied by `embedding_scale`, so Euclidean distance (the
  metrics' distance) ranks like the cosine the training loss uses; the scale only sets the units
  that FID / MM-Dist / Diversity are reported in.

Artifacts: <prefix>/model.safetensors (weights + normalisation) and <prefix>/evaluator.json
(config, vocabulary, training summary).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from atom.motion import postag

FEATURE_DIM = 263
MAX_FRAMES = 196
FORMAT_VERSION = 1
PAD, UNK = "<pad>", "<unk>"
MIN_FRAMES = 8  # pooling x2 then two stride-2 convs: 8 frames give one GRU step


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
    """Lemmatised words of a caption: a pre-tagged 'word/POS word/POS' caption (HumanML3D's texts)
    loses its tags; free text (composed prompts) is tagged first by atom.motion.postag, which
    follows HumanML3D's conventions, so both give the same words."""
    return [t.rpartition("/")[0] or t for t in postag.caption_tokens(text)]


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, cfg: EmbeddedConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.word_dim, padding_idx=0)
        self.gru = nn.GRU(cfg.word_dim, cfg.text_hidden, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(
            nn.Linear(2 * cfg.text_hidden, cfg.text_hidden),
            nn.LayerNorm(cfg.text_hidden),
            nn.GELU(),
            nn.Linear(cfg.text_hidden, cfg.embed_dim),
        )

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
        self.out = nn.Sequential(
            nn.Linear(2 * cfg.motion_hidden, cfg.motion_hidden),
            nn.LayerNorm(cfg.motion_hidden),
            nn.GELU(),
            nn.Linear(cfg.motion_hidden, cfg.embed_dim),
        )

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


class EncoderPair(nn.Module):
    # buffers (register_buffer below), declared for the type checker
    mean: torch.Tensor
    std: torch.Tensor

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
    model: EncoderPair
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
        out = [
            self._scale(self.model.text(*self._text_batch(texts[i : i + self.batch_size]))).cpu().numpy()
            for i in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.config.embed_dim), np.float32)

    @torch.no_grad()
    def embed_motions(self, features: Sequence[np.ndarray]) -> np.ndarray:
        out = [
            self._scale(self.model.motion(*self._motion_batch(features[i : i + self.batch_size]))).cpu().numpy()
            for i in range(0, len(features), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.config.embed_dim), np.float32)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "embedding_dim": self.config.embed_dim,
            "embedding_scale": self.config.embedding_scale,
            "vocab_size": len(self.vocab),
            "motion_encoder": "avgpool2 + 2 stride-2 convs + BiGRU packed by length",
            **({"gt": self.summary["gt"]} if "gt" in self.summary else {}),
        }

    # -- persistence -------------------------------------------------------------------------
    def to_artifacts(self) -> tuple[bytes, bytes]:
        weights = st_save({k: v.contiguous() for k, v in self.model.state_dict().items()})
        meta = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "config": asdict(self.config),
            "vocab": self.vocab,
            # Wall time left out: the file's sha256 names the evaluator in reports, and the same
            # seed and data must give the same name on every run.
            "summary": {k: v for k, v in self.summary.items() if k != "train_seconds"},
        }
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
        model = EncoderPair(len(meta["vocab"]), cfg)
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
        return {"weights": store.put_bytes(f"{p}/model.safetensors", weights).key, "meta": store.put_bytes(f"{p}/evaluator.json", meta).key}

    @classmethod
    def load(cls, store, prefix: str) -> "EmbeddedEvaluator":
        p = prefix.rstrip("/")
        return cls.from_artifacts(store.get_bytes(f"{p}/model.safetensors"), store.get_bytes(f"{p}/evaluator.json"))
