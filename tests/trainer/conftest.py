"""Fixtures for the trainer tests: a tiny randomly initialised MotionLM (no downloads) and a local
artifact store."""

from __future__ import annotations

import pytest
import torch

from atom.store import LocalStore

# Tiny models: one thread is fastest, and the machine is shared.
torch.set_num_threads(1)

WORDS = "a person man walks forward backward then squats jumps waves and one two three times".split()


def make_lm(seed: int = 0, dropout: float = 0.1):
    """A 2+2-layer T5 (d_model 32) over a word tokenizer plus the 515 motion tokens. Dropout is on,
    as in a model loaded with its training settings: training must switch it off itself."""
    from atom.mgpt.lm import MotionLM, T5Size
    from atom.mgpt.tokenizer import WordTokenizer

    size = T5Size(d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=8, dropout_rate=dropout)
    return MotionLM.create(WordTokenizer(WORDS), size, seed=seed)


@pytest.fixture
def tiny_lm():
    return make_lm


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")
