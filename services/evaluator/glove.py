"""GloVe word vectors and POS one-hots for the Guo et al. text encoder (text-to-motion's utils/word_vectorizer.py).

The T2M release ships three files per vocabulary prefix (`our_vab`):
  <prefix>_data.npy   (V, 300) float vectors
  <prefix>_words.pkl  list of V words
  <prefix>_idx.pkl    dict word -> row
The two pickles hold only a list and a dict of str/int (the index written from numpy holds numpy
integers), so they are read with atom.safe_pickle.load_plain_pickle, which rebuilds containers,
strings and numbers and refuses every other global: a tampered file cannot run code.

Captions reach the text encoder as 'word/POS' tokens. HumanML3D ships them pre-tagged; free text
(composed prompts) is tagged by atom.motion.postag, which follows HumanML3D's conventions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from atom.motion import postag
from atom.safe_pickle import UnreadableFileError, UnsafeFileError, load_plain_pickle

POS_CLASSES = (
    "VERB",
    "NOUN",
    "DET",
    "ADP",
    "NUM",
    "AUX",
    "PRON",
    "ADJ",
    "ADV",
    "Loc_VIP",
    "Body_VIP",
    "Obj_VIP",
    "Act_VIP",
    "Desc_VIP",
    "OTHER",
)
POS_INDEX = {p: i for i, p in enumerate(POS_CLASSES)}

# Words that take a VIP class whatever their POS (the T2M word lists).
VIP_WORDS: dict[str, tuple[str, ...]] = {
    "Loc_VIP": (
        "left",
        "right",
        "clockwise",
        "counterclockwise",
        "anticlockwise",
        "forward",
        "back",
        "backward",
        "up",
        "down",
        "straight",
        "curve",
    ),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder", "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": (
        "walk",
        "run",
        "swing",
        "pick",
        "bring",
        "kick",
        "put",
        "squat",
        "throw",
        "hop",
        "dance",
        "jump",
        "turn",
        "stumble",
        "dance",
        "stop",
        "sit",
        "lift",
        "lower",
        "raise",
        "wash",
        "stand",
        "kneel",
        "stroll",
        "rub",
        "bend",
        "balance",
        "flap",
        "jog",
        "shuffle",
        "lean",
        "rotate",
        "spin",
        "spread",
        "climb",
    ),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily", "angrily", "sadly"),
}
_VIP_OF = {w: cls for cls, words in VIP_WORDS.items() for w in words}

WORD_DIM = 300
MAX_TEXT_LEN = 20  # caption tokens; plus sos and eos makes 22
SOS, EOS, UNK = "sos/OTHER", "eos/OTHER", "unk/OTHER"


class GloveFormatError(ValueError):
    """The word-vector files are missing, malformed or inconsistent."""


def safe_unpickle(data: bytes, what: str):
    """Unpickle plain containers, strings and numbers (numpy integers included) and nothing else."""
    try:
        return load_plain_pickle(data, what)
    except (UnsafeFileError, UnreadableFileError) as exc:
        raise GloveFormatError(str(exc)) from None


def pos_one_hot(pos: str) -> np.ndarray:
    v = np.zeros(len(POS_CLASSES), np.float32)
    v[POS_INDEX.get(pos, POS_INDEX["OTHER"])] = 1.0
    return v


@dataclass
class WordVectorizer:
    """Maps 'word/POS' tokens to (GloVe vector, POS one-hot) as the T2M evaluator expects."""

    vectors: np.ndarray  # (V, 300)
    word_index: dict[str, int]

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[1] != WORD_DIM:
            raise GloveFormatError(f"word vectors must have shape (V, {WORD_DIM}), got {self.vectors.shape}")
        bad = [w for w, i in self.word_index.items() if not 0 <= i < self.vectors.shape[0]]
        if bad:
            raise GloveFormatError(f"word index points outside the {self.vectors.shape[0]} vectors for {bad[:5]}")
        if "unk" not in self.word_index:
            raise GloveFormatError("the vocabulary has no 'unk' entry, which padding and unknown words need")

    @classmethod
    def from_bytes(cls, data_npy: bytes, words_pkl: bytes, idx_pkl: bytes) -> "WordVectorizer":
        try:
            vectors = np.load(io.BytesIO(data_npy), allow_pickle=False)
        except Exception as exc:
            raise GloveFormatError(f"word vectors (.npy): not a readable array ({exc})") from None
        words = safe_unpickle(words_pkl, "word list (.pkl)")
        index = safe_unpickle(idx_pkl, "word index (.pkl)")
        if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            raise GloveFormatError("word list (.pkl) must be a list of strings")
        if not isinstance(index, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in index.items()):
            raise GloveFormatError("word index (.pkl) must be a dict of str -> int")
        missing = [w for w in words if w not in index]
        if missing:
            raise GloveFormatError(f"words missing from the word index: {missing[:5]}")
        return cls(vectors, {w: index[w] for w in words})

    @classmethod
    def from_dir(cls, directory: str | Path, prefix: str = "our_vab") -> "WordVectorizer":
        d = Path(directory)
        paths = [d / f"{prefix}_data.npy", d / f"{prefix}_words.pkl", d / f"{prefix}_idx.pkl"]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise GloveFormatError(f"GloVe files not found: {', '.join(missing)} (the T2M release's glove/ folder)")
        return cls.from_bytes(*(p.read_bytes() for p in paths))

    def token(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        word, pos = split_token(token)
        if word in self.word_index:
            vec = self.vectors[self.word_index[word]]
            return vec, pos_one_hot(_VIP_OF.get(word, pos))
        return self.vectors[self.word_index["unk"]], pos_one_hot("OTHER")

    def encode(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
        """Caption tokens -> (word vectors (22, 300), POS one-hots (22, 15), length incl. sos/eos)."""
        seq = [SOS, *list(tokens)[:MAX_TEXT_LEN], EOS]
        length = len(seq)
        seq += [UNK] * (MAX_TEXT_LEN + 2 - length)
        pairs = [self.token(t) for t in seq]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), length


def split_token(token: str) -> tuple[str, str]:
    word, sep, pos = token.rpartition("/")
    if not sep or not word:
        raise GloveFormatError(f"token {token!r} is not 'word/POS'")
    return word, pos


def caption_tokens(text: str | Sequence[str]) -> list[str]:
    """Accepts a token list, a pre-tagged 'w/P w/P' string (HumanML3D texts) or free text, which
    the project's HumanML3D-style tagger (atom.motion.postag) tags."""
    if not isinstance(text, str):
        return [str(t) for t in text]
    return postag.caption_tokens(text)
