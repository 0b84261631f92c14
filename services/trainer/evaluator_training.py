"""Training the embedded text/motion evaluator (its model: atom/embedded_evaluator.py) on a
HumanML3D-layout corpus, the procedural world by default. The trainer service runs it as an
`evaluator` job (services/trainer/jobs.py); the evaluator service loads the result.

Loss: symmetric InfoNCE with a learned temperature; in-batch pairs whose captions are identical
are not used as negatives. Seeded: the same corpus, config and thread count give the same weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from atom.embedded_evaluator import (
    MAX_FRAMES,
    MIN_FRAMES,
    PAD,
    UNK,
    EmbeddedConfig,
    EmbeddedEvaluator,
    EmbeddedEvaluatorError,
    EncoderPair,
    text_words,
)

Progress = Callable[[str, int, int], None]  # (message, step, steps)


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
        raise EmbeddedEvaluatorError(f"need at least batch_size={config.batch_size} captioned clips to train, got {len(clips)}")
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
        model = EncoderPair(len(vocab), config)
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
        cap_ids = [[torch.tensor([ev._index.get(w, 1) for w in words[c]] or [1]) for c in clip.captions] for clip in clips]
        cap_keys = [[" ".join(words[c]) for c in clip.captions] for clip in clips]
        feats = [((torch.from_numpy(np.asarray(c.features, np.float32)[:MAX_FRAMES]) - model.mean) / model.std) for c in clips]
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        warmup = max(1, config.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps))
        )
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
            m = model.motion(pad_sequence([feats[i] for i in idx], batch_first=True), torch.tensor([len(feats[i]) for i in idx]))
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
    return [
        TrainingClip(c.features, tuple(cap.text for cap in c.captions))
        for c in ds.iter_clips(split, min_len=min_len, max_len=max_len)
        if c.captions
    ]


def train_embedded_evaluator(
    dataset_root, config: EmbeddedConfig = EmbeddedConfig(), progress: Progress | None = None
) -> EmbeddedEvaluator:
    """Train on `config.train_split` of a HumanML3D-layout directory. How well the result separates
    real data (its ground-truth figures) is the evaluator service's to measure
    (services/evaluator/embedded.py), when it first evaluates with it."""
    from atom.motion.humanml3d import HumanML3D

    return train_on_clips(load_training_clips(HumanML3D(dataset_root), config.train_split), config, progress)
