"""The motion language model: a T5 encoder-decoder that reads a text prompt and writes motion tokens.

`MotionLM` bundles a transformers `T5ForConditionalGeneration` with a `MotionTokenizer` and owns the
conventions every caller must share: the prompt template, how a motion becomes label ids
(`<start> codes <end> </s>`, padded with -100) and the exact per-sequence log-probability the
preference losses are built on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from atom.mgpt.tokenizer import (
    MOTION_END,
    MOTION_START,
    NUM_CODES,
    HFTokenizerAdapter,
    MotionTokenizer,
    TokenizerError,
    WordTokenizer,
    load_tokenizer,
)

DEFAULT_TEMPLATE = "Generate motion: {caption}"
LM_META_FILE = "motionlm.json"
IGNORE_INDEX = -100


class LMError(ValueError):
    """A language-model directory or input is unusable; the message says what to do."""


def format_prompt(caption: str, template: str = DEFAULT_TEMPLATE) -> str:
    if "{caption}" not in template:
        raise ValueError(f"prompt template {template!r} has no '{{caption}}' placeholder")
    caption = caption.strip()
    if not caption:
        raise ValueError("empty caption: a prompt needs some text")
    return template.replace("{caption}", caption)


@dataclass(frozen=True)
class T5Size:
    """Shape of a freshly initialised T5 (the small model pretrained on the procedural world)."""

    d_model: int = 256
    d_ff: int = 512
    num_layers: int = 3
    num_decoder_layers: int = 3
    num_heads: int = 4
    d_kv: int = 64
    feed_forward_proj: str = "gated-gelu"
    dropout_rate: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def set_dropout(model: nn.Module, rate: float) -> None:
    """Set every dropout in a T5 (modules and the attention-probability dropout) to `rate`.
    The config value alone does not reach modules that are already built."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must lie in [0, 1), got {rate}")
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = rate
        elif hasattr(m, "dropout") and isinstance(getattr(m, "dropout"), float):
            setattr(m, "dropout", rate)
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "dropout_rate"):
        cfg.dropout_rate = rate


def untie_lm_head(model) -> None:
    """transformers 5 builds every T5 with lm_head tied to the input embedding; flan-t5 (and so
    MotionGPT) has a separate lm_head. Give it its own parameter so loading one does not overwrite
    the other."""
    if model.lm_head.weight is model.shared.weight:
        model.lm_head.weight = nn.Parameter(model.shared.weight.detach().clone())
    tied = getattr(model, "all_tied_weights_keys", None)
    if isinstance(tied, dict):
        tied.pop("lm_head.weight", None)


def shift_right(labels: torch.Tensor, start_id: int, pad_id: int) -> torch.Tensor:
    """Teacher-forcing decoder input: start token, then the labels without the last one (-100 -> pad)."""
    dec = labels.new_full(labels.shape, pad_id)
    dec[:, 1:] = labels[:, :-1]
    dec[:, 0] = start_id
    return dec.masked_fill(dec == IGNORE_INDEX, pad_id)


def sequence_logprobs(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, start_id: int = 0, pad_id: int = 0
) -> torch.Tensor:
    """Sum over label positions (labels != -100) of log p(label | prompt, previous labels), shape (B,).

    Exact and batch-independent: the prompt padding is masked in attention, labels are right-padded
    so the causal decoder never sees padding before a real position, and the log-softmax runs in
    float32 per position. Gradients flow (call under torch.no_grad() for a reference model)."""
    if labels.ndim != 2 or input_ids.ndim != 2 or labels.shape[0] != input_ids.shape[0]:
        raise ValueError(
            f"expected input_ids (B, S) and labels (B, L) with the same B, got {tuple(input_ids.shape)} and {tuple(labels.shape)}"
        )
    dec_in = shift_right(labels, start_id, pad_id)
    out = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=dec_in, use_cache=False)
    logp = out.logits.float().log_softmax(-1)
    mask = labels != IGNORE_INDEX
    picked = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


