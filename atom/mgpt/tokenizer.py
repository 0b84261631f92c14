"""Tokenisers for the motion language model, and the motion-as-text format.

Two tokenisers share one small interface (`MotionTokenizer`):
- `WordTokenizer`: a word-level vocabulary built from captions, for the small model pretrained on the
  procedural world. Ids follow T5's conventions (pad 0, eos 1, unk 2) so the same T5 code drives both.
- `HFTokenizerAdapter`: a Hugging Face T5 tokenizer from a local flan-t5-base directory with the 515
  motion tokens added as ordinary tokens, as MotionGPT does (vocabulary 32100 + 515 = 32615).

Motion tokens: `<motion_id_0>` .. `<motion_id_511>` are VQ codes, 512 starts a motion, 513 ends it,
514 is a mask. A motion as text is `<motion_id_512><motion_id_k1>...<motion_id_513>`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Protocol, Sequence

NUM_CODES = 512
MOTION_START = 512
MOTION_END = 513
MOTION_MASK = 514
NUM_MOTION_TOKENS = 515

WORD_TOKENIZER_FILE = "word_tokenizer.json"
_MOTION_RE = re.compile(r"<motion_id_(\d+)>")
_SPLIT_RE = re.compile(r"<motion_id_\d+>|[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


class TokenizerError(ValueError):
    """A tokenizer file or directory is missing or malformed; the message says what to do."""


def motion_token(k: int) -> str:
    return f"<motion_id_{k}>"


def motion_to_text(codes: Sequence[int]) -> str:
    """VQ codes -> `<motion_id_512><motion_id_k1>...<motion_id_513>` (no spaces)."""
    for c in codes:
        if not 0 <= int(c) < NUM_CODES:
            raise ValueError(f"motion code {c} out of range 0..{NUM_CODES - 1}")
    return motion_token(MOTION_START) + "".join(motion_token(int(c)) for c in codes) + motion_token(MOTION_END)


def motion_ids_between(ids: Sequence[int]) -> list[int]:
    """Motion-token indices (0..514) -> the codes between the first start and the first end after it,
    clamped to 0..511. No start token: everything up to the first end counts (the model may omit it).
    No end token: everything after the start counts."""
    ids = [int(i) for i in ids]
    start = ids.index(MOTION_START) + 1 if MOTION_START in ids else 0
    rest = ids[start:]
    end = rest.index(MOTION_END) if MOTION_END in rest else len(rest)
    return [min(max(i, 0), NUM_CODES - 1) for i in rest[:end]]


def text_to_motion(text: str) -> list[int]:
    """Parse motion text (what MotionGPT decodes) into VQ codes; non-motion text is skipped."""
    return motion_ids_between([int(m) for m in _MOTION_RE.findall(text)])


# MotionGPT's parse of a decoded motion string, for `generate.decoding: motiongpt`. It works on the
# string, so words the model writes between motion tokens matter: a boundary "><" separates two
# adjacent motion tokens, and each piece between boundaries yields the number at its end.
MOTIONGPT_FALLBACK = (0,)


def parse_motion_string_motiongpt(text: str) -> list[int]:
    """The codes MotionGPT reads from decoded text (its `motion_string_to_token`):

    - the span from the first `<motion_id_512>` to the first `<motion_id_513>`; when either is
      missing, when the end comes before the start, or when nothing lies between, `[0]`;
    - the span is split at "><"; the first and last pieces (holding the start and end tokens)
      are dropped and each other piece gives the number after its last '_'. So a word between two
      codes drops the code before it, a word right after the start drops the first code, a word
      right before the end drops the last code;
    - indices pass through as written (the mask token 514 included); callers clamp.
    Where MotionGPT's integer parse would raise (text that ends a piece in something other than a
    number), this returns `[0]` like its other failures.
    """
    start_tok, end_tok = motion_token(MOTION_START), motion_token(MOTION_END)
    a, b = text.find(start_tok), text.find(end_tok)
    if a < 0 or b < 0:
        return list(MOTIONGPT_FALLBACK)
    inner = text[a + len(start_tok) : b] if b >= a + len(start_tok) else ""
    pieces = (start_tok + inner + end_tok).split("><")[1:-1]
    try:
        codes = [int(piece.split("_")[-1].replace(">", "")) for piece in pieces]
    except ValueError:
        return list(MOTIONGPT_FALLBACK)
    return codes or list(MOTIONGPT_FALLBACK)


def split_words(text: str) -> list[str]:
    """Lower-case words, apostrophe contractions kept, each punctuation mark its own token."""
    return _SPLIT_RE.findall(text.lower())


class MotionTokenizer(Protocol):
    pad_id: int
    eos_id: int
    kind: str

    def __len__(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...  # ids, ending with eos
    def decode(self, ids: Sequence[int]) -> str: ...
    def motion_token_id(self, k: int) -> int: ...
    def motion_index(self, token_id: int) -> int | None: ...  # token id -> 0..514, or None
    def decode_motion(self, ids: Sequence[int]) -> list[int]: ...  # ids -> VQ codes between start and end
    def save(self, directory: str | Path) -> None: ...


class _MotionIdsMixin:
    motion_offset: int

    def motion_token_id(self, k: int) -> int:
        if not 0 <= k < NUM_MOTION_TOKENS:
            raise ValueError(f"motion token index {k} out of range 0..{NUM_MOTION_TOKENS - 1}")
        return self.motion_offset + k

    def motion_index(self, token_id: int) -> int | None:
        k = int(token_id) - self.motion_offset
        return k if 0 <= k < NUM_MOTION_TOKENS else None

    def decode_motion(self, ids: Sequence[int]) -> list[int]:
        """Generated token ids -> VQ codes between start and end (non-motion tokens are dropped)."""
        idx = [self.motion_index(i) for i in ids]
        return motion_ids_between([i for i in idx if i is not None])


class WordTokenizer(_MotionIdsMixin):
    kind = "word"
    SPECIALS = ("<pad>", "</s>", "<unk>")

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if len(set(words)) != len(words):
            raise TokenizerError("word list has duplicates")
        clash = [w for w in words if w in self.SPECIALS or _MOTION_RE.fullmatch(w)]
        if clash:
            raise TokenizerError(f"word list holds reserved tokens {clash[:5]}")
        self.words = words
        self.itos = list(self.SPECIALS) + words + [motion_token(k) for k in range(NUM_MOTION_TOKENS)]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad_id, self.eos_id, self.unk_id = 0, 1, 2
        self.motion_offset = len(self.SPECIALS) + len(words)

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_words: int | None = None) -> "WordTokenizer":
        """Vocabulary of every word seen at least `min_count` times, most frequent first (ties
        alphabetical, so the same corpus always gives the same ids)."""
        counts = Counter(w for t in texts for w in split_words(t) if not _MOTION_RE.fullmatch(w))
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(ranked[:max_words] if max_words else ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, self.unk_id) for w in split_words(text)] + [self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i in (self.pad_id, self.eos_id) or not 0 <= i < len(self.itos):
                continue
            out.append(self.itos[i])
        # Motion tokens are written without spaces, as in MotionGPT's motion text.
        text = " ".join(out)
        return re.sub(r"> <motion_id_", "><motion_id_", text)

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / WORD_TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"kind": self.kind, "version": 1, "words": self.words}, indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> "WordTokenizer":
        path = Path(directory) / WORD_TOKENIZER_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TokenizerError(f"no {WORD_TOKENIZER_FILE} in {directory}: not a word-tokenizer directory") from None
        except ValueError as exc:
            raise TokenizerError(f"{path} is not valid JSON ({exc}); re-save the tokenizer") from None
        if not isinstance(data, dict) or data.get("kind") != "word" or not isinstance(data.get("words"), list):
            raise TokenizerError(f"{path} is not a word tokenizer file (expected kind 'word' and a 'words' list)")
        return cls(data["words"])


class HFTokenizerAdapter(_MotionIdsMixin):
    """A Hugging Face T5 tokenizer with the 515 motion tokens, behind the MotionTokenizer interface."""

    kind = "hf"

    def __init__(self, hf_tokenizer):
        tok = hf_tokenizer
        names = [motion_token(k) for k in range(NUM_MOTION_TOKENS)]
        missing = [n for n in names if tok.convert_tokens_to_ids(n) in (None, tok.unk_token_id)]
        if missing:
            # Ordinary (non-special) added tokens, all 515 in order, as MotionGPT adds them.
            tok.add_tokens(missing)
        ids = [tok.convert_tokens_to_ids(n) for n in names]
        if ids != list(range(ids[0], ids[0] + NUM_MOTION_TOKENS)):
            raise TokenizerError("motion tokens in this tokenizer are not contiguous ids; start from the plain flan-t5-base tokenizer")
        if tok.pad_token_id is None or tok.eos_token_id is None:
            raise TokenizerError("the tokenizer has no pad or eos token; is this a T5 tokenizer?")
        self.hf = tok
        self.motion_offset = ids[0]
        self.pad_id = int(tok.pad_token_id)
        self.eos_id = int(tok.eos_token_id)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "HFTokenizerAdapter":
        from transformers import AutoTokenizer

        directory = Path(directory)
        if not directory.is_dir():
            raise TokenizerError(f"tokenizer directory {directory} does not exist; give a local flan-t5-base directory")
        try:
            tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        except Exception as exc:  # transformers raises OSError/ValueError/... for unusable dirs
            raise TokenizerError(
                f"cannot load a tokenizer from {directory} ({type(exc).__name__}: {exc}); it must hold the "
                "flan-t5-base tokenizer files (tokenizer.json or spiece.model, tokenizer_config.json)"
            ) from None
        return cls(tok)

    def __len__(self) -> int:
        return len(self.hf)

    def encode(self, text: str) -> list[int]:
        ids = self.hf(text, add_special_tokens=True)["input_ids"]
        if not ids or ids[-1] != self.eos_id:
            ids = list(ids) + [self.eos_id]
        return list(ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=True)

    def save(self, directory: str | Path) -> None:
        self.hf.save_pretrained(str(directory))


def load_tokenizer(directory: str | Path) -> MotionTokenizer:
    """Whichever tokenizer a model directory holds: a word tokenizer or a HF one."""
    directory = Path(directory)
    if (directory / WORD_TOKENIZER_FILE).is_file():
        return WordTokenizer.load(directory)
    return HFTokenizerAdapter.from_pretrained(directory)
