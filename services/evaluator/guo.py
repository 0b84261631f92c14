"""The Guo et al. HumanML3D evaluator (text_mot_match/model/finest.tar) (github.com/EricGuo5513/text-to-motion, networks/modules.py).

Module and parameter names match the released checkpoint, so its state dicts load as they are.
The checkpoint is read with torch.load(weights_only=True): it holds only tensors, dicts and
numbers, and anything else is refused rather than unpickled.

Packing choice (`pack_motions`, default True): Guo's original evaluator packs the motion GRU by
length // 4, so each motion's embedding depends only on its own frames; MotionGPT's copy feeds the
padded sequence unpacked, which makes an embedding depend on how much padding follows it. We
default to Guo's packed form (the protocol behind the reference numbers, and batch-independent);
pass pack_motions=False for MotionGPT-style numbers. Reports state which was used.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from services.evaluator.glove import WordVectorizer, caption_tokens

FEATURE_DIM = 263
MOVEMENT_INPUT = 259  # features without the 4 foot-contact dims
UNIT_LENGTH = 4
MAX_MOTION_LENGTH = 196
CHECKPOINT_KEYS = ("text_encoder", "movement_encoder", "motion_encoder")


class GuoCheckpointError(ValueError):
    """finest.tar (or its companion files) is missing, unsafe, or does not fit the architecture."""


class MovementConvEncoder(nn.Module):
    def __init__(self, input_size: int = MOVEMENT_INPUT, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 259) -> (B, T // 4, 512)
        return self.out_net(self.main(x.permute(0, 2, 1)).permute(0, 2, 1))


class MotionEncoderBiGRUCo(nn.Module):
    def __init__(self, input_size: int = 512, hidden_size: int = 1024, output_size: int = 512):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(hidden_size * 2, hidden_size),
            nn.LayerNorm(hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, output_size),
        )
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        emb = self.input_emb(x)
        hidden = self.hidden.repeat(1, x.shape[0], 1)
        if lengths is not None:
            emb = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(emb, hidden)
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class TextEncoderBiGRUCo(nn.Module):
    def __init__(self, word_size: int = 300, pos_size: int = 15, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(hidden_size * 2, hidden_size),
            nn.LayerNorm(hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, output_size),
        )
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size)))

    def forward(self, words: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        emb = self.input_emb(words + self.pos_emb(pos))
        hidden = self.hidden.repeat(1, words.shape[0], 1)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, hidden)
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


def build_modules() -> dict[str, nn.Module]:
    return {
        "text_encoder": TextEncoderBiGRUCo(),
        "movement_encoder": MovementConvEncoder(),
        "motion_encoder": MotionEncoderBiGRUCo(),
    }


def read_checkpoint(source: str | Path | bytes) -> dict:
    """torch.load(weights_only=True) of finest.tar, with errors that say what went wrong."""
    what = "finest.tar" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes):
        p = Path(source)
        if not p.is_file():
            raise GuoCheckpointError(f"evaluator checkpoint not found: {p} (text_mot_match/model/finest.tar)")
        source = p.read_bytes()
    try:
        ckpt = torch.load(io.BytesIO(source), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise GuoCheckpointError(
            f"{what}: holds objects other than tensors/dicts, refused by the safe loader ({exc}); re-save it as a plain dict of state dicts"
        ) from None
    except Exception as exc:
        raise GuoCheckpointError(f"{what}: not a readable torch checkpoint ({exc})") from None
    if not isinstance(ckpt, dict):
        raise GuoCheckpointError(f"{what}: expected a dict with keys {CHECKPOINT_KEYS}, got {type(ckpt).__name__}")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise GuoCheckpointError(f"{what}: missing keys {missing} (found {sorted(map(str, ckpt))})")
    return ckpt


def load_state(module: nn.Module, state: dict, name: str) -> None:
    """load_state_dict with an error that names the offending key and both shapes."""
    if not isinstance(state, dict):
        raise GuoCheckpointError(f"{name}: expected a state dict, got {type(state).__name__}")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise GuoCheckpointError(f"{name}: missing keys {missing}, unexpected keys {unexpected}")
    for k, v in expected.items():
        got = state[k]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(v.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise GuoCheckpointError(f"{name}.{k}: expected shape {tuple(v.shape)}, found {shape}")
    module.load_state_dict(state)


def _stats(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, np.float32).reshape(-1)
    if x.shape != (FEATURE_DIM,) or not np.all(np.isfinite(x)):
        raise GuoCheckpointError(f"{what} must be {FEATURE_DIM} finite values, got shape {x.shape}")
    return x


@dataclass
class GuoEvaluator:
    """Embeds captions and HumanML3D feature sequences with the Guo et al. networks."""

    text_encoder: TextEncoderBiGRUCo
    movement_encoder: MovementConvEncoder
    motion_encoder: MotionEncoderBiGRUCo
    vectorizer: WordVectorizer
    mean: np.ndarray  # (263,) evaluator's normalisation (the T2M meta/mean.npy)
    std: np.ndarray
    pack_motions: bool = True
    batch_size: int = 64
    name: str = "guo-t2m"
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.mean = _stats(self.mean, "mean")
        self.std = _stats(self.std, "std")
        if np.any(self.std <= 0):
            raise GuoCheckpointError("std must be positive in every dimension")
        for m in (self.text_encoder, self.movement_encoder, self.motion_encoder):
            m.eval()

    def to(self, device) -> "GuoEvaluator":
        for m in (self.text_encoder, self.movement_encoder, self.motion_encoder):
            m.to(device)
        self.device = str(device)
        return self

    @classmethod
    def load(
        cls,
        checkpoint: str | Path | bytes,
        vectorizer: WordVectorizer,
        mean: np.ndarray,
        std: np.ndarray,
        pack_motions: bool = True,
    ) -> "GuoEvaluator":
        ckpt = read_checkpoint(checkpoint)
        mods = build_modules()
        for key, module in mods.items():
            load_state(module, ckpt[key], key)
        text, movement, motion = mods["text_encoder"], mods["movement_encoder"], mods["motion_encoder"]
        assert isinstance(text, TextEncoderBiGRUCo) and isinstance(movement, MovementConvEncoder)  # build_modules' types
        assert isinstance(motion, MotionEncoderBiGRUCo)
        return cls(text, movement, motion, vectorizer, mean, std, pack_motions=pack_motions)

    @classmethod
    def from_dir(cls, root: str | Path, pack_motions: bool = True) -> "GuoEvaluator":
        """Layout: <root>/finest.tar, <root>/glove/our_vab_*, <root>/meta/{mean,std}.npy."""
        root = Path(root)
        vec = WordVectorizer.from_dir(root / "glove")
        stats = []
        for n in ("mean", "std"):
            p = root / "meta" / f"{n}.npy"
            if not p.is_file():
                raise GuoCheckpointError(f"evaluator normalisation file not found: {p}")
            stats.append(np.load(p, allow_pickle=False))
        return cls.load(root / "finest.tar", vec, stats[0], stats[1], pack_motions=pack_motions)

    @classmethod
    def from_store(cls, store, prefix: str, pack_motions: bool = True) -> "GuoEvaluator":
        """The same layout as `from_dir`, read from the artifact store under `prefix`."""
        p = prefix.rstrip("/")
        vec = WordVectorizer.from_bytes(*(store.get_bytes(f"{p}/glove/our_vab_{s}") for s in ("data.npy", "words.pkl", "idx.pkl")))
        mean, std = (np.load(io.BytesIO(store.get_bytes(f"{p}/meta/{n}.npy")), allow_pickle=False) for n in ("mean", "std"))
        return cls.load(store.get_bytes(f"{p}/finest.tar"), vec, mean, std, pack_motions=pack_motions)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "embedding_dim": 512,
            "pack_motions": self.pack_motions,
            "motion_padding": MAX_MOTION_LENGTH,
            "note": "packed by length // 4 (Guo et al.)" if self.pack_motions else "unpacked GRU over padded motions (MotionGPT)",
        }

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str | Sequence[str]]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = [self.vectorizer.encode(caption_tokens(t)) for t in texts[start : start + self.batch_size]]
            words = torch.from_numpy(np.stack([e[0] for e in enc])).to(self.device)
            pos = torch.from_numpy(np.stack([e[1] for e in enc])).to(self.device)
            lengths = torch.tensor([e[2] for e in enc])
            out.append(self.text_encoder(words, pos, lengths).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)

    def _prepare(self, features: np.ndarray, i: int) -> np.ndarray:
        f = np.asarray(features, np.float32)
        if f.ndim != 2 or f.shape[1] != FEATURE_DIM:
            raise ValueError(f"motion {i}: features must have shape (T, {FEATURE_DIM}), got {f.shape}")
        # HumanML3D evaluation crops to at most 196 frames and to a multiple of 4.
        t = min(f.shape[0], MAX_MOTION_LENGTH) // UNIT_LENGTH * UNIT_LENGTH
        if t < UNIT_LENGTH:
            raise ValueError(f"motion {i}: needs at least {UNIT_LENGTH} feature frames, got {f.shape[0]}")
        return (f[:t] - self.mean) / self.std

    @torch.no_grad()
    def embed_padded_motions(self, features: Sequence[np.ndarray], width: int, pad: np.ndarray) -> np.ndarray:
        """MotionGPT's way: un-normalised motions padded to `width` frames with the `pad` pose,
        normalised with this evaluator's mean/std, the motion GRU run unpacked over the whole width
        (the padding is part of each embedding)."""
        if width < UNIT_LENGTH:
            raise ValueError(f"a batch needs at least {UNIT_LENGTH} frames, got width {width}")
        batch = np.repeat(np.asarray(pad, np.float32).reshape(1, 1, FEATURE_DIM), width, axis=1)
        batch = np.repeat(batch, len(features), axis=0)
        for j, f in enumerate(features):
            f = np.asarray(f, np.float32)
            if f.ndim != 2 or f.shape[1] != FEATURE_DIM:
                raise ValueError(f"motion {j}: features must have shape (T, {FEATURE_DIM}), got {f.shape}")
            batch[j, : min(len(f), width)] = f[:width]
        x = torch.from_numpy((batch - self.mean) / self.std)[..., :MOVEMENT_INPUT].to(self.device)
        return self.motion_encoder(self.movement_encoder(x), None).cpu().numpy()

    @torch.no_grad()
    def embed_motions(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Un-normalised (T, 263) feature sequences -> (N, 512) embeddings."""
        out = []
        for start in range(0, len(features), self.batch_size):
            chunk = [self._prepare(f, start + j) for j, f in enumerate(features[start : start + self.batch_size])]
            # Pad to 196 like Guo's loader, so the convolutions see the same zeros whatever the batch.
            batch = np.zeros((len(chunk), MAX_MOTION_LENGTH, FEATURE_DIM), np.float32)
            for j, f in enumerate(chunk):
                batch[j, : f.shape[0]] = f
            x = torch.from_numpy(batch[..., :MOVEMENT_INPUT]).to(self.device)
            lengths = torch.tensor([f.shape[0] // UNIT_LENGTH for f in chunk])
            movements = self.movement_encoder(x)
            out.append(self.motion_encoder(movements, lengths if self.pack_motions else None).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)