class MotionLM:
    def __init__(self, model, tokenizer: MotionTokenizer, template: str = DEFAULT_TEMPLATE, max_text_tokens: int = 256):
        vocab = model.get_input_embeddings().weight.shape[0]
        if vocab != len(tokenizer):
            raise LMError(
                f"model vocabulary ({vocab}) and tokenizer ({len(tokenizer)} tokens with the 515 motion tokens) "
                "differ: the model was trained with another tokenizer; load the tokenizer saved with it"
            )
        format_prompt("x", template)  # validates the template
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.max_text_tokens = max_text_tokens
        self.model.eval()

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def create(cls, tokenizer: MotionTokenizer, size: T5Size | None = None, seed: int = 0, template: str = DEFAULT_TEMPLATE) -> "MotionLM":
        """A freshly initialised T5 for `tokenizer` (seeded: same seed, same weights)."""
        from transformers import T5Config, T5ForConditionalGeneration

        size = size or T5Size()
        config = T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_id, eos_token_id=tokenizer.eos_id, **size.to_dict())
        config.decoder_start_token_id = tokenizer.pad_id  # not a T5Config field: a PreTrainedConfig attribute
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = T5ForConditionalGeneration(config)
        return cls(model, tokenizer, template)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def start_id(self) -> int:
        sid = getattr(self.model.config, "decoder_start_token_id", None)
        return self.tokenizer.pad_id if sid is None else int(sid)

    def to(self, device) -> "MotionLM":
        self.model.to(device)
        return self

    def set_dropout(self, rate: float) -> None:
        set_dropout(self.model, rate)

    # -- encoding ----------------------------------------------------------------------------------
    def format_prompt(self, caption: str) -> str:
        return format_prompt(caption, self.template)

    def encode_text(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Already formatted prompt texts -> (input_ids, attention_mask), right-padded, on the model's device."""
        if isinstance(texts, str):
            raise TypeError("encode_text takes a list of strings, not a single string")
        if not texts:
            raise ValueError("encode_text needs at least one text")
        seqs = [self.tokenizer.encode(t) for t in texts]
        too_long = [i for i, s in enumerate(seqs) if len(s) > self.max_text_tokens]
        if too_long:
            i = too_long[0]
            raise ValueError(f"prompt {i} has {len(seqs[i])} tokens, more than max_text_tokens={self.max_text_tokens}; shorten it")
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids.to(self.device), mask.to(self.device)

    def encode_prompts(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> the template applied -> encode_text."""
        return self.encode_text([self.format_prompt(c) for c in captions])

    def motion_label_ids(self, codes: Sequence[int]) -> list[int]:
        tok = self.tokenizer
        out = [tok.motion_token_id(MOTION_START)]
        for c in codes:
            c = int(c)
            if not 0 <= c < NUM_CODES:
                raise ValueError(f"motion code {c} out of range 0..{NUM_CODES - 1}")
            out.append(tok.motion_token_id(c))
        return out + [tok.motion_token_id(MOTION_END), tok.eos_id]

    def encode_motion(self, motions: Sequence[Sequence[int]]) -> torch.Tensor:
        """VQ code lists -> labels (B, L): <start> codes <end> </s>, right-padded with -100."""
        if not motions:
            raise ValueError("encode_motion needs at least one motion")
        seqs = [self.motion_label_ids(m) for m in motions]
        width = max(len(s) for s in seqs)
        labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
        for i, s in enumerate(seqs):
            labels[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return labels.to(self.device)

    def sequence_logprobs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, model: nn.Module | None = None
    ) -> torch.Tensor:
        """Summed label log-probs (B,) under `model` (default: this LM's model; pass a PEFT-wrapped
        policy or a reference model to score with it instead)."""
        return sequence_logprobs(
            model if model is not None else self.model, input_ids, attention_mask, labels, self.start_id, self.tokenizer.pad_id
        )

    def loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean token cross-entropy (teacher forcing), for pretraining."""
        dec_in = shift_right(labels, self.start_id, self.tokenizer.pad_id)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=dec_in, use_cache=False)
        return nn.functional.cross_entropy(
            out.logits.float().reshape(-1, out.logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(directory))
        self.tokenizer.save(directory)
        meta = {"format": 1, "template": self.template, "tokenizer": self.tokenizer.kind, "max_text_tokens": self.max_text_tokens}
        (directory / LM_META_FILE).write_text(json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path, dropout_rate: float | None = 0.0, device: str | torch.device = "cpu") -> "MotionLM":
        """Load a directory written by `save`. Dropout defaults to 0 so the model is deterministic
        (pass None to keep the saved rate)."""
        from transformers import T5ForConditionalGeneration

        directory = Path(directory)
        meta_path = directory / LM_META_FILE
        if not meta_path.is_file():
            raise LMError(f"{directory} is not a MotionLM directory (no {LM_META_FILE}); save one with MotionLM.save")
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise LMError(f"{meta_path} is not valid JSON ({exc})") from None
        try:
            tokenizer = load_tokenizer(directory)
        except TokenizerError as exc:
            raise LMError(f"{directory}: {exc}") from None
        if not (directory / "config.json").is_file():
            raise LMError(f"{directory} has no config.json: the model weights were not saved there")
        try:
            level = logging.getLogger("transformers").level
            logging.getLogger("transformers").setLevel(logging.ERROR)  # the 'not tying' notice for untied heads
            try:
                model = T5ForConditionalGeneration.from_pretrained(str(directory), local_files_only=True)
            finally:
                logging.getLogger("transformers").setLevel(level)
        except Exception as exc:
            raise LMError(
                f"cannot load the T5 weights in {directory} ({type(exc).__name__}: {exc}); "
                "the files are missing or corrupt, re-save the model"
            ) from None
        if dropout_rate is not None:
            set_dropout(model, dropout_rate)
        lm = cls(model, tokenizer, meta.get("template", DEFAULT_TEMPLATE), int(meta.get("max_text_tokens", 256)))
        return lm.to(device)


__all__ = [
    "DEFAULT_TEMPLATE",
    "IGNORE_INDEX",
    "LMError",
    "MotionLM",
    "T5Size",
    "format_prompt",
    "sequence_logprobs",
    "set_dropout",
    "shift_right",
    "untie_lm_head",
    "HFTokenizerAdapter",
    "WordTokenizer",
]
